"""Binary/variadic arithmetic: Add, Sub, Mul, Div, Pow, Max, Min, Sum, Mean (numpy broadcasting)."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.ops._util import full_rank
from edgec.lower.tflite.registry import LowerCtx, lowers

_OPTIONS = {"ADD": S.AddOptionsT, "SUB": S.SubOptionsT, "MUL": S.MulOptionsT, "DIV": S.DivOptionsT,
            "POW": S.PowOptionsT, "MAXIMUM": S.MaximumMinimumOptionsT, "MINIMUM": S.MaximumMinimumOptionsT}


def operand(ctx: LowerCtx, i: int) -> int:
    """Input i; a constant is reshaped to the output's rank (leading 1s) and cast to the input dtype."""
    c = ctx.const(i)
    if c is None:
        return ctx.input(i)
    return ctx.constant(full_rank(c.astype(ctx.out_dtype(0)) if c.dtype != ctx.out_dtype(0) else c,
                                  len(ctx.out_shape(0))), f"operand{i}")


def _check_dtype(ctx: LowerCtx, allowed=(np.float32, np.int32, np.int64)) -> None:
    if ctx.out_dtype(0) not in [np.dtype(d) for d in allowed]:
        ctx.unsupported(f"dtype {ctx.out_dtype(0)} is not supported by this TFLite kernel")


def _binary(ctx: LowerCtx, code: str, a: int, b: int, out: int) -> None:
    ctx.emit(code, [a, b], [out], _OPTIONS[code]())


# small integer types run in int32 (LiteRT's kernels want quantized int8/int16 tensors): CAST in, op,
# CAST out (wraps like ONNX Runtime's C++ arithmetic; integer DIV truncates in both)
_NARROW = {np.dtype(t) for t in (np.int8, np.uint8, np.int16)}


def _widened(ctx: LowerCtx, code: str) -> bool:
    """Lower the variadic/binary `code` node in int32 when its dtype is a narrow integer; False otherwise."""
    dtype = ctx.out_dtype(0)
    if dtype not in _NARROW:
        return False
    shape, rank = ctx.out_shape(0), len(ctx.out_shape(0))
    ins = []
    for i, name in enumerate(ctx.node.inputs):
        if not name:
            continue
        c = ctx.const(i)
        if c is not None:
            ins.append(ctx.constant(full_rank(c.astype(np.int32), rank), f"operand{i}"))
            continue
        t = ctx.temp(ctx.shape(i), np.int32, f"wide{i}")
        ctx.emit("CAST", [ctx.input(i)], [t], S.CastOptionsT())
        ins.append(t)
    acc = ins[0]
    for k, b in enumerate(ins[1:]):
        out = ctx.temp(shape, np.int32, f"acc{k}")
        _binary(ctx, code, acc, b, out)
        acc = out
    ctx.emit("CAST", [acc], [ctx.output(0)], S.CastOptionsT())
    return True


def _lower_binary(code: str, allowed=(np.float32, np.int32, np.int64)):
    def lower(ctx: LowerCtx) -> None:
        if _widened(ctx, code):
            return
        _check_dtype(ctx, allowed)
        _binary(ctx, code, operand(ctx, 0), operand(ctx, 1), ctx.output(0))
    lower.__doc__ = f"{code} (broadcasting; int8/uint8/int16 in int32)"
    return lower


lowers("Add")(_lower_binary("ADD"))
lowers("Sub")(_lower_binary("SUB"))
lowers("Mul")(_lower_binary("MUL"))
lowers("Div")(_lower_binary("DIV", (np.float32, np.int32)))


@lowers("Pow")
def pow_(ctx: LowerCtx) -> None:
    """POW; an exponent of another dtype (ONNX allows it, TFLite does not) is CAST to the base's dtype."""
    _check_dtype(ctx, (np.float32, np.int32))
    if ctx.dtype(0) != ctx.out_dtype(0):
        ctx.unsupported(f"base dtype {ctx.dtype(0)} differs from the output's")
    exponent = operand(ctx, 1)
    if ctx.const(1) is None and ctx.dtype(1) != ctx.out_dtype(0):
        if ctx.dtype(1) not in (np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64)):
            ctx.unsupported(f"exponent dtype {ctx.dtype(1)}")
        cast = ctx.temp(ctx.shape(1), ctx.out_dtype(0), "exponent")
        ctx.emit("CAST", [exponent], [cast], S.CastOptionsT())
        exponent = cast
    _binary(ctx, "POW", operand(ctx, 0), exponent, ctx.output(0))


def _variadic(ctx: LowerCtx, code: str) -> int:
    """Fold n inputs pairwise; returns the last tensor written (the output)."""
    n = len([i for i in ctx.node.inputs if i])
    if n == 1:
        return ctx.input(0)
    acc = operand(ctx, 0)
    for i in range(1, n):
        out = ctx.output(0) if i == n - 1 else ctx.temp(ctx.out_shape(0), ctx.out_dtype(0), f"acc{i}")
        _binary(ctx, code, acc, operand(ctx, i), out)
        acc = out
    return acc


@lowers("Sum")
def sum_(ctx: LowerCtx) -> None:
    """ADD chain."""
    if len(ctx.node.inputs) == 1:
        return ctx.alias(0, ctx.input(0))
    if _widened(ctx, "ADD"):
        return
    _check_dtype(ctx)
    _variadic(ctx, "ADD")


@lowers("Max")
def max_(ctx: LowerCtx) -> None:
    """MAXIMUM chain."""
    if len(ctx.node.inputs) == 1:
        return ctx.alias(0, ctx.input(0))
    if _widened(ctx, "MAXIMUM"):
        return
    _check_dtype(ctx)
    _variadic(ctx, "MAXIMUM")


@lowers("Min")
def min_(ctx: LowerCtx) -> None:
    """MINIMUM chain."""
    if len(ctx.node.inputs) == 1:
        return ctx.alias(0, ctx.input(0))
    if _widened(ctx, "MINIMUM"):
        return
    _check_dtype(ctx)
    _variadic(ctx, "MINIMUM")


@lowers("Mean")
def mean(ctx: LowerCtx) -> None:
    """ADD chain then MUL by 1/n."""
    _check_dtype(ctx, (np.float32,))
    n = len(ctx.node.inputs)
    if n == 1:
        return ctx.alias(0, ctx.input(0))
    acc = operand(ctx, 0)
    for i in range(1, n):
        out = ctx.temp(ctx.out_shape(0), tag=f"acc{i}")
        _binary(ctx, "ADD", acc, operand(ctx, i), out)
        acc = out
    _binary(ctx, "MUL", acc, ctx.constant(np.array([1.0 / n], np.float32), "inv_n"), ctx.output(0))
