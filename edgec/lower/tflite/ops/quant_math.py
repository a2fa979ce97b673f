"""QuantizeLinear / DequantizeLinear that are not TFLite int8 tensors (per-axis, blocked, int16, uint8 model
I/O, runtime-free float boundaries): ONNX's formulas in float arithmetic.
  DequantizeLinear: (x - zero_point) * scale       (the subtraction in int32: exact)
  QuantizeLinear:   clamp(round_half_even(x / scale) + zero_point, dtype range)
Scale and zero point are constants; per-axis vectors are reshaped onto `axis`, blocked ones repeated along
it (block_size). Called by int8_ops' QuantizeLinear/DequantizeLinear for nodes qdq.py left as they are."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx

_INTS = {np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.int32)}


def _param(ctx: LowerCtx, i: int, rank: int, shape, what: str) -> np.ndarray | None:
    """Constant scale / zero point broadcast to the data's rank (per-tensor, per-axis or blocked)."""
    if not ctx.has_input(i):
        return None
    v = ctx.const(i)
    if v is None:
        ctx.unsupported(f"{what} (input '{ctx.node.inputs[i]}') must be a constant")
    v = np.asarray(v)
    if v.size == 1:
        return v.reshape((1,) * rank)
    axis = int(ctx.attr("axis", 1))
    axis = axis + rank if axis < 0 else axis
    block = int(ctx.attr("block_size", 0))
    if block:
        if v.ndim != rank:
            ctx.unsupported(f"blocked {what} of rank {v.ndim} for rank-{rank} data")
        return np.repeat(v, block, axis=axis).take(range(shape[axis]), axis=axis)
    if v.ndim != 1 or v.size != shape[axis]:
        ctx.unsupported(f"{what} of shape {list(v.shape)} does not match axis {axis}")
    return v.reshape([-1 if k == axis else 1 for k in range(rank)])


def _op(ctx: LowerCtx, code: str, ins, shape, dtype, tag: str, opts=None, out=None) -> int:
    t = ctx.temp(shape, dtype, tag) if out is None else out
    ctx.emit(code, list(ins), [t], opts)
    return t


def dequantize_math(ctx: LowerCtx) -> None:
    x_dt, shape = ctx.dtype(0), ctx.shape(0)
    if x_dt not in _INTS:
        ctx.unsupported(f"dtype {x_dt}: no TFLite tensor type for it (int8/uint8/int16/int32 are lowered)")
    if ctx.out_dtype(0) != np.float32:
        ctx.unsupported(f"output dtype {ctx.out_dtype(0)} (float32 only)")
    rank = len(shape)
    scale = _param(ctx, 1, rank, shape, "scale")
    zp = _param(ctx, 2, rank, shape, "zero point")
    x = ctx.input(0)
    if x_dt != np.int32:
        x = _op(ctx, "CAST", [x], shape, np.int32, "as_int32", S.CastOptionsT())
    if zp is not None and zp.any():
        x = _op(ctx, "SUB", [x, ctx.constant(zp.astype(np.int32), "zero_point")], shape, np.int32, "centered",
                S.SubOptionsT())
    f = _op(ctx, "CAST", [x], shape, np.float32, "as_float", S.CastOptionsT())
    ctx.emit("MUL", [f, ctx.constant(scale.astype(np.float32), "scale")], [ctx.output(0)], S.MulOptionsT())


def quantize_math(ctx: LowerCtx) -> None:
    shape = ctx.shape(0)
    rank = len(shape)
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"input dtype {ctx.dtype(0)} (float32 only)")
    out_dt = ctx.out_dtype(0)
    if out_dt not in _INTS - {np.dtype(np.int32)}:
        ctx.unsupported(f"output dtype {out_dt}: no TFLite tensor type for it (int8/uint8/int16 are lowered)")
    scale = _param(ctx, 1, rank, shape, "scale")
    zp = _param(ctx, 2, rank, shape, "zero point")
    info = np.iinfo(out_dt)
    q = _op(ctx, "DIV", [ctx.input(0), ctx.constant(scale.astype(np.float32), "scale")], shape, np.float32, "scaled",
            S.DivOptionsT())
    q = _op(ctx, "ROUND", [q], shape, np.float32, "rounded")  # half to even, as ONNX
    if zp is not None and zp.any():
        q = _op(ctx, "ADD", [q, ctx.constant(zp.astype(np.float32), "zero_point")], shape, np.float32, "shifted",
                S.AddOptionsT())
    q = _op(ctx, "MAXIMUM", [q, ctx.constant(np.full((1,) * rank, info.min, np.float32), "lo")], shape, np.float32,
            "lo_clamped", S.MaximumMinimumOptionsT())
    q = _op(ctx, "MINIMUM", [q, ctx.constant(np.full((1,) * rank, info.max, np.float32), "hi")], shape, np.float32,
            "clamped", S.MaximumMinimumOptionsT())
    opts = S.CastOptionsT()
    ctx.emit("CAST", [q], [ctx.output(0)], opts)



def _centered_float(ctx: LowerCtx, i: int, zp_i: int, tag: str) -> tuple[int, int]:
    """(float tensor of input i minus its zero point, the largest |value| it can take): exact in float32."""
    dt = ctx.dtype(i)
    if dt not in (np.dtype(np.int8), np.dtype(np.uint8)):
        ctx.unsupported(f"input {i} dtype {dt} (int8/uint8)")
    shape = ctx.shape(i)
    zp = np.zeros(1, np.int32)
    if ctx.has_input(zp_i):
        v = ctx.const(zp_i)
        if v is None or np.asarray(v).size != 1:
            ctx.unsupported(f"zero point (input {zp_i}) must be a per-tensor constant")
        zp = np.asarray(v).astype(np.int32).reshape(1)
    info = np.iinfo(dt)
    bound = int(max(abs(info.min - zp[0]), abs(info.max - zp[0])))
    t = _op(ctx, "CAST", [ctx.input(i)], shape, np.int32, f"{tag}_i32", S.CastOptionsT())
    if zp[0]:
        t = _op(ctx, "SUB", [t, ctx.constant(zp.reshape((1,) * len(shape)), f"{tag}_zp")], shape, np.int32,
                f"{tag}_centered", S.SubOptionsT())
    return _op(ctx, "CAST", [t], shape, np.float32, f"{tag}_f", S.CastOptionsT()), bound


def integer_matmul(ctx: LowerCtx, zp_a: int, b_i: int, zp_b: int) -> tuple[int, tuple]:
    """(a - za) @ (b - zb) as a float32 BATCH_MATMUL, exact while every sum stays below 2^24."""
    a, ba = _centered_float(ctx, 0, zp_a, "a")
    b, bb = _centered_float(ctx, b_i, zp_b, "b")
    sa, sb = ctx.shape(0), ctx.shape(b_i)
    if len(sa) < 2 or len(sb) < 2:
        ctx.unsupported("1-D operands")
    k = sa[-1]
    if k * ba * bb >= 2 ** 24:
        ctx.unsupported(f"inner size {k}: the int32 sums could exceed float32's exact integers (2^24)")
    shape = tuple(np.broadcast_shapes(sa[:-2], sb[:-2])) + (sa[-2], sb[-1])
    return _op(ctx, "BATCH_MATMUL", [a, b], shape, np.float32, "acc", S.BatchMatMulOptionsT()), shape


def _scalar(ctx: LowerCtx, i: int, what: str) -> float:
    v = ctx.const(i) if ctx.has_input(i) else None
    if v is None or np.asarray(v).size != 1:
        ctx.unsupported(f"{what} (input {i}) must be a per-tensor constant")
    return np.asarray(v).reshape(-1)[0]


def qlinear_matmul(ctx: LowerCtx) -> None:
    """round(acc * (sa * sb / sy)) + zy, clamped, with acc the exact integer product."""
    for i in (1, 4, 6):
        if ctx.has_input(i) and ctx.dtype(i) != np.float32:
            ctx.unsupported(f"scale dtype {ctx.dtype(i)} (float32 only)")
    acc, shape = integer_matmul(ctx, 2, 3, 5)
    sa, sb, sy = (np.float32(_scalar(ctx, i, "scale")) for i in (1, 4, 6))
    zy = _scalar(ctx, 7, "zero point") if ctx.has_input(7) else 0
    mult = np.float32(np.float32(sa * sb) / sy)  # as ONNX Runtime forms the requantization multiplier
    rank = len(shape)
    q = _op(ctx, "MUL", [acc, ctx.constant(np.full((1,) * rank, mult, np.float32), "multiplier")], shape, np.float32,
            "scaled", S.MulOptionsT())
    q = _op(ctx, "ROUND", [q], shape, np.float32, "rounded")
    info = np.iinfo(ctx.out_dtype(0))
    q = _op(ctx, "ADD", [q, ctx.constant(np.full((1,) * rank, float(zy), np.float32), "zy")], shape, np.float32,
            "shifted", S.AddOptionsT())
    q = _op(ctx, "MAXIMUM", [q, ctx.constant(np.full((1,) * rank, info.min, np.float32), "lo")], shape, np.float32,
            "lo_clamped", S.MaximumMinimumOptionsT())
    q = _op(ctx, "MINIMUM", [q, ctx.constant(np.full((1,) * rank, info.max, np.float32), "hi")], shape, np.float32,
            "clamped", S.MaximumMinimumOptionsT())
    ctx.emit("CAST", [q], [ctx.output(0)], S.CastOptionsT())


def matmul_integer(ctx: LowerCtx) -> None:
    """int32 (a - za) @ (b - zb)."""
    acc, _ = integer_matmul(ctx, 2, 1, 3)
    ctx.emit("CAST", [acc], [ctx.output(0)], S.CastOptionsT())


def dynamic_quantize(ctx: LowerCtx) -> None:
    """uint8 scale/zero point from the tensor's range (0 included), then QuantizeLinear with them."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")
    shape = ctx.shape(0)
    rank = len(shape)
    axes = ctx.constant(np.arange(rank, dtype=np.int32), "all")
    red = S.ReducerOptionsT()
    red.keepDims = False
    x = ctx.input(0)
    hi = _op(ctx, "REDUCE_MAX", [x, axes], (), np.float32, "max", red)
    lo = _op(ctx, "REDUCE_MIN", [x, axes], (), np.float32, "min", red)
    zero = ctx.constant(np.array(0.0, np.float32), "zero")
    hi = _op(ctx, "MAXIMUM", [hi, zero], (), np.float32, "max0", S.MaximumMinimumOptionsT())
    lo = _op(ctx, "MINIMUM", [lo, zero], (), np.float32, "min0", S.MaximumMinimumOptionsT())
    rng = _op(ctx, "SUB", [hi, lo], (), np.float32, "range", S.SubOptionsT())
    scale = _op(ctx, "DIV", [rng, ctx.constant(np.array(255.0, np.float32), "qmax")], (), np.float32, "scale",
                S.DivOptionsT(), out=ctx.output(1) if len(ctx.node.outputs) > 1 and ctx.node.outputs[1] else None)
    zpf = _op(ctx, "DIV", [_op(ctx, "NEG", [lo], (), np.float32, "neg_min"), scale], (), np.float32, "zp_f",
              S.DivOptionsT())
    zpf = _op(ctx, "MINIMUM", [_op(ctx, "MAXIMUM", [zpf, zero], (), np.float32, "zp_lo", S.MaximumMinimumOptionsT()),
                               ctx.constant(np.array(255.0, np.float32), "zp_cap")], (), np.float32, "zp_clamped",
              S.MaximumMinimumOptionsT())
    zpf = _op(ctx, "ROUND", [zpf], (), np.float32, "zp_round")
    if len(ctx.node.outputs) > 2 and ctx.node.outputs[2]:
        ctx.emit("CAST", [zpf], [ctx.output(2)], S.CastOptionsT())
    q = _op(ctx, "ROUND", [_op(ctx, "DIV", [x, scale], shape, np.float32, "scaled", S.DivOptionsT())], shape,
            np.float32, "rounded")
    q = _op(ctx, "ADD", [q, zpf], shape, np.float32, "shifted", S.AddOptionsT())
    q = _op(ctx, "MAXIMUM", [q, zero], shape, np.float32, "q_lo", S.MaximumMinimumOptionsT())
    q = _op(ctx, "MINIMUM", [q, ctx.constant(np.array(255.0, np.float32), "q_hi")], shape, np.float32, "q_clamped",
            S.MaximumMinimumOptionsT())
    ctx.emit("CAST", [q], [ctx.output(0)], S.CastOptionsT())
