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
