"""Comparisons and logic on bool tensors: Equal/Less/Greater/LessOrEqual/GreaterOrEqual (EQUAL, LESS, ...),
Not/And/Or/Xor (LOGICAL_*; Xor is NOT_EQUAL on bools), Where (SELECT_V2), IsNaN/IsInf."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.ops._util import full_rank
from edgec.lower.tflite.registry import LowerCtx, lowers

_CMP = {"Equal": "EQUAL", "Less": "LESS", "Greater": "GREATER", "LessOrEqual": "LESS_EQUAL",
        "GreaterOrEqual": "GREATER_EQUAL"}
# dtypes LiteRT's comparison kernels take (EQUAL also bool)
_CMP_TYPES = {np.dtype(t) for t in (np.float32, np.int32, np.int64)}
# compared after an exact CAST to int32 (LiteRT's int8/uint8 comparisons want quantized tensors and abort)
_WIDENED = {np.dtype(t) for t in (np.int8, np.uint8, np.int16)}
# dtypes LiteRT's SELECT_V2 takes for its value operands
_SELECT_TYPES = {np.dtype(t) for t in (np.float32, np.int32, np.int64, np.int8, np.uint8, np.int16, np.bool_)}


def operand(ctx: LowerCtx, i: int, dtype: np.dtype, rank: int) -> int:
    """Input i; a constant is cast to `dtype` and given `rank` (leading 1s)."""
    c = ctx.const(i)
    if c is None:
        return ctx.input(i)
    return ctx.constant(full_rank(np.asarray(c).astype(dtype), rank), f"operand{i}")


@lowers("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual")
def compare(ctx: LowerCtx) -> None:
    """EQUAL / LESS / GREATER / LESS_EQUAL / GREATER_EQUAL (broadcasting) -> bool."""
    dtype = ctx.dtype(0)
    if dtype not in _CMP_TYPES | _WIDENED and not (dtype == np.bool_ and ctx.node.op == "Equal"):
        ctx.unsupported(f"dtype {dtype} has no TFLite {_CMP[ctx.node.op]} kernel")
    rank = len(ctx.out_shape(0))
    ins = [operand(ctx, i, dtype, rank) for i in (0, 1)]
    if dtype in _WIDENED:
        ins = [widen(ctx, t, i) for i, t in enumerate(ins)]
    ctx.emit(_CMP[ctx.node.op], ins, [ctx.output(0)])


def widen(ctx: LowerCtx, t: int, i: int) -> int:
    """CAST tensor t (input i, a small integer type) to int32."""
    w = ctx.temp(ctx.b.tensors[t].shape, np.int32, f"int32_{i}")
    ctx.emit("CAST", [t], [w], S.CastOptionsT())
    return w


def _bool_inputs(ctx: LowerCtx) -> None:
    for i, name in enumerate(ctx.node.inputs):
        if name and ctx.dtype(i) != np.bool_:
            ctx.unsupported(f"input '{name}' is {ctx.dtype(i)} (logical ops take bool)")


@lowers("Not")
def not_(ctx: LowerCtx) -> None:
    """LOGICAL_NOT."""
    _bool_inputs(ctx)
    ctx.emit("LOGICAL_NOT", [ctx.input(0)], [ctx.output(0)])


@lowers("And", "Or", "Xor")
def logical(ctx: LowerCtx) -> None:
    """LOGICAL_AND / LOGICAL_OR; Xor is NOT_EQUAL of the two bools."""
    _bool_inputs(ctx)
    code = {"And": "LOGICAL_AND", "Or": "LOGICAL_OR", "Xor": "NOT_EQUAL"}[ctx.node.op]
    rank = len(ctx.out_shape(0))
    ctx.emit(code, [operand(ctx, 0, np.bool_, rank), operand(ctx, 1, np.bool_, rank)], [ctx.output(0)])


@lowers("Where")
def where(ctx: LowerCtx) -> None:
    """SELECT_V2(condition, x, y) with broadcasting."""
    dtype = ctx.out_dtype(0)
    if dtype not in _SELECT_TYPES:
        ctx.unsupported(f"dtype {dtype} has no TFLite SELECT_V2 kernel")
    rank = len(ctx.out_shape(0))
    ctx.emit("SELECT_V2", [operand(ctx, 0, np.bool_, rank), operand(ctx, 1, dtype, rank),
                           operand(ctx, 2, dtype, rank)], [ctx.output(0)])


@lowers("IsNaN")
def is_nan(ctx: LowerCtx) -> None:
    """NOT_EQUAL(x, x): only NaN differs from itself."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")
    x = ctx.input(0)
    ctx.emit("NOT_EQUAL", [x, x], [ctx.output(0)])


@lowers("IsInf")
def is_inf(ctx: LowerCtx) -> None:
    """EQUAL(x, +inf) / EQUAL(x, -inf) / EQUAL(ABS(x), inf) per detect_positive / detect_negative."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")
    pos, neg = int(ctx.attr("detect_positive", 1)), int(ctx.attr("detect_negative", 1))
    shape, rank = ctx.shape(0), len(ctx.shape(0))
    x = ctx.input(0)
    inf = ctx.constant(np.full((1,) * rank, np.inf, np.float32), "inf")
    if pos and neg:
        a = ctx.temp(shape, tag="abs")
        ctx.emit("ABS", [x], [a])
        return ctx.emit("EQUAL", [a, inf], [ctx.output(0)])
    if pos:
        return ctx.emit("EQUAL", [x, inf], [ctx.output(0)])
    if neg:
        return ctx.emit("EQUAL", [x, ctx.constant(np.full((1,) * rank, -np.inf, np.float32), "ninf")], [ctx.output(0)])
    f = ctx.constant(np.full((1,) * rank, np.nan, np.float32), "nan")  # NaN == anything is false
    ctx.emit("EQUAL", [x, f], [ctx.output(0)])
