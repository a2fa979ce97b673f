"""Accuracy of a reduced-precision artifact against the fp32 ONNX model, on held-out samples.

Per output: cosine, max-abs, cosine of two samples' difference, and for classifiers top-1/top-5 agreement: the
fp32 model's top-1 class taken as the label (edgec.runtimes.outputs says what is a classifier, and compares
Softmax outputs as logits). Thresholds come from the profile's per-precision numerics settings (int8 cannot meet
an fp32 cosine).
"""

from __future__ import annotations

import itertools

import onnx

from edgec.artifact import NumericsResult
from edgec.config.models import NumericsSpec
from edgec.runtimes.outputs import output_accuracy, output_kinds
from edgec.quantize.stage import QuantResult
from edgec.runtimes.numerics import (
    check_reference_finite,
    gate_output,
    reference_noise,
    thresholds,
)
from edgec.runtimes.host_ort import OrtRunner

OUTPUTS_KEY = "artifact_outputs"  # reference_cache[OUTPUTS_KEY][target]: that artifact's held-out outputs
KINDS_KEY = "output_kinds"  # reference_cache[KINDS_KEY]: output_kinds() of the model, for the cross-target table


def evaluate(quant: QuantResult, original: onnx.ModelProto, runner, spec: NumericsSpec,
             threads: int, keep_as: str | None = None, limit: int | None = None) -> NumericsResult:
    """Run the artifact (`runner`) and fp32 ONNX Runtime on the held-out samples and gate on the thresholds.
    keep_as: keep the artifact's outputs under this target name for the cross-target table (crosstarget.py).
    limit: only the first N held-out samples (a runner under emulation, hundreds of times slower)."""
    refs = quant.reference_cache.get("outputs")
    kinds = quant.reference_cache.setdefault(KINDS_KEY, output_kinds(original))
    if refs is None:  # the reference is the same for every target of this build: run it once
        ref_runner = OrtRunner(original, threads=threads)
        refs = [ref_runner.run(f) for f in quant.eval_feeds()]
        check_reference_finite(refs, quant.holdout_description)
        unoptimized = OrtRunner(original, threads=threads, level="disable")
        quant.reference_cache["noise"] = reference_noise(refs, [unoptimized.run(f) for f in quant.eval_feeds()],
                                                         kinds)
        quant.reference_cache["outputs"] = refs
    noise = quant.reference_cache["noise"]
    feeds = quant.eval_feeds() if limit is None else itertools.islice(quant.eval_feeds(), limit)
    actual = [runner.run(f) for f in feeds]  # samples are re-read, not kept in memory
    limited = len(actual) < len(refs)
    refs = refs[:len(actual)]
    if keep_as is not None:
        quant.reference_cache.setdefault(OUTPUTS_KEY, {})[keep_as] = actual
    gates = thresholds(spec, quant.precision)
    outputs, problems = {}, []
    for name in refs[0]:
        if any(name not in a for a in actual):
            problems.append(f"output '{name}' is missing from the artifact's outputs")
            continue
        r_list, a_list = [r[name] for r in refs], [a[name] for a in actual]
        m, _ = output_accuracy(name, r_list, a_list, kinds)
        m.noise_cosine = noise[name][0]
        outputs[name] = m
        problems += gate_output(name, m, gates, quant.measured, noise[name])
    return NumericsResult(
        ran_on=runner.name, outputs=outputs, passed=not problems, thresholds=gates, samples=len(refs),
        message="; ".join(problems), data=(f"the first {len(refs)} of " if limited else "") + quant.holdout_description
        + ("" if quant.measured else " - random data: accuracy on real inputs UNMEASURED")
        + "".join(f"; '{n}' ({k.log_of} output) compared as logits (centered log-probabilities, floored at 1e-4 of the top class)"
                  for n, k in kinds.items() if n in outputs),
    )
