"""Unary math TFLite has natively (SIN, COS, ROUND, SIGN) or composes exactly enough from EXP/LOG/SQRT/ATAN2:
Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Softplus, Softsign, Selu, Celu, ThresholdedRelu,
Shrink, Mish, Swish, Mod, BitShift."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers

_OPTS = {"ADD": S.AddOptionsT, "SUB": S.SubOptionsT, "MUL": S.MulOptionsT, "DIV": S.DivOptionsT,
         "MAXIMUM": S.MaximumMinimumOptionsT, "MINIMUM": S.MaximumMinimumOptionsT}


class _Emit:
    """Tiny expression helper: every intermediate has the output's shape (unary ops)."""

    def __init__(self, ctx: LowerCtx):
        self.ctx, self.shape, self.n = ctx, ctx.out_shape(0), 0

    def __call__(self, code: str, *ins: int, out: int | None = None, dtype=np.float32) -> int:
        self.n += 1
        t = self.ctx.temp(self.shape, dtype, f"{code.lower()}{self.n}") if out is None else out
        opts = _OPTS[code]() if code in _OPTS else None
        self.ctx.emit(code, list(ins), [t], opts)
        return t

    def k(self, v: float, dtype=np.float32) -> int:
        return self.ctx.constant(np.full((1,) * len(self.shape), v, dtype), "k")


def _float(ctx: LowerCtx) -> None:
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")


def _simple(code: str):
    def lower(ctx: LowerCtx) -> None:
        _float(ctx)
        ctx.emit(code, [ctx.input(0)], [ctx.output(0)])
    lower.__doc__ = code
    return lower


lowers("Sin")(_simple("SIN"))
lowers("Cos")(_simple("COS"))
lowers("Round")(_simple("ROUND"))  # both round half to even


@lowers("Sign")
def sign(ctx: LowerCtx) -> None:
    """SIGN (float32, int32)."""
    if ctx.dtype(0) not in (np.dtype(np.float32), np.dtype(np.int32)):
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32, int32 only)")
    ctx.emit("SIGN", [ctx.input(0)], [ctx.output(0)])


@lowers("Tan")
def tan(ctx: LowerCtx) -> None:
    """SIN / COS."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    e("DIV", e("SIN", x), e("COS", x), out=ctx.output(0))


def _sqrt_1_minus_sq(e: _Emit, x: int) -> int:
    return e("SQRT", e("SUB", e.k(1.0), e("MUL", x, x)))


@lowers("Atan")
def atan(ctx: LowerCtx) -> None:
    """ATAN2(x, 1)."""
    _float(ctx)
    e = _Emit(ctx)
    ones = e("ADD", e("MUL", ctx.input(0), e.k(0.0)), e.k(1.0))  # ATAN2 does not broadcast
    e("ATAN2", ctx.input(0), ones, out=ctx.output(0))


@lowers("Asin")
def asin(ctx: LowerCtx) -> None:
    """ATAN2(x, sqrt(1 - x^2))."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    e("ATAN2", x, _sqrt_1_minus_sq(e, x), out=ctx.output(0))


@lowers("Acos")
def acos(ctx: LowerCtx) -> None:
    """ATAN2(sqrt(1 - x^2), x)."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    e("ATAN2", _sqrt_1_minus_sq(e, x), x, out=ctx.output(0))


@lowers("Sinh", "Cosh")
def sinh_cosh(ctx: LowerCtx) -> None:
    """(exp(x) -/+ exp(-x)) / 2."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    a, b = e("EXP", x), e("EXP", e("NEG", x))
    e("MUL", e("SUB" if ctx.node.op == "Sinh" else "ADD", a, b), e.k(0.5), out=ctx.output(0))


@lowers("Asinh")
def asinh(ctx: LowerCtx) -> None:
    """sign(x) * log(|x| + sqrt(x^2 + 1)) (odd, so negative x loses no digits)."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    a = e("ABS", x)
    r = e("LOG", e("ADD", a, e("SQRT", e("ADD", e("MUL", x, x), e.k(1.0)))))
    e("MUL", r, e("SIGN", x), out=ctx.output(0))


@lowers("Acosh")
def acosh(ctx: LowerCtx) -> None:
    """log(x + sqrt(x^2 - 1))."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    e("LOG", e("ADD", x, e("SQRT", e("SUB", e("MUL", x, x), e.k(1.0)))), out=ctx.output(0))


@lowers("Atanh")
def atanh(ctx: LowerCtx) -> None:
    """0.5 * log((1 + x) / (1 - x))."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    q = e("DIV", e("ADD", e.k(1.0), x), e("SUB", e.k(1.0), x))
    e("MUL", e("LOG", q), e.k(0.5), out=ctx.output(0))


def _softplus(e: _Emit, x: int) -> int:
    """max(x, 0) + log(1 + exp(-|x|)): no overflow for large |x|."""
    return e("ADD", e("RELU", x), e("LOG", e("ADD", e("EXP", e("NEG", e("ABS", x))), e.k(1.0))))


@lowers("Softplus")
def softplus(ctx: LowerCtx) -> None:
    """max(x, 0) + log(1 + exp(-|x|))."""
    _float(ctx)
    e = _Emit(ctx)
    e("ADD", e("RELU", ctx.input(0)), e("LOG", e("ADD", e("EXP", e("NEG", e("ABS", ctx.input(0)))), e.k(1.0))),
      out=ctx.output(0))


@lowers("Softsign")
def softsign(ctx: LowerCtx) -> None:
    """x / (1 + |x|)."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    e("DIV", x, e("ADD", e("ABS", x), e.k(1.0)), out=ctx.output(0))


@lowers("Mish")
def mish(ctx: LowerCtx) -> None:
    """x * tanh(softplus(x))."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    e("MUL", x, e("TANH", _softplus(e, x)), out=ctx.output(0))


@lowers("Swish")
def swish(ctx: LowerCtx) -> None:
    """x * sigmoid(alpha * x)."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    alpha = float(ctx.attr("alpha", 1.0))
    ax = x if alpha == 1.0 else e("MUL", x, e.k(alpha))
    e("MUL", x, e("LOGISTIC", ax), out=ctx.output(0))


@lowers("Selu")
def selu(ctx: LowerCtx) -> None:
    """gamma * (max(x, 0) + min(alpha * (exp(x) - 1), 0))."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    alpha, gamma = float(ctx.attr("alpha", 1.67326319217681884765625)), float(ctx.attr("gamma", 1.05070102214813232421875))
    neg = e("MINIMUM", e("MUL", e("SUB", e("EXP", x), e.k(1.0)), e.k(alpha)), e.k(0.0))
    e("MUL", e("ADD", e("RELU", x), neg), e.k(gamma), out=ctx.output(0))


@lowers("Celu")
def celu(ctx: LowerCtx) -> None:
    """max(x, 0) + min(alpha * (exp(x / alpha) - 1), 0)."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    alpha = float(ctx.attr("alpha", 1.0))
    neg = e("MINIMUM", e("MUL", e("SUB", e("EXP", e("MUL", x, e.k(1.0 / alpha))), e.k(1.0)), e.k(alpha)), e.k(0.0))
    e("ADD", e("RELU", x), neg, out=ctx.output(0))


@lowers("ThresholdedRelu")
def thresholded_relu(ctx: LowerCtx) -> None:
    """SELECT_V2(x > alpha, x, 0)."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    mask = e("GREATER", x, e.k(float(ctx.attr("alpha", 1.0))), dtype=np.bool_)
    e("SELECT_V2", mask, x, e.k(0.0), out=ctx.output(0))


@lowers("Shrink")
def shrink(ctx: LowerCtx) -> None:
    """x < -lambd: x + bias; x > lambd: x - bias; else 0 (two SELECT_V2)."""
    _float(ctx)
    e, x = _Emit(ctx), ctx.input(0)
    lambd, bias = float(ctx.attr("lambd", 0.5)), float(ctx.attr("bias", 0.0))
    hi = e("SELECT_V2", e("GREATER", x, e.k(lambd), dtype=np.bool_), e("SUB", x, e.k(bias)), e.k(0.0))
    e("SELECT_V2", e("LESS", x, e.k(-lambd), dtype=np.bool_), e("ADD", x, e.k(bias)), hi, out=ctx.output(0))


_WIDE = {np.dtype(t) for t in (np.int8, np.uint8, np.int16)}  # computed in int32 (CAST in and out: exact)


def _int_operands(ctx: LowerCtx, wide) -> tuple[list[int], np.dtype]:
    """Both inputs (constants broadcast to the output rank), CAST to `wide` when their dtype differs."""
    rank, dtype = len(ctx.out_shape(0)), ctx.dtype(0)
    out = []
    for i in (0, 1):
        c = ctx.const(i)
        if c is not None:
            out.append(ctx.constant(np.asarray(c).astype(wide).reshape((1,) * (rank - c.ndim) + c.shape), f"in{i}"))
            continue
        t = ctx.input(i)
        if dtype != wide:
            w = ctx.temp(ctx.shape(i), wide, f"wide{i}")
            ctx.emit("CAST", [t], [w], S.CastOptionsT())
            t = w
        out.append(t)
    return out, np.dtype(wide)


def _narrow(ctx: LowerCtx, t: int, wide) -> None:
    """CAST the result back to the output dtype (or alias when it already is)."""
    if ctx.out_dtype(0) == wide:
        return ctx.alias(0, t)
    ctx.emit("CAST", [t], [ctx.output(0)], S.CastOptionsT())


@lowers("Mod")
def mod(ctx: LowerCtx) -> None:
    """fmod=0: FLOOR_MOD (sign of the divisor, as Python); fmod=1: FLOOR_MOD moved back by the divisor where
    its sign differs from the dividend's (C fmod). int8/uint8/int16 run in int32."""
    dtype = ctx.dtype(0)
    if dtype not in _WIDE | {np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.float32)}:
        ctx.unsupported(f"dtype {dtype} has no TFLite FLOOR_MOD kernel")
    wide = np.int32 if dtype in _WIDE else dtype
    (x, y), wide = _int_operands(ctx, wide)
    shape = ctx.out_shape(0)
    fmod = int(ctx.attr("fmod", 0))
    r = ctx.temp(shape, wide, "floor_mod") if fmod or wide != ctx.out_dtype(0) else ctx.output(0)
    ctx.emit("FLOOR_MOD", [x, y], [r], S.FloorModOptionsT())
    if fmod:
        zero = ctx.constant(np.zeros((1,) * len(shape), wide), "zero")
        nz, rneg, xneg, differ, fix = (ctx.temp(shape, np.bool_, t) for t in ("nonzero", "r_neg", "x_neg", "differ", "fix"))
        ctx.emit("NOT_EQUAL", [r, zero], [nz])
        ctx.emit("LESS", [r, zero], [rneg])
        ctx.emit("LESS", [x, zero], [xneg])
        ctx.emit("NOT_EQUAL", [rneg, xneg], [differ])
        ctx.emit("LOGICAL_AND", [nz, differ], [fix])
        back = ctx.temp(shape, wide, "moved_back")
        ctx.emit("SUB", [r, y], [back], S.SubOptionsT())
        t = ctx.temp(shape, wide, "trunc_mod") if wide != ctx.out_dtype(0) else ctx.output(0)
        ctx.emit("SELECT_V2", [fix, back, r], [t])
        r = t
    if r != ctx._tensors.get(ctx.node.outputs[0]):
        _narrow(ctx, r, wide)


@lowers("BitShift")
def bit_shift(ctx: LowerCtx) -> None:
    """LEFT: x * 2^y in int64 wrapped to the width; RIGHT: FLOOR_DIV(x, 2^y) in int32 (an arithmetic shift);
    2^y from a constant table. A shift outside [0, width) gives 0, or the sign fill for a right shift of a
    signed value, as ONNX's reference does."""
    dtype = ctx.dtype(0)
    if dtype not in _WIDE | {np.dtype(np.int32)}:
        ctx.unsupported(f"dtype {dtype} (int8, uint8, int16, int32 are lowered)")
    bits = dtype.itemsize * 8
    left = ctx.attr("direction") == "LEFT"
    wide = np.int64 if left else np.int32
    (x, y), wide = _int_operands(ctx, wide)
    shape = ctx.out_shape(0)
    rank = len(shape)

    def k(v) -> int:
        return ctx.constant(np.full((1,) * rank, v, wide), "k")

    def op(code, ins, dt=wide, opts=None):
        t = ctx.temp(shape, dt, code.lower())
        ctx.emit(code, ins, [t], opts)
        return t

    ys = op("ADD", [y, op("MUL", [x, k(0)], opts=S.MulOptionsT())], opts=S.AddOptionsT())  # y broadcast to x
    # a right shift by 31 of an int32 is the sign fill too (2^31 does not fit the int32 table)
    limit = bits if left or bits < 32 else 31
    valid = op("LOGICAL_AND", [op("GREATER_EQUAL", [ys, k(0)], np.bool_), op("LESS", [ys, k(limit)], np.bool_)],
               np.bool_)
    safe = op("SELECT_V2", [valid, ys, k(0)])
    g = S.GatherOptionsT()
    g.axis = 0
    p = op("GATHER", [ctx.constant(np.array([1 << i for i in range(limit)], wide), "pow2"), safe], opts=g)
    if left:
        r = op("MUL", [x, p], opts=S.MulOptionsT())
        half = 1 << (bits - 1)
        if dtype.kind == "u":
            r = op("FLOOR_MOD", [r, k(1 << bits)], opts=S.FloorModOptionsT())
        else:  # two's complement wrap into [-2^(w-1), 2^(w-1))
            r = op("SUB", [op("FLOOR_MOD", [op("ADD", [r, k(half)], opts=S.AddOptionsT()), k(1 << bits)],
                              opts=S.FloorModOptionsT()), k(half)], opts=S.SubOptionsT())
        fill = k(0)
    else:
        r = op("FLOOR_DIV", [x, p], opts=S.FloorDivOptionsT())
        fill = k(0) if dtype.kind == "u" else op("SELECT_V2", [op("LESS", [x, k(0)], np.bool_), k(-1), k(0)])
    _narrow(ctx, op("SELECT_V2", [valid, r, fill]), wide)
