"""Per-node work of an ONNX graph with static shapes: arithmetic (FLOPs or int8 ops) and bytes moved.

One small function per op type, registered with `@costs("Conv")`. Each returns a `Work`; the roofline in
estimate.py turns work into time. Ops without a function are costed as a copy of their tensors
(bytes in + out, one op per output element) and flagged `generic` so the table says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx
from onnx import helper

from edgec.registry import Registry

# Op kinds: which efficiency curve of the roofline applies
GEMM = "gemm"  # dense conv / matmul: compute-bound when large
DEPTHWISE = "depthwise"  # grouped conv with few channels per group: little reuse, mostly memory-bound
ELEMENTWISE = "elementwise"  # one pass over the tensors
REDUCE = "reduce"  # pooling, reductions, normalisations
MOVE = "move"  # pure data movement: transpose, concat, pad, gather, resize
VIEW = "view"  # reshape-like: no data moves, only the per-op overhead


@dataclass
class Work:
    flops: float = 0.0
    kind: str = ELEMENTWISE
    gemm: tuple[int, int, int] | None = None  # (M, N, K) of the equivalent GEMM, for the efficiency curve
    int8: bool = False
    generic: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class NodeView:
    """What a cost function may look at: the node, its tensors' shapes and dtypes, and its attributes."""

    node: onnx.NodeProto
    in_shapes: list[list[int] | None]
    out_shapes: list[list[int] | None]
    in_dtypes: list[int]
    out_dtypes: list[int]
    attrs: dict

    def numel_out(self, i: int = 0) -> int:
        s = self.out_shapes[i] if i < len(self.out_shapes) else None
        return int(np.prod(s)) if s is not None else 0

    def numel_in(self, i: int = 0) -> int:
        s = self.in_shapes[i] if i < len(self.in_shapes) else None
        return int(np.prod(s)) if s is not None else 0


CostFn = Callable[[NodeView], Work]
_REGISTRY = Registry("cost functions")


def costs(*op_types: str, note: str = ""):
    return _REGISTRY.register(*op_types, note=note)


def work_of(view: NodeView) -> Work:
    rule = _REGISTRY.get(view.node.op_type)
    if rule is None:
        return Work(flops=float(sum(view.numel_out(i) for i in range(len(view.out_shapes)))), kind=MOVE, generic=True)
    return rule.fn(view)


def costed_ops() -> list[str]:
    return sorted(_REGISTRY)


def attrs_of(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


# ---------------------------------------------------------------- conv / matmul


def _conv(view: NodeView, int8: bool) -> Work:
    x, w, y = view.in_shapes[0], view.in_shapes[1], view.out_shapes[0]
    if x is None or w is None or y is None:
        return Work(kind=GEMM, generic=True, int8=int8, notes=["shape unknown"])
    group = int(view.attrs.get("group", 1))
    cout, cin_g = w[0], w[1]
    kernel = int(np.prod(w[2:])) if len(w) > 2 else 1
    spatial = int(np.prod(y[2:])) if len(y) > 2 else 1
    batch = y[0]
    macs = batch * cout * spatial * cin_g * kernel
    # per group: M = cout/group output channels, K = cin/group * kernel, N = output pixels
    m, k, n = cout // max(group, 1), cin_g * kernel, batch * spatial
    kind = DEPTHWISE if group > 1 and m * cin_g <= 4 else GEMM
    return Work(flops=2.0 * macs, kind=kind, gemm=(m, n, k), int8=int8)


@costs("Conv")
def conv(view: NodeView) -> Work:
    return _conv(view, int8=False)


@costs("QLinearConv")
def qlinear_conv(view: NodeView) -> Work:
    # inputs: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp[, bias]
    shifted = NodeView(view.node, [view.in_shapes[0], view.in_shapes[3]], view.out_shapes, view.in_dtypes,
                       view.out_dtypes, view.attrs)
    return _conv(shifted, int8=True)


@costs("ConvInteger")
def conv_integer(view: NodeView) -> Work:
    return _conv(view, int8=True)


@costs("ConvTranspose")
def conv_transpose(view: NodeView) -> Work:
    x, w = view.in_shapes[0], view.in_shapes[1]
    if x is None or w is None:
        return Work(kind=GEMM, generic=True)
    group = int(view.attrs.get("group", 1))
    cin, cout_g = w[0], w[1]
    kernel = int(np.prod(w[2:]))
    macs = x[0] * int(np.prod(x[2:])) * cin * cout_g * kernel
    return Work(flops=2.0 * macs, kind=GEMM, gemm=(cout_g * kernel, x[0] * int(np.prod(x[2:])), cin // group))


def _matmul(view: NodeView, a_idx: int, b_idx: int, int8: bool) -> Work:
    a, b, y = view.in_shapes[a_idx], view.in_shapes[b_idx], view.out_shapes[0]
    if a is None or b is None or y is None:
        return Work(kind=GEMM, generic=True, int8=int8)
    k = a[-1]
    m = a[-2] if len(a) > 1 else 1
    n = b[-1] if len(b) > 1 else 1
    batch = int(np.prod(y[:-2])) if len(y) > 2 else 1
    # weights are the "M" side for the efficiency curve: rows of output features
    return Work(flops=2.0 * batch * m * n * k, kind=GEMM, gemm=(n, batch * m, k), int8=int8)


@costs("MatMul")
def matmul(view: NodeView) -> Work:
    return _matmul(view, 0, 1, int8=False)


@costs("MatMulInteger")
def matmul_integer(view: NodeView) -> Work:
    return _matmul(view, 0, 1, int8=True)


@costs("QLinearMatMul")
def qlinear_matmul(view: NodeView) -> Work:
    return _matmul(view, 0, 3, int8=True)


@costs("Gemm")
def gemm(view: NodeView) -> Work:
    a, b = view.in_shapes[0], view.in_shapes[1]
    if a is None or b is None:
        return Work(kind=GEMM, generic=True)
    m, k = (a[1], a[0]) if view.attrs.get("transA", 0) else (a[0], a[1])
    n = b[0] if view.attrs.get("transB", 0) else b[1]
    return Work(flops=2.0 * m * n * k + m * n, kind=GEMM, gemm=(n, m, k))


# ---------------------------------------------------------------- elementwise

# arithmetic per output element; transcendental functions cost a short polynomial
_ELEMENTWISE = {
    "Relu": 1, "LeakyRelu": 2, "PRelu": 2, "Clip": 2, "Neg": 1, "Abs": 1, "Add": 1, "Sub": 1, "Mul": 1,
    "Div": 1, "Max": 1, "Min": 1, "Sqrt": 4, "Reciprocal": 4, "Pow": 10, "Exp": 10, "Log": 10, "Sigmoid": 12,
    "Tanh": 12, "Erf": 12, "Gelu": 16, "HardSigmoid": 3, "HardSwish": 4, "Elu": 12, "Selu": 12, "Softplus": 14,
    "Mish": 30, "Floor": 1, "Ceil": 1, "Round": 1, "Sign": 1, "Not": 1, "And": 1, "Or": 1, "Xor": 1,
    "Equal": 1, "Less": 1, "Greater": 1, "LessOrEqual": 1, "GreaterOrEqual": 1, "Where": 1, "Cast": 1,
    "Sum": 1, "Mean": 2, "QuantizeLinear": 3, "DequantizeLinear": 2, "DynamicQuantizeLinear": 5,
    "BatchNormalization": 2, "InstanceNormalization": 8, "Dropout": 0, "Sin": 12, "Cos": 12,
}


def _elementwise(view: NodeView) -> Work:
    per = _ELEMENTWISE[view.node.op_type]
    n = max(view.numel_out(i) for i in range(len(view.out_shapes))) if view.out_shapes else 0
    return Work(flops=float(per * n), kind=ELEMENTWISE)


costs(*_ELEMENTWISE)(_elementwise)


@costs("Softmax", "LogSoftmax")
def softmax(view: NodeView) -> Work:
    # max, subtract, exp, sum, divide
    return Work(flops=25.0 * view.numel_out(), kind=REDUCE)


@costs("LayerNormalization", "GroupNormalization", "RMSNormalization", "SkipLayerNormalization")
def layer_norm(view: NodeView) -> Work:
    return Work(flops=8.0 * view.numel_out(), kind=REDUCE)


@costs("LRN")
def lrn(view: NodeView) -> Work:
    size = int(view.attrs.get("size", 5))
    return Work(flops=(2.0 * size + 12) * view.numel_out(), kind=REDUCE)


# ---------------------------------------------------------------- pooling / reductions


@costs("MaxPool", "AveragePool", "LpPool")
def pool(view: NodeView) -> Work:
    kernel = int(np.prod(view.attrs.get("kernel_shape", [1])))
    return Work(flops=float(kernel * view.numel_out()), kind=REDUCE)


@costs("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
       "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp", "ArgMax", "ArgMin", "TopK")
def reduce(view: NodeView) -> Work:
    return Work(flops=float(view.numel_in()), kind=REDUCE)


# ---------------------------------------------------------------- data movement


@costs("Transpose", "Concat", "Split", "Slice", "Pad", "Gather", "GatherElements", "GatherND", "Tile", "Expand",
       "SpaceToDepth", "DepthToSpace", "ScatterND", "ScatterElements", "OneHot", "NonZero", "Compress")
def move(view: NodeView) -> Work:
    return Work(flops=0.0, kind=MOVE)


@costs("Resize", "Upsample")
def resize(view: NodeView) -> Work:
    mode = view.attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    per = 1 if mode == "nearest" else 8  # (bi)linear: 4 taps, 2 flops each
    return Work(flops=float(per * view.numel_out()), kind=MOVE)


@costs("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Shape", "Size", "Constant", "ConstantOfShape",
       "Range")
def view_op(view: NodeView) -> Work:
    return Work(flops=0.0, kind=VIEW)
