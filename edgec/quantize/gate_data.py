"""The inputs a reduced-precision build's accuracy gate runs on, in this order: the user's validation data
(--validation-data / validate.data), else the calibration folder's held-out files, else seeded random samples.

The quantize stage (stage.py) picks the last two; this module puts the user's folder in front. Random token ids or
pixels can sit far from what a model sees (MiniLM's int8-dynamic embedding: cosine 0.961 on random ids, 0.992 on 16
real sentences), so the data the user named for validation decides the verdict, as it does for float builds.
"""

from __future__ import annotations

from dataclasses import replace

from edgec.config.models import Profile
from edgec.quantize.calibration import HOLDOUT_MAX, VALIDATION, open_source
from edgec.quantize.stage import RANDOM_HOLDOUT, QuantResult


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
    return replace(quant, measured=True, _gate=gate, _gate_count=count)


def gate_inputs(quant: QuantResult) -> dict:
    """Which inputs the accuracy gate ran on and how many, for the manifest."""
    if quant._gate is not None:
        source, count = "validation data", quant._gate_count
    elif len(quant._holdout) >= 2 and quant._set is not None:
        source, count = "held-out calibration files", len(quant._holdout)
    else:
        source, count = "seeded random", RANDOM_HOLDOUT
    return {"source": source, "samples": count, "inputs": quant.holdout_description}
