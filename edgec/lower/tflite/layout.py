"""The NCHW -> NHWC layout pass, and the ONE table of which ops care about layout.

TFLite's spatial kernels are channels-last. The pass:
1. wraps every op in NHWC_OPS (with a 4-D input) in Transpose(to NHWC) ... Transpose(back to NCHW) and marks
   it `node.nhwc = True`, so its lowering sees NHWC input 0 / output 0;
2. sinks Transposes through the layout-agnostic ops in AGNOSTIC (rewriting their axis attributes and
   permuting their constant operands), so the transpose ends up after them;
3. merges Transpose pairs (cancelled when they compose to the identity) and folds Transposes of constants.
Model inputs/outputs keep the ONNX layout; in a conv net the Transposes left are the boundary ones.

To teach the pass a new op: add it to NHWC_OPS (its lowering then receives NHWC data), or add an
`Agnostic(data=..., rewrite=...)` entry to AGNOSTIC (see the existing rules: `rewrite(node, perm, g)` returns the
new attrs / const inputs for the op acting on the un-transposed tensor, or None when it cannot).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgec.lower.tflite.ir import Graph, Node, inverse, perm_shape, transpose_node
from edgec.lower.tflite.reshape_moves import (RESHAPES, flatten_into_weights, pull_through_reshape,
                                              sink_through_reshape)

# Ops whose lowering expects channels-last data on input 0 and produces it on output 0 (4-D input).
NHWC_OPS = {
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "LRN",
    "BatchNormalization", "Resize", "Upsample", "DepthToSpace", "SpaceToDepth",
}

# Of those, the ones whose lowering also takes 1-D data (N, C, W): it sees (N, W, C) and runs the 2-D kernel on
# (N, 1, W, C) (ops/_util.lift_1d).
NHWC_1D_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
               "LRN", "BatchNormalization"}


def channels_last(rank: int) -> list[int]:
    return [0, *range(2, rank), 1]


def channels_first(rank: int) -> list[int]:
    return [0, rank - 1, *range(1, rank - 1)]


@dataclass(frozen=True)
class Rewrite:
    attrs: dict  # attribute updates
    consts: dict  # input index -> new constant array


@dataclass(frozen=True)
class Agnostic:
    """How a layout-agnostic op follows a transpose of its data inputs.

    data: indices of the inputs that carry activations ("all" = every input); each must be the output of a
    Transpose with the same perm, or a constant (broadcast-permuted here).
    rewrite(node, perm, graph) -> Rewrite | None: the op's attrs/const inputs when it acts on the
    un-transposed tensor (outer axis k is inner axis perm[k]); None if it cannot be moved.
    """

    data: str | tuple[int, ...] = "all"
    rewrite: Callable[[Node, list[int], Graph], Rewrite | None] | None = None


def _norm(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def axis_attr(name: str = "axis", default: int | None = None):
    def rewrite(node: Node, perm: list[int], g: Graph) -> Rewrite | None:
        axis = node.attrs.get(name, default)
        if axis is None:
            return None
        return Rewrite({name: perm[_norm(int(axis), len(perm))]}, {})
    return rewrite


def _softmax(node: Node, perm: list[int], g: Graph) -> Rewrite | None:
    rank = len(perm)
    axis = _norm(int(node.attrs.get("axis", -1 if g.opset >= 13 else 1)), rank)
    if g.opset < 13 and axis != rank - 1:  # old Softmax flattens from `axis` on: not a per-axis op
        return None
    return Rewrite({"axis": perm[axis]}, {})


def _slice(node: Node, perm: list[int], g: Graph) -> Rewrite | None:
    rank = len(perm)
    if g.opset < 10:
        axes = node.attrs.get("axes", list(range(len(node.attrs["starts"]))))
        return Rewrite({"axes": [perm[_norm(a, rank)] for a in axes]}, {})
    if any(i not in g.consts for i in node.inputs[1:] if i):
        return None
    starts = g.consts[node.inputs[1]]
    axes = g.consts[node.inputs[3]] if len(node.inputs) > 3 and node.inputs[3] else np.arange(len(starts))
    return Rewrite({}, {3: np.array([perm[_norm(int(a), rank)] for a in axes], dtype=np.int64)})


def _pad(node: Node, perm: list[int], g: Graph) -> Rewrite | None:
    rank = len(perm)

    def moved(pads):
        pads = [int(p) for p in pads]
        out = [0] * (2 * rank)
        for k in range(rank):
            out[perm[k]], out[rank + perm[k]] = pads[k], pads[rank + k]
        return out
    if g.opset < 11:
        return Rewrite({"pads": moved(node.attrs["pads"])}, {})
    if len(node.inputs) > 3 and node.inputs[3] or node.inputs[1] not in g.consts:
        return None
    return Rewrite({}, {1: np.array(moved(g.consts[node.inputs[1]]), dtype=np.int64)})


def _reduce(node: Node, perm: list[int], g: Graph) -> Rewrite | None:
    if int(node.attrs.get("keepdims", 1)) != 1:  # output rank changes: the perm would change too
        return None
    rank = len(perm)
    if "axes" in node.attrs:
        return Rewrite({"axes": [perm[_norm(int(a), rank)] for a in node.attrs["axes"]]}, {})
    if len(node.inputs) > 1 and node.inputs[1]:
        if node.inputs[1] not in g.consts:
            return None
        return Rewrite({}, {1: np.array([perm[_norm(int(a), rank)] for a in g.consts[node.inputs[1]]], np.int64)})
    return Rewrite({}, {})  # all axes


def _arg(node: Node, perm: list[int], g: Graph) -> Rewrite | None:
    if int(node.attrs.get("keepdims", 1)) != 1:  # output rank changes
        return None
    return Rewrite({"axis": perm[_norm(int(node.attrs.get("axis", 0)), len(perm))]}, {})


def _gather(node: Node, perm: list[int], g: Graph) -> Rewrite | None:
    idx = g.consts.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if idx is None or idx.ndim != 1:  # other index ranks change the output rank
        return None
    return Rewrite({"axis": perm[_norm(int(node.attrs.get("axis", 0)), len(perm))]}, {})


def _qdq(node: Node, perm: list[int], g: Graph) -> Rewrite | None:
    """QuantizeLinear / DequantizeLinear of an activation: elementwise, a per-axis scale follows its axis."""
    scale = g.consts.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if scale is None:
        return None
    return axis_attr("axis", 1)(node, perm, g) if scale.size > 1 else Rewrite({}, {})


ELEMENTWISE = Agnostic("all")
UNARY = Agnostic((0,))
AGNOSTIC: dict[str, Agnostic] = {
    **{op: ELEMENTWISE for op in (
        "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Where", "Equal", "Less",
        "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "BitShift", "Mod")},
    **{op: UNARY for op in (
        "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu", "Gelu", "Erf",
        "Exp", "Log", "Sqrt", "Abs", "Neg", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos",
        "Softplus", "Softsign", "Mish", "Clip", "Dropout", "Identity", "Cast", "Not", "IsNaN", "ThresholdedRelu",
        "Shrink")},  # not Hardmax: it has an axis
    "Concat": Agnostic("all", axis_attr("axis")),
    "Split": Agnostic((0,), axis_attr("axis", 0)),
    "Softmax": Agnostic((0,), _softmax),
    "LogSoftmax": Agnostic((0,), _softmax),
    "Slice": Agnostic((0,), _slice),
    "Pad": Agnostic((0,), _pad),
    **{op: Agnostic((0,), _reduce) for op in (
        "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceL1",
        "ReduceSumSquare", "ReduceLogSumExp")},
    "ArgMax": Agnostic((0,), _arg),
    "ArgMin": Agnostic((0,), _arg),
    "Gather": Agnostic((0,), _gather),
    # int8 boundaries (qdq.py): a transpose moves through them as through a float op
    "QuantizeLinear": Agnostic((0,), _qdq),
    "DequantizeLinear": Agnostic((0,), _qdq),
}
# Listing an op here without a lowering is harmless: it stays unsupported. An op with an axis attribute
# needs a rewrite rule (as Concat/Softmax have), never the plain UNARY/ELEMENTWISE entry.


def to_nhwc(g: Graph) -> dict[str, int]:
    """Run the pass in place; returns counts for the notes."""
    wrapped = _wrap_nhwc_ops(g)
    _normalize_transposes(g)
    moved = _sink(g)
    flatten_into_weights(g)
    adjoint = _matmul_adjoints(g)
    _remove_dead_transposes(g)
    left = sum(1 for n in g.nodes if n.op == "Transpose")
    return {"nhwc_ops": wrapped, "transposes_moved": moved, "transposes_left": left, "matmul_adjoints": adjoint}


def _wrap_nhwc_ops(g: Graph) -> int:
    out, count = [], 0
    for n in g.nodes:
        rank = len(g.shapes.get(n.inputs[0], ())) if n.inputs else 0
        # an output of unknown shape (shape inference failed on a broken model) is not wrapped: the op's
        # lowering reports it as unsupported
        if n.op in NHWC_OPS and (rank == 4 or rank == 3 and n.op in NHWC_1D_OPS) and n.inputs[0] not in g.consts \
                and n.outputs[0] in g.shapes:
            to_last, to_first = channels_last(rank), channels_first(rank)
            x = n.inputs[0]
            xt = g.fresh(f"{x}_nhwc")
            g.shapes[xt], g.dtypes[xt] = perm_shape(g.shapes[x], to_last), g.dtypes.get(x, np.dtype(np.float32))
            out.append(transpose_node(x, xt, to_last, f"{n.name}/to_nhwc"))
            n.inputs[0] = xt
            y = n.outputs[0]
            yt = g.fresh(f"{y}_nhwc")
            g.shapes[yt], g.dtypes[yt] = perm_shape(g.shapes[y], to_last), g.dtypes.get(y, np.dtype(np.float32))
            n.outputs[0] = yt
            n.nhwc = True
            out.append(n)
            out.append(transpose_node(yt, y, to_first, f"{n.name}/to_nchw"))
            count += 1
        else:
            out.append(n)
    g.nodes = out
    return count


def _normalize_transposes(g: Graph) -> None:
    for n in g.nodes:
        if n.op == "Transpose" and "perm" not in n.attrs:
            n.attrs["perm"] = list(reversed(range(len(g.shapes[n.inputs[0]]))))


def _sink(g: Graph) -> int:
    moved = 0
    for _ in range(4 * len(g.nodes) + 10):
        if not _step(g):
            break
        moved += 1
    return moved


def _step(g: Graph) -> bool:
    """One rewrite (a fold, merge or sink), or False when the graph is at a fixed point."""
    prod = g.producers()
    for idx, n in enumerate(g.nodes):
        if n.op != "Transpose":
            continue
        src = n.inputs[0]
        if src in g.consts:  # fold
            g.consts[n.outputs[0]] = np.ascontiguousarray(np.transpose(g.consts[src], n.attrs["perm"]))
            del g.nodes[idx]
            return True
        p1 = prod.get(src)
        if p1 is not None and p1.op == "Transpose":  # merge T2(T1(x)) into one transpose of x
            perm = [p1.attrs["perm"][j] for j in n.attrs["perm"]]
            x = p1.inputs[0]
            if perm == list(range(len(perm))) and n.outputs[0] not in g.outputs:
                _rename_uses(g, n.outputs[0], x)
                del g.nodes[idx]
            else:
                n.inputs[0], n.attrs["perm"] = x, perm
            return True
    seen: dict[tuple, Node] = {}
    for idx, n in enumerate(g.nodes):  # one transpose per (tensor, perm): x feeding two convs
        if n.op == "Transpose":
            key = (n.inputs[0], tuple(n.attrs["perm"]))
            if key in seen and n.outputs[0] not in g.outputs:
                _rename_uses(g, n.outputs[0], seen[key].outputs[0])
                del g.nodes[idx]
                return True
            seen.setdefault(key, n)
    for idx, n in enumerate(g.nodes):
        rule = AGNOSTIC.get(n.op)
        if rule is not None and _try_sink(g, idx, n, rule, prod):
            return True
    cons = g.consumers()
    for idx, n in enumerate(g.nodes):
        if n.op in RESHAPES and (sink_through_reshape(g, idx, n, prod) or pull_through_reshape(g, idx, n, prod, cons)):
            return True
    return False


def _rename_uses(g: Graph, old: str, new: str) -> None:
    for n in g.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]


def _try_sink(g: Graph, idx: int, n: Node, rule: Agnostic, prod: dict[str, Node]) -> bool:
    data = range(len(n.inputs)) if rule.data == "all" else [i for i in rule.data if i < len(n.inputs)]
    perm = None
    for i in data:
        p = prod.get(n.inputs[i])
        if p is not None and p.op == "Transpose":
            perm = p.attrs["perm"]
            break
    if perm is None:
        return False
    rank = len(perm)
    if any(y and len(g.shapes.get(y, ())) != rank for y in n.outputs):
        return False  # broadcasting to a higher rank: the perm would not fit the output
    rw = rule.rewrite(n, perm, g) if rule.rewrite else Rewrite({}, {})
    if rw is None:
        return False
    new_inputs = list(n.inputs)
    for i in data:
        name = n.inputs[i]
        if not name:
            continue
        p = prod.get(name)
        if p is not None and p.op == "Transpose" and p.attrs["perm"] == perm:
            new_inputs[i] = p.inputs[0]
        elif name in g.consts and g.consts[name].ndim <= rank:
            c = g.consts[name]
            if c.ndim > 0 and c.size > 1:
                c = np.transpose(c.reshape((1,) * (rank - c.ndim) + c.shape), inverse(perm))
            new = g.fresh(name)
            g.consts[new], g.shapes[new], g.dtypes[new] = np.ascontiguousarray(c), c.shape, c.dtype
            new_inputs[i] = new
        else:
            return False
    for i, value in rw.consts.items():
        new = g.fresh(f"{n.name}_param{i}")
        g.consts[new], g.shapes[new], g.dtypes[new] = value, value.shape, value.dtype
        while len(new_inputs) <= i:
            new_inputs.append("")
        new_inputs[i] = new
    n.inputs = new_inputs
    n.attrs.update(rw.attrs)
    after = []
    for j, y in enumerate(n.outputs):
        if not y:
            continue
        yi = g.fresh(f"{y}_t")
        g.shapes[yi], g.dtypes[yi] = perm_shape(g.shapes[y], inverse(perm)), g.dtypes.get(y, np.dtype(np.float32))
        n.outputs[j] = yi
        after.append(transpose_node(yi, y, perm, f"{n.name}/out{j}_t"))
    g.nodes[idx + 1:idx + 1] = after
    return True


def _matmul_adjoints(g: Graph) -> int:
    """A Transpose of the last two axes that feeds a MatMul lowered as BATCH_MATMUL becomes the kernel's adj_x /
    adj_y flag (ops/matmul.py): attention's K^T. Sinking cannot remove it (MatMul is not layout-agnostic), and in
    an int8 graph it stops behind the DequantizeLinear before the float MatMul, where the float graph had merged
    it into an earlier Transpose. Returns how many were absorbed (the dead Transposes go after)."""
    prod = g.producers()
    absorbed = 0
    for n in g.nodes:
        if n.op != "MatMul" or len(n.inputs) != 2:
            continue
        ranks = [len(g.shapes.get(x, ())) for x in n.inputs]
        b = g.consts.get(n.inputs[1])
        if min(ranks) < 2 or b is not None and b.ndim == 2:  # a vector product / FULLY_CONNECTED: no flags
            continue
        for i, flag in ((0, "adj_x"), (1, "adj_y")):
            t, rank = prod.get(n.inputs[i]), ranks[i]
            if t is not None and t.op == "Transpose" and t.attrs["perm"] == [*range(rank - 2), rank - 1, rank - 2] \
                    and not n.attrs.get(flag):
                n.inputs[i] = t.inputs[0]
                n.attrs[flag] = 1
                absorbed += 1
    return absorbed


def _remove_dead_transposes(g: Graph) -> None:
    while True:
        used = {i for n in g.nodes for i in n.inputs} | set(g.outputs)
        keep = [n for n in g.nodes if n.op != "Transpose" or n.outputs[0] in used]
        if len(keep) == len(g.nodes):
            return
        g.nodes = keep
