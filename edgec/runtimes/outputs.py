"""What an output is, for accuracy, and how it is compared. One definition for the build's float and quantized
checks, `edgec validate`, the cross-target table and the sensitivity search:

- probabilities (a Softmax/LogSoftmax output): compared as logits (centered log-probabilities); probabilities
  below PROB_FLOOR x the row's top one are read as that floor on both sides, so a probability that underflowed
  to 0 in fp16 (log -inf, or -87 at float32's tiny) is not a logit error of 40 on a class nobody would pick;
- classifier: top-k agreement along the class axis (plus cosine);
- detector: an output written by a Concat (box coordinates next to class scores, different ranges): each part
  (channel group) is compared on its own, the worst group counts;
- dense map (rank >= 3 with spatial extent): error relative to the reference's value range besides cosine (a
  sigmoid map whose values sit near 0 on random inputs has a cosine of its noise);
- embedding (an L2-normalized output: LpNormalization, or x / ReduceL2(x)): cosine only; its largest component
  is no class, even when it is [N, >=10] like a classifier's logits;
- anything else (tensors): cosine.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from edgec.runtimes.metrics import cosine, output_metrics

MIN_CLASSES = 10
PASS_THROUGH = ("Identity", "Dropout")  # inference no-ops between a Softmax and the graph output
PROB_FLOOR = 1e-4  # probabilities below this fraction of the row's top one are all the same "unlikely"
# between an L2 norm and the Div by it: clamping the norm away from 0 (sentence-transformers' F.normalize)
NORM_GUARDS = ("Clip", "Max", "Add", "Expand", "Unsqueeze", "Reshape", "Cast", "Identity")


@dataclass(frozen=True)
class OutputKind:
    class_axis: int | None = None  # classes along this axis (top-k); None: not a classifier
    log_of: str | None = None  # "Softmax" / "LogSoftmax": compared as centered log-probabilities (= logits)
    groups: tuple[tuple[int, int], ...] | None = None  # detector: [start, end) channel slices along group_axis
    group_axis: int | None = None
    embedding: bool = False  # L2-normalized: compared by cosine, never top-k

    @property
    def name(self) -> str:
        return ("probabilities" if self.log_of else "detector" if self.groups else "embedding" if self.embedding
                else "classifier" if self.class_axis is not None else "tensor")


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
    for out in model.graph.output:
        node = producer.get(out.name)
        while node is not None and node.op_type in PASS_THROUGH:
            node = producer.get(node.input[0])
        if out.name not in kinds and node is not None and node.op_type == "Concat" and len(node.input) > 1 \
                and (groups := _concat_groups(model, node)) is not None:
            kinds[out.name] = OutputKind(groups=groups[1], group_axis=groups[0])
        elif out.name not in kinds and _l2_normalized(node, producer):
            kinds[out.name] = OutputKind(embedding=True)
    return kinds


def _l2_normalized(node: onnx.NodeProto | None, producer: dict) -> bool:
    """LpNormalization (p=2), or Div(x, ReduceL2(x) behind clamps): the output is a unit vector."""
    if node is not None and node.op_type == "LpNormalization":
        return next((helper.get_attribute_value(a) for a in node.attribute if a.name == "p"), 2) == 2
    if node is None or node.op_type != "Div" or len(node.input) < 2:
        return False
    norm = producer.get(node.input[1])
    while norm is not None and norm.op_type in NORM_GUARDS:
        norm = producer.get(norm.input[0])
    return norm is not None and norm.op_type == "ReduceL2" and norm.input[0] == node.input[0]


def _concat_groups(model: onnx.ModelProto, node: onnx.NodeProto):
    """(axis, channel slices) of a Concat whose inputs' sizes along the axis shape inference knows."""
    rank_of, dims_of = {}, {}
    for v in list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output):
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in v.type.tensor_type.shape.dim]
        rank_of[v.name], dims_of[v.name] = len(dims), dims
    inits = {t.name: list(t.dims) for t in model.graph.initializer}
    shapes = [inits.get(i, dims_of.get(i)) for i in node.input]
    if any(s is None or not s for s in shapes):
        return None
    axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
    axis = axis + len(shapes[0]) if axis < 0 else axis
    sizes = [s[axis] if axis < len(s) else 0 for s in shapes]
    if any(n <= 0 for n in sizes):
        return None
    bounds = np.cumsum([0, *sizes])
    return axis, tuple((int(a), int(b)) for a, b in itertools.pairwise(bounds))


def kind_of(name: str, sample: np.ndarray, kinds: dict[str, OutputKind]) -> OutputKind:
    if name in kinds:
        return kinds[name]
    return OutputKind(class_axis=1) if classifier_shaped(sample) else OutputKind()


def as_logits(x: np.ndarray, kind: OutputKind) -> np.ndarray:
    """A Softmax/LogSoftmax output as centered logits along its class axis (others unchanged)."""
    if kind.log_of is None:
        return x
    x = np.asarray(x, np.float64)
    ax = kind.class_axis
    if kind.log_of == "Softmax":  # floor relative to the row's top class: never the log of an underflow
        top = np.max(x, axis=ax, keepdims=True)
        logs = np.log(np.maximum(x, np.maximum(PROB_FLOOR * top, np.finfo(np.float32).tiny)))
    else:
        logs = np.maximum(x, np.max(x, axis=ax, keepdims=True) + np.log(PROB_FLOOR))
    return logs - logs.mean(axis=ax, keepdims=True)


def dense_shaped(x: np.ndarray) -> bool:
    """A map over space (N, C, H, W...) rather than a vector per sample."""
    return x.ndim >= 3 and int(np.prod(x.shape[2:])) > 1 and not classifier_shaped(x)


def range_error(refs: list[np.ndarray], acts: list[np.ndarray]) -> float:
    """RMS error over every sample relative to the reference's value range (max - min)."""
    r = np.concatenate([np.asarray(x, np.float64).ravel() for x in refs])
    a = np.concatenate([np.asarray(x, np.float64).ravel() for x in acts])
    span = float(r.max() - r.min()) if r.size else 0.0
    err = float(np.sqrt(np.mean((r - a) ** 2))) if r.size else 0.0
    return err / span if span > 0 else (0.0 if err == 0 else float("inf"))


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
    elif kind.groups is not None and same:  # each channel group on its own scale; the worst one counts
        parts = []
        for lo, hi in kind.groups:
            def take(x, r, lo=lo, hi=hi):
                return np.take(np.reshape(x, r.shape), range(lo, hi), axis=kind.group_axis)
            parts.append(output_metrics([take(r, r) for r in refs], [take(a, r) for a, r in zip(acts, refs)]))
        m = output_metrics(refs, acts)
        m.cosine = min(p.cosine for p in parts)
        deltas = [p.delta_cosine for p in parts if p.delta_cosine is not None]
        m.delta_cosine = min(deltas) if deltas else m.delta_cosine
    else:
        m = output_metrics(refs, acts)
    if kind.class_axis is not None and same:
        m.top1, m.top5 = topk_agreement(refs, acts, kind.class_axis)
    m.kind = kind.name
    if kind.log_of is None and kind.groups is None and same and dense_shaped(np.asarray(refs[0])):
        m.kind = "dense"
        m.range_error = range_error(refs, [np.reshape(a, r.shape) for a, r in zip(acts, refs)])
    return m, kind
