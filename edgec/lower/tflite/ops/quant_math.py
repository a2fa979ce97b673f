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

