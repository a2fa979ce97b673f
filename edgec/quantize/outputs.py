"""What an output is, for accuracy: a classifier (top-k along its class axis) and/or Softmax probabilities
(compared as logits). Shared by the accuracy gate, the cross-target table and the sensitivity search.

Softmax outputs are compared as logits: the output Softmax stays float, so centered log-probabilities are the
logits up to float rounding, while a cosine of probabilities turns one near-tie into a 'failure' and hides the
logits' error on confident samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from edgec.runtimes.numerics import cosine, output_metrics

MIN_CLASSES = 10
PASS_THROUGH = ("Identity", "Dropout")  # inference no-ops between a Softmax and the graph output


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
        while node is not None and node.op_type in PASS_THROUGH:  # paddle2onnx ends with Softmax -> Identity
            node = producer.get(node.input[0])
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
