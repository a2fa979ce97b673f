"""The inputs a reduced-precision build's accuracy gate runs on, in this order: the user's validation data
(--validation-data / validate.data), else the calibration folder's held-out files, else seeded random samples.

The quantize stage (stage.py) picks the last two; this module puts the user's folder in front. Random token ids or
pixels can sit far from what a model sees (MiniLM's int8-dynamic embedding: cosine 0.961 on random ids, 0.992 on 16
real sentences), so the data the user named for validation decides the verdict, as it does for float builds.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Iterator

import numpy as np

from edgec.config.models import Profile
from edgec.quantize.calibration import HOLDOUT_MAX, VALIDATION, CalibrationSet, open_source
from edgec.quantize.stage import RANDOM_HOLDOUT, QuantResult


@dataclass
class ValidationGated(QuantResult):
    """A QuantResult whose accuracy gate reads the user's validation folder instead of held-out calibration files
    (calibration itself is unchanged)."""

    _gate: CalibrationSet | None = None
    _gate_count: int = 0

    @property
    def holdout_description(self) -> str:
        return (f"{self._gate_count} validation sample(s) (--validation-data): {self._gate.description}, "
                f"first {self._gate_count} by name")

    def eval_feeds(self) -> Iterator[dict[str, np.ndarray]]:
        return self._gate.iter(range(self._gate_count))

    def __getstate__(self) -> dict:
        """For the worker process: the folder's loader is a closure (no pickle), so the samples travel as arrays;
        the held-out calibration samples are not needed there."""
        state = dict(self.__dict__)
        samples = list(self.eval_feeds())
        state["_gate"] = CalibrationSet(self._gate.description, True, self._gate.names[:self._gate_count],
                                        samples.__getitem__)
        state["_set"], state["_holdout"] = None, []
        return state


def gate_on_validation_data(quant: QuantResult, profile: Profile) -> QuantResult:
    """`quant` gated on profile.validate.data (its first max(numerics.samples, HOLDOUT_MAX) files by name) when the
    profile names a folder, else `quant` as it is. The folder's first file is read now: a file that does not fit
    the model's inputs fails the build before anything is lowered, naming the file and the input."""
    data = profile.validate_.data
    if data is None:
        return quant
    gate = open_source(data, quant._specs, dict(profile.inputs), 0, VALIDATION)
    gate.load(0)
    count = min(len(gate), max(profile.validate_.numerics.samples, HOLDOUT_MAX))
    # real inputs: the gate measures accuracy even when the calibration was random
    state = {f.name: getattr(quant, f.name) for f in fields(quant)} | {"measured": True}
    return ValidationGated(**state, _gate=gate, _gate_count=count)


def gate_inputs(quant: QuantResult) -> dict:
    """Which inputs the accuracy gate ran on and how many, for the manifest."""
    if isinstance(quant, ValidationGated):
        source, count = "validation data", quant._gate_count
    elif len(quant._holdout) >= 2 and quant._set is not None:
        source, count = "held-out calibration files", len(quant._holdout)
    else:
        source, count = "seeded random", RANDOM_HOLDOUT
    return {"source": source, "samples": count, "inputs": quant.holdout_description}
