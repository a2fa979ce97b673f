"""Activations and unary math: Relu, Clip, LeakyRelu, PRelu, Sigmoid, HardSigmoid, HardSwish, Tanh, Elu,
Exp, Log, Sqrt, Abs, Neg, Floor, Ceil, Reciprocal, Softmax/LogSoftmax."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.ops._util import full_rank
from edgec.lower.tflite.registry import LowerCtx, lowers

_UNARY = {"Relu": "RELU", "Sigmoid": "LOGISTIC", "Tanh": "TANH", "HardSwish": "HARD_SWISH", "Exp": "EXP",
          "Log": "LOG", "Sqrt": "SQRT", "Abs": "ABS", "Neg": "NEG", "Floor": "FLOOR", "Ceil": "CEIL"}


def _float(ctx: LowerCtx) -> None:
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (only float32)")


def _unary(code: str):
    def lower(ctx: LowerCtx) -> None:
        if code not in ("ABS", "NEG"):
            _float(ctx)
        ctx.emit(code, [ctx.input(0)], [ctx.output(0)])
    lower.__doc__ = code
    return lower


for _onnx, _tfl in _UNARY.items():
    lowers(_onnx)(_unary(_tfl))


def _scalar(ctx: LowerCtx, value: float, tag: str) -> int:
    return ctx.constant(np.array([value], np.float32), tag)


def _clip_bounds(ctx: LowerCtx) -> tuple[float, float]:
    if ctx.opset < 11:
        return float(ctx.attr("min", -np.inf)), float(ctx.attr("max", np.inf))
    bounds = []
    for i, default in ((1, -np.inf), (2, np.inf)):
        if not ctx.has_input(i):
            bounds.append(default)
        elif ctx.const(i) is None:
            ctx.unsupported(f"input {i} (bound) must be a constant")
        else:
            bounds.append(float(ctx.const(i).reshape(-1)[0]))
    return bounds[0], bounds[1]


_CLIP_TYPES = {np.dtype(t) for t in (np.float32, np.int32, np.int64, np.int8, np.uint8, np.int16)}


def _clip_general(ctx: LowerCtx) -> None:
    """MAXIMUM / MINIMUM with bounds that are tensors computed at run time, or on integers (int8/uint8/int16
    in int32: LiteRT's narrow integer kernels want quantized tensors)."""
    dtype = ctx.dtype(0)
    if dtype not in _CLIP_TYPES:
        ctx.unsupported(f"dtype {dtype}")
    wide = np.dtype(np.int32) if dtype.kind in "iu" and dtype.itemsize < 4 else dtype
    shape, rank = ctx.shape(0), len(ctx.shape(0))

    def widen(t: int, s) -> int:
        if wide == dtype:
            return t
        w = ctx.temp(s, wide, "wide")
        ctx.emit("CAST", [t], [w], S.CastOptionsT())
        return w

    x = widen(ctx.input(0), shape)
    steps = []
    if ctx.opset < 11:
        for key, code in (("min", "MAXIMUM"), ("max", "MINIMUM")):
            if key in ctx.node.attrs:
                steps.append((code, ctx.constant(np.full((1,) * rank, ctx.attr(key), wide), key)))
    else:
        for i, code in ((1, "MAXIMUM"), (2, "MINIMUM")):
            if not ctx.has_input(i):
                continue
            c = ctx.const(i)
            b = ctx.constant(np.asarray(c).astype(wide).reshape((1,) * rank), f"bound{i}") if c is not None else \
                widen(ctx.input(i), ctx.shape(i))
            steps.append((code, b))
    if not steps:
        return ctx.alias(0, ctx.input(0))
    for k, (code, b) in enumerate(steps):
        last = k == len(steps) - 1 and wide == dtype
        t = ctx.output(0) if last else ctx.temp(shape, wide, f"clip{k}")
        ctx.emit(code, [x, b], [t], S.MaximumMinimumOptionsT())
        x = t
    if wide != dtype:
        ctx.emit("CAST", [x], [ctx.output(0)], S.CastOptionsT())


@lowers("Clip")
def clip(ctx: LowerCtx) -> None:
    """RELU / RELU6 / RELU_N1_TO_1 when the bounds are those, else MAXIMUM/MINIMUM (bounds computed at run
    time and integer data too)."""
    runtime = ctx.opset >= 11 and any(ctx.has_input(i) and ctx.const(i) is None for i in (1, 2))
    if runtime or ctx.dtype(0) != np.float32:
        return _clip_general(ctx)
    lo, hi = _clip_bounds(ctx)
    fixed = {(0.0, np.inf): "RELU", (0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}.get((lo, hi))
    x = ctx.input(0)
    if fixed:
        return ctx.emit(fixed, [x], [ctx.output(0)])
    if lo == -np.inf and hi == np.inf:
        return ctx.alias(0, x)
    if lo > -np.inf:
        t = ctx.output(0) if hi == np.inf else ctx.temp(ctx.out_shape(0), tag="lo")
        ctx.emit("MAXIMUM", [x, _scalar(ctx, lo, "min")], [t], S.MaximumMinimumOptionsT())
        x = t
    if hi < np.inf:
        ctx.emit("MINIMUM", [x, _scalar(ctx, hi, "max")], [ctx.output(0)], S.MaximumMinimumOptionsT())


@lowers("LeakyRelu")
def leaky_relu(ctx: LowerCtx) -> None:
    """LEAKY_RELU."""
    _float(ctx)
    opts = S.LeakyReluOptionsT()
    opts.alpha = float(ctx.attr("alpha", 0.01))
    ctx.emit("LEAKY_RELU", [ctx.input(0)], [ctx.output(0)], opts)


@lowers("PRelu")
def prelu(ctx: LowerCtx) -> None:
    """PRELU (slope broadcast to the input's rank)."""
    _float(ctx)
    slope = ctx.const(1)
    alpha = ctx.input(1) if slope is None else ctx.constant(full_rank(slope.astype(np.float32), len(ctx.shape(0))), "slope")
    ctx.emit("PRELU", [ctx.input(0), alpha], [ctx.output(0)])


@lowers("HardSigmoid")
def hard_sigmoid(ctx: LowerCtx) -> None:
    """clip(a*x + b, 0, 1) = relu6(6a*x + 6b) / 6: [MUL], ADD+RELU6 (fused), MUL -- all XNNPACK ops."""
    _float(ctx)
    shape = ctx.out_shape(0)
    a, b = float(ctx.attr("alpha", 0.2)), float(ctx.attr("beta", 0.5))
    x = ctx.input(0)
    if abs(6 * a - 1.0) > 1e-7:  # torch's hardsigmoid has a = 1/6: no scaling needed
        t = ctx.temp(shape, tag="scaled")
        ctx.emit("MUL", [x, _scalar(ctx, 6 * a, "six_alpha")], [t], S.MulOptionsT())
        x = t
    shifted, clipped = ctx.temp(shape, tag="shifted"), ctx.temp(shape, tag="relu6")
    ctx.emit("ADD", [x, _scalar(ctx, 6 * b, "six_beta")], [shifted], S.AddOptionsT())
    ctx.emit("RELU6", [shifted], [clipped])
    ctx.emit("MUL", [clipped, _scalar(ctx, 1.0 / 6.0, "sixth")], [ctx.output(0)], S.MulOptionsT())


@lowers("Elu")
def elu(ctx: LowerCtx) -> None:
    """ELU; TFLite's has alpha 1, other alphas: RELU(x) + alpha * MIN(ELU(x), 0)."""
    _float(ctx)
    alpha = float(ctx.attr("alpha", 1.0))
    if alpha == 1.0:
        return ctx.emit("ELU", [ctx.input(0)], [ctx.output(0)])
    shape = ctx.out_shape(0)
    e, neg, pos, scaled = (ctx.temp(shape, tag=t) for t in ("elu1", "neg", "pos", "scaled"))
    ctx.emit("ELU", [ctx.input(0)], [e])
    ctx.emit("MINIMUM", [e, _scalar(ctx, 0.0, "zero")], [neg], S.MaximumMinimumOptionsT())
    ctx.emit("RELU", [ctx.input(0)], [pos])
    ctx.emit("MUL", [neg, _scalar(ctx, alpha, "alpha")], [scaled], S.MulOptionsT())
    ctx.emit("ADD", [pos, scaled], [ctx.output(0)], S.AddOptionsT())


@lowers("Reciprocal")
def reciprocal(ctx: LowerCtx) -> None:
    """DIV(1, x)."""
    _float(ctx)
    ctx.emit("DIV", [_scalar(ctx, 1.0, "one"), ctx.input(0)], [ctx.output(0)], S.DivOptionsT())


def _softmax(ctx: LowerCtx, code: str) -> None:
    """Over the last axis directly; another axis is moved last and back (TRANSPOSE); before opset 13 the op
    normalises over everything from `axis` on, i.e. the last axis of an (outer, inner) reshape."""
    _float(ctx)
    shape = ctx.shape(0)
    rank = len(shape)
    axis = int(ctx.attr("axis", -1 if ctx.opset >= 13 else 1))
    axis = axis + rank if axis < 0 else axis
    opts = S.SoftmaxOptionsT() if code == "SOFTMAX" else S.LogSoftmaxOptionsT()
    if code == "SOFTMAX":
        opts.beta = 1.0
    x, y = ctx.input(0), ctx.output(0)
    if axis == rank - 1:
        return ctx.emit(code, [x], [y], opts)
    if ctx.opset < 13:  # coerced to 2-D
        flat = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
        a, b = ctx.temp(flat, tag="flat"), ctx.temp(flat, tag="flat_out")
        ctx.emit("RESHAPE", [x, ctx.constant(np.array(flat, np.int32), "flat_shape")], [a])
        ctx.emit(code, [a], [b], opts)
        return ctx.emit("RESHAPE", [b, ctx.constant(np.array(shape, np.int32), "shape")], [y])
    perm = [*range(axis), *range(axis + 1, rank), axis]  # the axis moved last
    back = [perm.index(i) for i in range(rank)]
    moved = tuple(shape[p] for p in perm)
    a, b = ctx.temp(moved, tag="axis_last"), ctx.temp(moved, tag="axis_last_out")
    ctx.emit("TRANSPOSE", [x, ctx.constant(np.array(perm, np.int32), "perm")], [a], S.TransposeOptionsT())
    ctx.emit(code, [a], [b], opts)
    ctx.emit("TRANSPOSE", [b, ctx.constant(np.array(back, np.int32), "perm_back")], [y], S.TransposeOptionsT())


@lowers("Softmax")
def softmax(ctx: LowerCtx) -> None:
    """SOFTMAX (any axis)."""
    _softmax(ctx, "SOFTMAX")


@lowers("LogSoftmax")
def log_softmax(ctx: LowerCtx) -> None:
    """LOG_SOFTMAX (any axis)."""
    _softmax(ctx, "LOG_SOFTMAX")
