"""Accuracy of a reduced-precision artifact against the fp32 ONNX model, on held-out samples.

Per output: cosine, max-abs, cosine of two samples' difference, and for classifiers top-1/top-5 agreement: the
fp32 model's top-1 class taken as the label (edgec.quantize.outputs says what is a classifier, and compares
Softmax outputs as logits). Thresholds come from the profile's per-precision numerics settings (int8 cannot meet
an fp32 cosine).
"""

from __future__ import annotations

import itertools

import numpy as np
import onnx

from edgec.artifact import NumericsResult
from edgec.config.models import NumericsSpec
from edgec.quantize.outputs import output_accuracy, output_kinds
from edgec.quantize.stage import QuantResult
from edgec.runtimes.numerics import thresholds
from edgec.runtimes.host_ort import OrtRunner

OUTPUTS_KEY = "artifact_outputs"  # reference_cache[OUTPUTS_KEY][target]: that artifact's held-out outputs
KINDS_KEY = "output_kinds"  # reference_cache[KINDS_KEY]: output_kinds() of the model, for the cross-target table


def evaluate(quant: QuantResult, original: onnx.ModelProto, runner, spec: NumericsSpec,
             threads: int, keep_as: str | None = None, limit: int | None = None) -> NumericsResult:
    """Run the artifact (`runner`) and fp32 ONNX Runtime on the held-out samples and gate on the thresholds.
    keep_as: keep the artifact's outputs under this target name for the cross-target table (crosstarget.py).
    limit: only the first N held-out samples (a runner under emulation, hundreds of times slower)."""
    refs = quant.reference_cache.get("outputs")
    if refs is None:  # the reference is the same for every target of this build: run it once
        ref_runner = OrtRunner(original, threads=threads)
        refs = [ref_runner.run(f) for f in quant.eval_feeds()]
        quant.reference_cache["outputs"] = refs
    feeds = quant.eval_feeds() if limit is None else itertools.islice(quant.eval_feeds(), limit)
    actual = [runner.run(f) for f in feeds]  # samples are re-read, not kept in memory
    limited = len(actual) < len(refs)
    refs = refs[:len(actual)]
    if keep_as is not None:
        quant.reference_cache.setdefault(OUTPUTS_KEY, {})[keep_as] = actual
    gates = thresholds(spec, quant.precision)
    outputs, problems = {}, []
    kinds = quant.reference_cache.setdefault(KINDS_KEY, output_kinds(original))
    for name in refs[0]:
        if any(name not in a for a in actual):
            problems.append(f"output '{name}' is missing from the artifact's outputs")
            continue
        r_list, a_list = [r[name] for r in refs], [a[name] for a in actual]
        m, _ = output_accuracy(name, r_list, a_list, kinds)
        outputs[name] = m
        problems += _check(name, m, gates, quant.measured)
    return NumericsResult(
        ran_on=runner.name, outputs=outputs, passed=not problems, thresholds=gates, samples=len(refs),
        message="; ".join(problems), data=(f"the first {len(refs)} of " if limited else "") + quant.holdout_description
        + ("" if quant.measured else " - random data: accuracy on real inputs UNMEASURED")
        + "".join(f"; '{n}' ({k.log_of} output) compared as logits (centered log-probabilities)"
                  for n, k in kinds.items() if n in outputs),
    )


def _check(name: str, m, gates: dict, measured: bool) -> list[str]:
    out = []
    if not m.finite:
        out.append(f"output '{name}' has NaN/inf (or the wrong shape) where the reference is finite")
    # a classifier measured on real data is gated on its decisions (top-k below): int8 logits of a confident net
    # move ~10% and clip at the calibrated range without changing a decision (PP-OCR's classifier: logit cosine
    # 0.94 on 12 held-out lines, top-1 0.99), so their cosine is reported, not gated
    decisions = measured and m.top1 is not None and gates["min_top1"] is not None
    if gates["min_cosine"] is not None and m.cosine < gates["min_cosine"] and not decisions:
        out.append(f"output '{name}' cosine {m.cosine:.6f} < {gates['min_cosine']}")
    if m.delta_cosine is not None and gates["min_delta_cosine"] is not None \
            and m.delta_cosine < gates["min_delta_cosine"]:
        out.append(f"output '{name}' cosine of two inputs' difference {m.delta_cosine:.6f} "
                   f"< {gates['min_delta_cosine']}")
    if gates["max_abs"] is not None and m.max_abs > gates["max_abs"]:
        out.append(f"output '{name}' max-abs error {m.max_abs:.3g} > {gates['max_abs']}")
    # top-k on random inputs says nothing about real accuracy, so it only gates measured builds
    if measured and m.top1 is not None and gates["min_top1"] is not None and m.top1 < gates["min_top1"]:
        out.append(f"output '{name}' top-1 agreement {m.top1:.3f} < {gates['min_top1']}")
    if measured and m.top5 is not None and gates["min_top5"] is not None and m.top5 < gates["min_top5"]:
        out.append(f"output '{name}' top-5 agreement {m.top5:.3f} < {gates['min_top5']}")
    return out
