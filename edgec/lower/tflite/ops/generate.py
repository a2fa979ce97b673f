"""Ops that make or repeat tensors: Shape, Size, EyeLike (build-time constants), ConstantOfShape (FILL),
Range (RANGE), Expand (BROADCAST_TO), Tile (TILE), OneHot (ONE_HOT)."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.ops._util import const_output
from edgec.lower.tflite.registry import LowerCtx, lowers


@lowers("Shape")
def shape(ctx: LowerCtx) -> None:
    """The static shape (start/end sliced) as a constant."""
    dims = ctx.shape(0)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    const_output(ctx, 0, np.array(dims[slice(start, end)], np.int64))


@lowers("Size")
def size(ctx: LowerCtx) -> None:
    """The static element count as a constant."""
    const_output(ctx, 0, np.array(int(np.prod(ctx.shape(0))), np.int64))


@lowers("EyeLike")
def eye_like(ctx: LowerCtx) -> None:
    """A constant identity band (k) of the input's static shape."""
    n, m = ctx.shape(0)
    const_output(ctx, 0, np.eye(n, m, int(ctx.attr("k", 0)), dtype=ctx.out_dtype(0)))


def _fill_value(ctx: LowerCtx) -> np.ndarray:
    value = ctx.attr("value")
    return np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)


@lowers("ConstantOfShape")
def constant_of_shape(ctx: LowerCtx) -> None:
    """A constant when the shape is; else FILL(shape, value)."""
    value = _fill_value(ctx)
    out = ctx.out_shape(0)
    if 0 in out:
        ctx.unsupported("the result is empty (TFLite tensors cannot have a zero dimension)")
    if ctx.const(0) is not None:
        return const_output(ctx, 0, np.full(out, value[0], ctx.out_dtype(0)))
    if ctx.out_dtype(0) not in (np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)):
        ctx.unsupported(f"dtype {ctx.out_dtype(0)} has no TFLite FILL kernel")
    ctx.emit("FILL", [ctx.input(0), ctx.constant(np.array(value[0], ctx.out_dtype(0)), "value")], [ctx.output(0)])


@lowers("Range")
def range_(ctx: LowerCtx) -> None:
    """A constant when start/limit/delta are; else RANGE (float32, int32, int64)."""
    vals = [ctx.const(i) for i in range(3)]
    out = ctx.out_shape(0)
    if 0 in out:
        ctx.unsupported("the result is empty (TFLite tensors cannot have a zero dimension)")
    if all(v is not None for v in vals):
        start, limit, delta = (np.asarray(v).reshape(()) for v in vals)
        return const_output(ctx, 0, np.arange(start, limit, delta).astype(ctx.out_dtype(0)))
    dtype = ctx.out_dtype(0)
    if dtype not in (np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64)):
        ctx.unsupported(f"dtype {dtype} has no TFLite RANGE kernel")
    ins = [ctx.input(i) if vals[i] is None else ctx.constant(np.asarray(vals[i], dtype).reshape(()), f"arg{i}")
           for i in range(3)]
    ctx.emit("RANGE", ins, [ctx.output(0)])


@lowers("Expand")
def expand(ctx: LowerCtx) -> None:
    """BROADCAST_TO the (static) output shape; a plain copy when nothing is broadcast."""
    out = ctx.out_shape(0)
    if 0 in out:
        ctx.unsupported("the result is empty (TFLite tensors cannot have a zero dimension)")
    x = ctx.input(0)
    if tuple(ctx.shape(0)) == tuple(out):
        return ctx.alias(0, x)
    ctx.emit("BROADCAST_TO", [x, ctx.constant(np.array(out, np.int32), "shape")], [ctx.output(0)], version=2)


@lowers("Tile")
def tile(ctx: LowerCtx) -> None:
    """TILE with constant repeats."""
    reps = ctx.const(1)
    if reps is None:
        ctx.unsupported(f"repeats (input '{ctx.node.inputs[1]}') must be a constant")
    if 0 in ctx.out_shape(0):
        ctx.unsupported("the result is empty (TFLite tensors cannot have a zero dimension)")
    ctx.emit("TILE", [ctx.input(0), ctx.constant(reps.astype(np.int32), "repeats")], [ctx.output(0)])


@lowers("OneHot")
def one_hot(ctx: LowerCtx) -> None:
    """ONE_HOT; negative indices wrap by depth (FLOOR_MOD), float indices are truncated (CAST) first."""
    depth, values = ctx.const(1), ctx.const(2)
    if depth is None or values is None:
        ctx.unsupported("depth and values must be constants")
    depth = int(np.asarray(depth).reshape(-1)[0])
    dtype = ctx.out_dtype(0)
    if dtype not in (np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)):
        ctx.unsupported(f"dtype {dtype} has no TFLite ONE_HOT kernel")
    idx, ishape = ctx.input(0), ctx.shape(0)
    if ctx.dtype(0) not in (np.dtype(np.int32), np.dtype(np.int64)):
        t = ctx.temp(ishape, np.int32, "indices_i32")
        ctx.emit("CAST", [idx], [t], S.CastOptionsT())
        idx = t
    itype = np.dtype(np.int32) if ctx.dtype(0) not in (np.dtype(np.int64),) else np.dtype(np.int64)
    # ONNX: an index in [-depth, depth) counts from the end; others are out of range (all-off rows)
    wrapped = ctx.temp(ishape, itype, "wrapped")
    neg = ctx.temp(ishape, np.bool_, "negative")
    plus = ctx.temp(ishape, itype, "plus_depth")
    ctx.emit("LESS", [idx, ctx.constant(np.zeros((1,) * len(ishape), itype), "zero")], [neg])
    ctx.emit("ADD", [idx, ctx.constant(np.full((1,) * len(ishape), depth, itype), "depth_v")], [plus], S.AddOptionsT())
    ctx.emit("SELECT_V2", [neg, plus, idx], [wrapped])
    opts = S.OneHotOptionsT()
    axis = int(ctx.attr("axis", -1))
    opts.axis = axis + len(ishape) + 1 if axis < 0 else axis  # LiteRT takes -1 only
    v = np.asarray(values).reshape(-1).astype(dtype)
    ctx.emit("ONE_HOT", [wrapped, ctx.constant(np.array(depth, np.int32), "depth"),
                         ctx.constant(np.array(v[1], dtype), "on"), ctx.constant(np.array(v[0], dtype), "off")],
             [ctx.output(0)], opts)
