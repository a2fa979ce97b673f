"""Bit-level ops: BitCast (BITCAST; bool -> 8-bit as CAST), BitwiseXor (BITWISE_XOR), BitwiseNot (XOR with
all ones), OptionalHasElement on an absent input (a constant false)."""

from __future__ import annotations

import numpy as np
import onnx
from ai_edge_litert import schema_py_generated as S
from onnx import helper

from edgec.lower.tflite.ops._util import const_output, full_rank
from edgec.lower.tflite.registry import LowerCtx, lowers

_XOR_TYPES = {np.dtype(t) for t in (np.int8, np.uint8, np.int16, np.int32)}


@lowers("BitCast")
def bitcast(ctx: LowerCtx) -> None:
    """BITCAST between types of one width (the shape stays); bool -> int8/uint8 is a CAST (0/1 bytes)."""
    src = ctx.dtype(0)
    try:
        dst = np.dtype(helper.tensor_dtype_to_np_dtype(int(ctx.attr("to"))))
    except (KeyError, TypeError, ValueError):
        ctx.unsupported(f"to={onnx.TensorProto.DataType.Name(int(ctx.attr('to')))}")
    if src.itemsize != dst.itemsize or dst != ctx.out_dtype(0):
        ctx.unsupported(f"{src} -> {dst}: widths differ here (float64 is computed as float32)")
    if src == dst:
        return ctx.alias(0, ctx.input(0))
    if src == np.bool_:
        return ctx.emit("CAST", [ctx.input(0)], [ctx.output(0)], S.CastOptionsT())
    if dst == np.bool_:
        ctx.unsupported(f"{src} -> bool (values other than 0/1 have no bool)")
    ctx.emit("BITCAST", [ctx.input(0)], [ctx.output(0)])


def _xor_dtype(ctx: LowerCtx) -> np.dtype:
    dtype = ctx.dtype(0)
    if dtype not in _XOR_TYPES:
        ctx.unsupported(f"dtype {dtype} (int8/uint8/int16/int32 are lowered)")
    return dtype


@lowers("BitwiseXor")
def bitwise_xor(ctx: LowerCtx) -> None:
    """BITWISE_XOR (broadcasting)."""
    dtype = _xor_dtype(ctx)
    rank = len(ctx.out_shape(0))
    ins = [ctx.input(i) if ctx.const(i) is None else ctx.constant(full_rank(ctx.const(i).astype(dtype), rank), f"in{i}")
           for i in (0, 1)]
    ctx.emit("BITWISE_XOR", ins, [ctx.output(0)])


@lowers("BitwiseNot")
def bitwise_not(ctx: LowerCtx) -> None:
    """BITWISE_XOR with all bits set."""
    dtype = _xor_dtype(ctx)
    ones = np.full((1,) * len(ctx.shape(0)), np.iinfo(dtype).max if dtype.kind == "u" else -1, dtype)
    ctx.emit("BITWISE_XOR", [ctx.input(0), ctx.constant(ones, "all_ones")], [ctx.output(0)])


@lowers("OptionalHasElement")
def optional_has_element(ctx: LowerCtx) -> None:
    """An absent input: a constant false (optional-typed values have no TFLite form)."""
    if ctx.has_input(0):
        ctx.unsupported("an optional-typed input (TFLite takes tensors only)")
    const_output(ctx, 0, np.array(False))
