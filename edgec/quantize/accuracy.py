"""Accuracy of a reduced-precision artifact against the fp32 ONNX model, on held-out samples.

Per output: cosine, max-abs, cosine of two samples' difference, and for classifiers top-1/top-5 agreement: the
fp32 model's top-1 class taken as the label. A classifier output is [N, C] or [N, C, 1, 1] with C >= 10, or any
Softmax/LogSoftmax output (classes along its axis: a 2-class head, or a CTC recognizer's [N, T, C] per time step).
Softmax outputs are compared as logits: the output Softmax stays float, so centered log-probabilities are the
logits up to float rounding, and a cosine of probabilities would turn one near-tie into a 'failure' while
hiding the logits' error on confident samples. Thresholds come from the profile's per-precision numerics
settings (int8 cannot meet an fp32 cosine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from edgec.artifact import NumericsResult
from edgec.config.models import NumericsSpec
from edgec.quantize.stage import QuantResult
from edgec.validate.numerics import cosine, output_metrics, thresholds
from edgec.validate.runners.host_ort import OrtRunner

MIN_CLASSES = 10
OUTPUTS_KEY = "artifact_outputs"  # reference_cache[OUTPUTS_KEY][target]: that artifact's held-out outputs
KINDS_KEY = "output_kinds"  # reference_cache[KINDS_KEY]: output_kinds() of the model, for the cross-target table


@dataclass(frozen=True)
class OutputKind:
    class_axis: int | None = None  # classes along this axis (top-k); None: not a classifier
    log_of: str | None = None  # "Softmax" / "LogSoftmax": compared as centered log-probabilities (= logits)


def classifier_shaped(x: np.ndarray) -> bool:
    s = x.shape
    return (len(s) == 2 or (len(s) == 4 and s[2] == 1 and s[3] == 1)) and s[1] >= MIN_CLASSES


def output_kinds(model: onnx.ModelProto) -> dict[str, OutputKind]:
    """Graph outputs written by a Softmax/LogSoftmax: their class axis (rank from shape inference)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    kinds = {}
    for out in model.graph.output:
        node = producer.get(out.name)
        if node is None or node.op_type not in ("Softmax", "LogSoftmax"):
            continue
        rank = len(out.type.tensor_type.shape.dim)
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"),
                    -1 if opset >= 13 else 1)
        axis = axis + rank if axis < 0 else axis
        # before opset 13 the op flattens everything from `axis` on: one class axis only when it is the last
        if rank and (opset >= 13 or axis == rank - 1):
            kinds[out.name] = OutputKind(class_axis=axis, log_of=node.op_type)
    return kinds


def kind_of(name: str, sample: np.ndarray, kinds: dict[str, OutputKind]) -> OutputKind:
    if name in kinds:
        return kinds[name]
    return OutputKind(class_axis=1) if classifier_shaped(sample) else OutputKind()


def as_logits(x: np.ndarray, kind: OutputKind) -> np.ndarray:
    """A Softmax/LogSoftmax output as centered logits along its class axis (others unchanged)."""
    if kind.log_of is None:
        return x
    x = np.asarray(x, np.float64)
    logs = np.log(np.maximum(x, np.finfo(np.float32).tiny)) if kind.log_of == "Softmax" else x
    return logs - logs.mean(axis=kind.class_axis, keepdims=True)


def topk_agreement(refs: list[np.ndarray], acts: list[np.ndarray], axis: int = 1) -> tuple[float, float]:
    """(top-1, top-5) agreement over every row (every position but the class axis) of every sample."""
    hit1 = hit5 = rows = 0
    for r, a in zip(refs, acts):
        r = np.asarray(r, np.float64)
        r2 = np.moveaxis(r, axis, -1).reshape(-1, r.shape[axis])
        a2 = np.moveaxis(np.asarray(a, np.float64).reshape(r.shape), axis, -1).reshape(r2.shape)
        label = r2.argmax(axis=1)
        top5 = np.argsort(-a2, axis=1, kind="stable")[:, :5]
        hit1 += int((top5[:, 0] == label).sum())
        hit5 += int((top5 == label[:, None]).any(axis=1).sum())
        rows += r2.shape[0]
    return hit1 / rows, hit5 / rows


def evaluate(quant: QuantResult, original: onnx.ModelProto, runner, spec: NumericsSpec,
             threads: int, keep_as: str | None = None) -> NumericsResult:
    """Run the artifact (`runner`) and fp32 ONNX Runtime on the held-out samples and gate on the thresholds.
    keep_as: keep the artifact's outputs under this target name for the cross-target table (crosstarget.py)."""
    refs = quant.reference_cache.get("outputs")
    if refs is None:  # the reference is the same for every target of this build: run it once
        ref_runner = OrtRunner(original, threads=threads)
        refs = [ref_runner.run(f) for f in quant.eval_feeds()]
        quant.reference_cache["outputs"] = refs
    actual = [runner.run(f) for f in quant.eval_feeds()]  # samples are re-read, not kept in memory
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
        message="; ".join(problems), data=quant.holdout_description
        + ("" if quant.measured else " - random data: accuracy on real inputs UNMEASURED")
        + "".join(f"; '{n}' ({k.log_of} output) compared as logits (centered log-probabilities)"
                  for n, k in kinds.items() if n in outputs),
    )


def output_accuracy(name: str, refs: list[np.ndarray], acts: list[np.ndarray],
                    kinds: dict[str, OutputKind]) -> tuple:
    """(OutputMetrics, OutputKind) of one output: metrics on logits for Softmax outputs, top-k for classifiers."""
    kind = kind_of(name, refs[0], kinds)
    same = all(a.size == r.size for a, r in zip(acts, refs))
    if kind.log_of is not None and same:
        r_log = [as_logits(r, kind) for r in refs]
        a_log = [as_logits(np.reshape(a, r.shape), kind) for a, r in zip(acts, refs)]
        m = output_metrics(r_log, a_log)
        # one cosine over all samples' logits: per sample, a near-tie's two centered logits (+-d) flip sign under
        # any error and read as -1; flips are what top-1 counts, the cosine is the logits' error overall
        m.cosine = cosine(np.concatenate([x.ravel() for x in r_log]), np.concatenate([x.ravel() for x in a_log]))
    else:
        m = output_metrics(refs, acts)
    if kind.class_axis is not None and same:
        m.top1, m.top5 = topk_agreement(refs, acts, kind.class_axis)
    return m, kind


def _check(name: str, m, gates: dict, measured: bool) -> list[str]:
    out = []
    if not m.finite:
        out.append(f"output '{name}' has NaN/inf (or the wrong shape) where the reference is finite")
    if gates["min_cosine"] is not None and m.cosine < gates["min_cosine"]:
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
