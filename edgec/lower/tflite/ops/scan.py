"""Along-an-axis ops: CumSum (CUMSUM), TopK (TOPK_V2), Trilu (constant band mask + SELECT_V2),
Hardmax (ARG_MAX + ONE_HOT)."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _move_last(ctx: LowerCtx, x: int, shape, axis: int, dtype, tag: str) -> tuple[int, list[int]]:
    """x with `axis` moved last (TRANSPOSE, or nothing when it already is); returns (tensor, perm)."""
    rank = len(shape)
    perm = [*range(axis), *range(axis + 1, rank), axis]
    if axis == rank - 1:
        return x, perm
    t = ctx.temp(tuple(shape[p] for p in perm), dtype, tag)
    ctx.emit("TRANSPOSE", [x, ctx.constant(np.array(perm, np.int32), "perm")], [t], S.TransposeOptionsT())
    return t, perm


def _move_back(ctx: LowerCtx, x: int, perm: list[int], out: int) -> None:
    back = [perm.index(i) for i in range(len(perm))]
    ctx.emit("TRANSPOSE", [x, ctx.constant(np.array(back, np.int32), "perm_back")], [out], S.TransposeOptionsT())


@lowers("CumSum")
def cumsum(ctx: LowerCtx) -> None:
    """CUMSUM (exclusive / reverse map to its options)."""
    if ctx.dtype(0) not in (np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64)):
        ctx.unsupported(f"dtype {ctx.dtype(0)} has no TFLite CUMSUM kernel")
    axis = ctx.const(1)
    if axis is None:
        ctx.unsupported(f"axis (input '{ctx.node.inputs[1]}') must be a constant")
    opts = S.CumsumOptionsT()
    opts.exclusive, opts.reverse = bool(ctx.attr("exclusive", 0)), bool(ctx.attr("reverse", 0))
    a = _axis(int(np.asarray(axis).reshape(-1)[0]), len(ctx.shape(0)))
    ctx.emit("CUMSUM", [ctx.input(0), ctx.constant(np.array(a, np.int32), "axis")], [ctx.output(0)], opts)


@lowers("TopK")
def top_k(ctx: LowerCtx) -> None:
    """TOPK_V2 on the axis moved last; smallest-k on the negated input; int32 indices CAST to int64."""
    dtype = ctx.dtype(0)
    if dtype not in (np.dtype(np.float32), np.dtype(np.int32)):
        ctx.unsupported(f"dtype {dtype} (TOPK_V2 is lowered for float32 and int32)")
    kv = ctx.const(1)
    if kv is None:
        ctx.unsupported(f"K (input '{ctx.node.inputs[1]}') must be a constant")
    if not int(ctx.attr("sorted", 1)):
        ctx.unsupported("sorted=0")
    shape = ctx.shape(0)
    k = int(np.asarray(kv).reshape(-1)[0])
    if k == 0:
        ctx.unsupported("K = 0 (an empty result)")
    axis = _axis(int(ctx.attr("axis", -1)), len(shape))
    largest = int(ctx.attr("largest", 1))
    x, perm = _move_last(ctx, ctx.input(0), shape, axis, dtype, "axis_last")
    moved = tuple(shape[p] for p in perm)
    if not largest:
        if dtype != np.float32:
            ctx.unsupported("largest=0 on integers (negation can overflow)")
        n = ctx.temp(moved, dtype, "negated")
        ctx.emit("NEG", [x], [n])
        x = n
    kshape = moved[:-1] + (k,)
    vals, idx = ctx.temp(kshape, dtype, "values"), ctx.temp(kshape, np.int32, "indices")
    ctx.emit("TOPK_V2", [x, ctx.constant(np.array(k, np.int32), "k")], [vals, idx], S.TopKV2OptionsT())
    if not largest:
        v2 = ctx.temp(kshape, dtype, "values_pos")
        ctx.emit("NEG", [vals], [v2])
        vals = v2
    idx64 = ctx.temp(kshape, np.int64, "indices64")
    ctx.emit("CAST", [idx], [idx64], S.CastOptionsT())
    if axis == len(shape) - 1:
        ctx.alias(0, vals)
        ctx.alias(1, idx64)
        return
    _move_back(ctx, vals, perm, ctx.output(0))
    _move_back(ctx, idx64, perm, ctx.output(1))


@lowers("Trilu")
def trilu(ctx: LowerCtx) -> None:
    """SELECT_V2 of a constant band mask over the last two axes (upper: j - i >= k; lower: j - i <= k)."""
    shape = ctx.shape(0)
    if 0 in shape:
        ctx.unsupported("an empty tensor (TFLite tensors cannot have a zero dimension)")
    k = 0
    if ctx.has_input(1):
        kv = ctx.const(1)
        if kv is None:
            ctx.unsupported(f"k (input '{ctx.node.inputs[1]}') must be a constant")
        k = int(np.asarray(kv).reshape(-1)[0])
    n, m = shape[-2:]
    d = np.arange(m)[None, :] - np.arange(n)[:, None]
    keep = d >= k if int(ctx.attr("upper", 1)) else d <= k
    rank = len(shape)
    mask = ctx.constant(keep.reshape((1,) * (rank - 2) + keep.shape), "band")
    zero = ctx.constant(np.zeros((1,) * rank, ctx.dtype(0)), "zero")
    ctx.emit("SELECT_V2", [mask, ctx.input(0), zero], [ctx.output(0)])


@lowers("Hardmax")
def hardmax(ctx: LowerCtx) -> None:
    """ONE_HOT(ARG_MAX(x, axis)) (the first maximum wins, as ONNX); before opset 13 over the flattened tail."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")
    shape = ctx.shape(0)
    rank = len(shape)
    axis = _axis(int(ctx.attr("axis", -1 if ctx.opset >= 13 else 1)), rank)
    x, work = ctx.input(0), shape
    if ctx.opset < 13:
        work = (int(np.prod(shape[:axis])), int(np.prod(shape[axis:])))
        t = ctx.temp(work, tag="flat")
        ctx.emit("RESHAPE", [x, ctx.constant(np.array(work, np.int32), "flat")], [t])
        x, axis = t, 1
    am = ctx.temp(tuple(d for i, d in enumerate(work) if i != axis), np.int32, "argmax")
    opts = S.ArgMaxOptionsT()
    opts.outputType = S.TensorType.INT32
    ctx.emit("ARG_MAX", [x, ctx.constant(np.array([axis], np.int32), "axis")], [am], opts, version=2)
    oh = S.OneHotOptionsT()
    oh.axis = axis
    out = ctx.output(0) if tuple(work) == tuple(shape) else ctx.temp(work, tag="onehot")
    ctx.emit("ONE_HOT", [am, ctx.constant(np.array(work[axis], np.int32), "depth"),
                         ctx.constant(np.array(1.0, np.float32), "on"), ctx.constant(np.array(0.0, np.float32), "off")],
             [out], oh)
    if out != ctx.output(0):
        ctx.emit("RESHAPE", [out, ctx.constant(np.array(shape, np.int32), "shape")], [ctx.output(0)])
