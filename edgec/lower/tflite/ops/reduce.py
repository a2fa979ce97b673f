"""Reductions: ReduceMean/Sum/Max/Min/Prod (MEAN, SUM, REDUCE_*), ReduceL1/L2/SumSquare/LogSum/LogSumExp
(composed), ArgMax/ArgMin (ARG_MAX / ARG_MIN + RESHAPE)."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers

_REDUCERS = {"ReduceMean": "MEAN", "ReduceSum": "SUM", "ReduceMax": "REDUCE_MAX", "ReduceMin": "REDUCE_MIN",
             "ReduceProd": "REDUCE_PROD"}
_NUMERIC = {np.dtype(t) for t in (np.float32, np.int32, np.int64)}


def _axes(ctx: LowerCtx, rank: int) -> list[int] | None:
    """Normalised reduction axes; None = reduce nothing (noop_with_empty_axes=1 and no axes)."""
    if "axes" in ctx.node.attrs:
        axes = ctx.attr("axes")
    elif ctx.has_input(1):
        value = ctx.const(1)
        if value is None:
            ctx.unsupported(f"axes (input '{ctx.node.inputs[1]}') must be a constant")
        axes = value.reshape(-1).tolist()
    else:
        axes = []
    if not len(axes):
        return None if int(ctx.attr("noop_with_empty_axes", 0)) else list(range(rank))
    return sorted({int(a) + rank if int(a) < 0 else int(a) for a in axes})


def _reduce(ctx: LowerCtx) -> None:
    shape = ctx.shape(0)
    if ctx.dtype(0) == np.bool_ and ctx.node.op in ("ReduceMax", "ReduceMin"):  # any / all
        return _reduce_bool(ctx, shape)
    if ctx.dtype(0) not in _NUMERIC:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32, int32, int64 only)")
    axes = _axes(ctx, len(shape))
    if axes is None:
        return ctx.alias(0, ctx.input(0))
    if any(shape[a] == 0 for a in axes) or 0 in shape:
        ctx.unsupported("reducing an empty tensor (TFLite tensors cannot have a zero dimension)")
    opts = S.ReducerOptionsT()
    opts.keepDims = bool(int(ctx.attr("keepdims", 1)))
    ctx.emit(_REDUCERS[ctx.node.op], [ctx.input(0), ctx.constant(np.array(axes, np.int32), "axes")],
             [ctx.output(0)], opts)


def _reduce_bool(ctx: LowerCtx, shape) -> None:
    """ReduceMax / ReduceMin of bools: REDUCE_ANY / REDUCE_ALL."""
    axes = _axes(ctx, len(shape))
    if axes is None:
        return ctx.alias(0, ctx.input(0))
    if 0 in shape:
        ctx.unsupported("reducing an empty tensor (TFLite tensors cannot have a zero dimension)")
    opts = S.ReducerOptionsT()
    opts.keepDims = bool(int(ctx.attr("keepdims", 1)))
    code = "REDUCE_ANY" if ctx.node.op == "ReduceMax" else "REDUCE_ALL"
    ctx.emit(code, [ctx.input(0), ctx.constant(np.array(axes, np.int32), "axes")], [ctx.output(0)], opts)


for _op in _REDUCERS:
    lowers(_op, note=f"{_REDUCERS[_op]} over constant axes")(_reduce)


def _composite(ctx: LowerCtx) -> None:
    """ReduceL1/L2/SumSquare/LogSum/LogSumExp from ABS/MUL/EXP/LOG/SQRT around SUM (LogSumExp max-shifted)."""
    op, shape = ctx.node.op, ctx.shape(0)
    rank = len(shape)
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")
    axes = _axes(ctx, rank)
    if axes is None:
        ctx.unsupported("noop_with_empty_axes=1 without axes")
    if any(shape[a] == 0 for a in axes) or 0 in shape:
        ctx.unsupported("reducing an empty tensor (TFLite tensors cannot have a zero dimension)")
    keep = bool(int(ctx.attr("keepdims", 1)))
    kept = tuple(1 if i in axes else d for i, d in enumerate(shape))
    axes_t = ctx.constant(np.array(axes, np.int32), "axes")

    def reducer(code: str, src: int, out: int, keepdims: bool) -> None:
        opts = S.ReducerOptionsT()
        opts.keepDims = keepdims
        ctx.emit(code, [src, axes_t], [out], opts)

    def unary(code: str, src: int, out_shape, tag: str, out: int | None = None, opts=None) -> int:
        out = ctx.temp(out_shape, tag=tag) if out is None else out
        ctx.emit(code, [src] if code != "MUL" else [src, src], [out], opts)
        return out

    x, y = ctx.input(0), ctx.output(0)
    red = ctx.out_shape(0)
    if op in ("ReduceSumSquare", "ReduceL1"):
        pre = unary("MUL", x, shape, "sq", opts=S.MulOptionsT()) if op == "ReduceSumSquare" else unary("ABS", x, shape, "abs")
        return reducer("SUM", pre, y, keep)
    if op in ("ReduceL2", "ReduceLogSum"):
        src = unary("MUL", x, shape, "sq", opts=S.MulOptionsT()) if op == "ReduceL2" else x
        total = ctx.temp(red, tag="sum")
        reducer("SUM", src, total, keep)
        unary("SQRT" if op == "ReduceL2" else "LOG", total, red, "", out=y)
        return
    # ReduceLogSumExp: m + log(sum(exp(x - m))) with m the max, so large inputs do not overflow
    m = ctx.temp(kept, tag="max")
    reducer("REDUCE_MAX", x, m, True)
    d = ctx.temp(shape, tag="shifted")
    ctx.emit("SUB", [x, m], [d], S.SubOptionsT())
    e = unary("EXP", d, shape, "exp", opts=S.ExpOptionsT())
    total = ctx.temp(kept, tag="sum")
    reducer("SUM", e, total, True)
    lg = unary("LOG", total, kept, "log")
    r = y if keep else ctx.temp(kept, tag="lse")
    ctx.emit("ADD", [lg, m], [r], S.AddOptionsT())
    if not keep:
        opts = S.ReshapeOptionsT()
        opts.newShape = [int(v) for v in red]
        ctx.emit("RESHAPE", [r, ctx.constant(np.array(red, np.int32), "shape")], [y], opts)


for _op in ("ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp"):
    lowers(_op, note="composed around SUM (LogSumExp shifted by the max)")(_composite)


def _arg(ctx: LowerCtx) -> None:
    code = "ARG_MAX" if ctx.node.op == "ArgMax" else "ARG_MIN"
    shape = ctx.shape(0)
    if ctx.dtype(0) not in (np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.uint8), np.dtype(np.int8)):
        ctx.unsupported(f"dtype {ctx.dtype(0)}")
    rank = len(shape)
    axis = int(ctx.attr("axis", 0))
    axis = axis + rank if axis < 0 else axis
    axis_t = ctx.constant(np.array([axis], np.int32), "axis")
    opts = S.ArgMaxOptionsT() if code == "ARG_MAX" else S.ArgMinOptionsT()
    opts.outputType = S.TensorType.INT64
    out_shape = ctx.out_shape(0)
    dropped = tuple(d for i, d in enumerate(shape) if i != axis)
    last = bool(int(ctx.attr("select_last_index", 0)))
    x = ctx.input(0)
    if last:  # TFLite picks the first of ties: search the reversed axis, then map i -> n-1-i
        x = ctx.temp(shape, ctx.dtype(0), "reversed")
        ctx.emit("REVERSE_V2", [ctx.input(0), axis_t], [x], S.ReverseV2OptionsT(), version=2)
    y = ctx.output(0) if tuple(out_shape) == dropped and not last else ctx.temp(dropped, np.int64, "arg")
    ctx.emit(code, [x, axis_t], [y], opts, version=2)
    if last:
        flipped = ctx.output(0) if tuple(out_shape) == dropped else ctx.temp(dropped, np.int64, "arg_last")
        n1 = ctx.constant(np.full((1,) * len(dropped), shape[axis] - 1, np.int64), "n_minus_1")
        ctx.emit("SUB", [n1, y], [flipped], S.SubOptionsT(), version=5)
        y = flipped
    if tuple(out_shape) != dropped:  # keepdims=1: put the reduced axis back as size 1
        opts = S.ReshapeOptionsT()
        opts.newShape = [int(d) for d in out_shape]
        ctx.emit("RESHAPE", [y, ctx.constant(np.array(out_shape, np.int32), "shape")], [ctx.output(0)], opts)


lowers("ArgMax", note="ARG_MAX (first index of ties), RESHAPE for keepdims")(_arg)
lowers("ArgMin", note="ARG_MIN (first index of ties), RESHAPE for keepdims")(_arg)
