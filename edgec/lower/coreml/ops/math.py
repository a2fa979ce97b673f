"""Unary math (trigonometric, hyperbolic, rounding), Mod, Mean and the smooth activations ONNX defines
as formulas (Softplus, Softsign, Selu, Celu, Mish, ThresholdedRelu, Shrink)."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from onnx import TensorProto

from edgec.lower.coreml.ops._util import like
from edgec.lower.coreml.registry import Env, NodeView, lowers

def _unary(mil_op):
    def lower(n: NodeView, env: Env):
        return getattr(mb, mil_op)(x=env.var(n, 0), name=env.out(n))

    lower.__doc__ = mil_op
    return lower


for _onnx, _mil in (("Sin", "sin"), ("Cos", "cos"), ("Tan", "tan"), ("Asin", "asin"), ("Acos", "acos"),
                    ("Atan", "atan"), ("Sinh", "sinh"), ("Cosh", "cosh"), ("Atanh", "atanh"), ("Sign", "sign"),
                    ("Round", "round"), ("Softplus", "softplus"), ("Softsign", "softsign")):
    lowers(_onnx)(_unary(_mil))


@lowers("Asinh")
def asinh(n: NodeView, env: Env):
    """sign(x) * log(|x| + sqrt(x^2 + 1)) (odd symmetry avoids cancellation for large negative x)"""
    x = env.var(n, 0)
    a = mb.abs(x=x, name=env.tmp(n, "abs"))
    r = mb.sqrt(x=mb.add(x=mb.mul(x=a, y=a, name=env.tmp(n, "sq")), y=like(x, 1), name=env.tmp(n, "sq1")),
                name=env.tmp(n, "root"))
    y = mb.log(x=mb.add(x=a, y=r, name=env.tmp(n, "sum")), name=env.tmp(n, "log"))
    return mb.mul(x=y, y=mb.sign(x=x, name=env.tmp(n, "sign")), name=env.out(n))


@lowers("Acosh")
def acosh(n: NodeView, env: Env):
    """log(x + sqrt(x^2 - 1))"""
    x = env.var(n, 0)
    r = mb.sqrt(x=mb.sub(x=mb.mul(x=x, y=x, name=env.tmp(n, "sq")), y=like(x, 1), name=env.tmp(n, "sq1")),
                name=env.tmp(n, "root"))
    return mb.log(x=mb.add(x=x, y=r, name=env.tmp(n, "sum")), name=env.out(n))


@lowers("Mod")
def mod(n: NodeView, env: Env):
    """mod (floored, Python's %) for fmod=0; sign(x) * mod(|x|, |y|) (truncated, C's fmod) for fmod=1"""
    x, y = env.var(n, 0), env.var(n, 1)
    if not int(n.attr("fmod", 0)):
        return mb.mod(x=x, y=y, name=env.out(n))
    r = mb.mod(x=mb.abs(x=x, name=env.tmp(n, "ax")), y=mb.abs(x=y, name=env.tmp(n, "ay")), name=env.tmp(n, "r"))
    return mb.mul(x=r, y=mb.sign(x=x, name=env.tmp(n, "sign")), name=env.out(n))


@lowers("Mean")
def mean(n: NodeView, env: Env):
    """chained add, divided by the count"""
    live = [i for i in range(len(n.inputs)) if n.has(i)]
    acc = env.var(n, live[0])
    for k, i in enumerate(live[1:]):
        acc = mb.add(x=acc, y=env.var(n, i), name=env.tmp(n, f"sum{k}"))
    return mb.real_div(x=acc, y=like(acc, len(live)), name=env.out(n))


@lowers("Selu")
def selu(n: NodeView, env: Env):
    """gamma * elu(x, alpha)"""
    x = env.var(n, 0)
    alpha, gamma = n.attr("alpha", 1.67326319217681884765625), n.attr("gamma", 1.05070102214813232421875)
    y = mb.elu(x=x, alpha=like(x, alpha), name=env.tmp(n, "elu"))
    return mb.mul(x=y, y=like(x, gamma), name=env.out(n))


@lowers("Celu")
def celu(n: NodeView, env: Env):
    """alpha * elu(x / alpha, 1)"""
    x = env.var(n, 0)
    alpha = float(n.attr("alpha", 1.0))
    y = mb.elu(x=mb.real_div(x=x, y=like(x, alpha), name=env.tmp(n, "scaled")), alpha=like(x, 1.0),
               name=env.tmp(n, "elu"))
    return mb.mul(x=y, y=like(x, alpha), name=env.out(n))


@lowers("ThresholdedRelu")
def thresholded_relu(n: NodeView, env: Env):
    """select(x > alpha, x, 0) (MIL's thresholded_relu keeps x == alpha, ONNX does not)"""
    x = env.var(n, 0)
    keep = mb.greater(x=x, y=like(x, n.attr("alpha", 1.0)), name=env.tmp(n, "keep"))
    return mb.select(cond=keep, a=x, b=like(x, 0), name=env.out(n))


@lowers("Shrink")
def shrink(n: NodeView, env: Env):
    """x + bias below -lambd, x - bias above lambd, else 0 (two selects)"""
    x = env.var(n, 0)
    lambd, bias = float(n.attr("lambd", 0.5)), float(n.attr("bias", 0.0))
    low = mb.select(cond=mb.less(x=x, y=like(x, -lambd), name=env.tmp(n, "lo")),
                    a=mb.add(x=x, y=like(x, bias), name=env.tmp(n, "up")), b=like(x, 0), name=env.tmp(n, "low"))
    return mb.select(cond=mb.greater(x=x, y=like(x, lambd), name=env.tmp(n, "hi")),
                     a=mb.sub(x=x, y=like(x, bias), name=env.tmp(n, "down")), b=low, name=env.out(n))


@lowers("Mish")
def mish(n: NodeView, env: Env):
    """x * tanh(softplus(x))"""
    x = env.var(n, 0)
    t = mb.tanh(x=mb.softplus(x=x, name=env.tmp(n, "sp")), name=env.tmp(n, "tanh"))
    return mb.mul(x=x, y=t, name=env.out(n))


@lowers("Swish")
def swish(n: NodeView, env: Env):
    """x * sigmoid(alpha * x)"""
    x = env.var(n, 0)
    alpha = float(n.attr("alpha", 1.0))
    z = x if alpha == 1.0 else mb.mul(x=x, y=like(x, alpha), name=env.tmp(n, "ax"))
    return mb.mul(x=x, y=mb.sigmoid(x=z, name=env.tmp(n, "gate")), name=env.out(n))


# bit width and signedness of the integer types BitShift is lowered for (all carried as int32)
_BITS = {TensorProto.INT8: (8, True), TensorProto.UINT8: (8, False), TensorProto.INT16: (16, True),
         TensorProto.UINT16: (16, False), TensorProto.INT32: (32, True), TensorProto.INT64: (64, True)}


def _check_bitshift(n: NodeView) -> str | None:
    elem = n.dtype(0)
    if elem not in _BITS:
        return f"{TensorProto.DataType.Name(elem) if elem else 'unknown'} input: CoreML integers are int32"
    width, _ = _BITS[elem]
    if n.attr("direction") == "LEFT" and width >= 32:
        return f"LEFT shift of a {width}-bit integer can overflow int32 arithmetic"
    return None


@lowers("BitShift", check=_check_bitshift)
def bit_shift(n: NodeView, env: Env):
    """x * 2^s wrapped to the type's width (LEFT) or floor_div(x, 2^s) (RIGHT, arithmetic for signed types); a shift
    outside [0, width) gives 0 (or -1 for a negative x shifted right), as ONNX's reference"""
    width, signed = _BITS[n.dtype(0)]
    x, s = env.var(n, 0), env.var(n, 1)
    top = min(width, 31) - 1  # 2^top must fit int32; a right shift by 31+ gives the same as out of range
    limit = top + 1
    inside = mb.logical_and(x=mb.greater_equal(x=s, y=np.int32(0), name=env.tmp(n, "nonneg")),
                            y=mb.less(x=s, y=np.int32(limit), name=env.tmp(n, "narrow")), name=env.tmp(n, "inside"))
    sc = mb.minimum(x=mb.maximum(x=s, y=np.int32(0), name=env.tmp(n, "s0")), y=np.int32(top), name=env.tmp(n, "sclip"))
    # 2^s read from a table: exact, where a float pow could land a hair below the integer
    factor = mb.gather(x=np.array([1 << k for k in range(top + 1)], np.int32), indices=sc, axis=0,
                       name=env.tmp(n, "factor"))
    if n.attr("direction") == "LEFT":
        y = mb.mul(x=x, y=factor, name=env.tmp(n, "shifted"))
        span = 1 << width
        lo = -(span // 2) if signed else 0
        y = mb.add(x=mb.mod(x=mb.sub(x=y, y=np.int32(lo), name=env.tmp(n, "lo")), y=np.int32(span),
                            name=env.tmp(n, "wrap")), y=np.int32(lo), name=env.tmp(n, "wrapped"))
        outside = np.int32(0)
    else:
        y = mb.floor_div(x=x, y=factor, name=env.tmp(n, "shifted"))
        outside = np.int32(0)
        if signed:  # -1 for negative x, 0 otherwise
            neg = mb.cast(x=mb.less(x=x, y=np.int32(0), name=env.tmp(n, "neg")), dtype="int32", name=env.tmp(n, "negi"))
            outside = mb.mul(x=neg, y=np.int32(-1), name=env.tmp(n, "outside"))
    return mb.select(cond=inside, a=y, b=outside, name=env.out(n))


# --- bitwise ops on 8/16-bit integers (CoreML has no bitwise ops): one bit plane at a time ---------------------------

def _check_bitwise(n: NodeView) -> str | None:
    elem = n.dtype(0)
    if elem not in _BITS or _BITS[elem][0] > 16:
        name = TensorProto.DataType.Name(elem) if elem else "unknown"
        return f"{name} input: composed bit by bit in int32, which holds 8- and 16-bit integers only"
    return None


def _unsigned(n: NodeView, env: Env, i: int, width: int, tag: str):
    """Input i as its unsigned bit pattern (two's complement of a signed value) in int32."""
    return mb.mod(x=env.var(n, i), y=np.int32(1 << width), name=env.tmp(n, f"u{tag}"))


def _signed_back(n: NodeView, env: Env, r, width: int, signed: bool):
    if not signed:
        return mb.identity(x=r, name=env.out(n))
    half = 1 << (width - 1)  # patterns >= 2^(w-1) are negative
    return mb.sub(x=mb.mod(x=mb.add(x=r, y=np.int32(half), name=env.tmp(n, "shift")), y=np.int32(1 << width),
                           name=env.tmp(n, "wrap")), y=np.int32(half), name=env.out(n))


def _bitwise(kind: str):
    def lower(n: NodeView, env: Env):
        width, signed = _BITS[n.dtype(0)]
        a, b = _unsigned(n, env, 0, width, "a"), _unsigned(n, env, 1, width, "b")
        acc = None
        for k in range(width):
            bits = []
            for v, tag in ((a, "a"), (b, "b")):
                shifted = mb.floor_div(x=v, y=np.int32(1 << k), name=env.tmp(n, f"{tag}{k}s"))
                bits.append(mb.mod(x=shifted, y=np.int32(2), name=env.tmp(n, f"{tag}{k}")))
            both = mb.mul(x=bits[0], y=bits[1], name=env.tmp(n, f"both{k}"))
            if kind == "and":
                bit = both
            else:
                total = mb.add(x=bits[0], y=bits[1], name=env.tmp(n, f"sum{k}"))
                twice = both if kind == "or" else mb.mul(x=both, y=np.int32(2), name=env.tmp(n, f"two{k}"))
                bit = mb.sub(x=total, y=twice, name=env.tmp(n, f"bit{k}"))
            term = mb.mul(x=bit, y=np.int32(1 << k), name=env.tmp(n, f"term{k}"))
            acc = term if acc is None else mb.add(x=acc, y=term, name=env.tmp(n, f"acc{k}"))
        return _signed_back(n, env, acc, width, signed)

    lower.__doc__ = f"bitwise {kind} of 8/16-bit integers, bit plane by bit plane (floor_div, mod) in int32"
    return lower


for _onnx, _kind in (("BitwiseAnd", "and"), ("BitwiseOr", "or"), ("BitwiseXor", "xor")):
    lowers(_onnx, check=_check_bitwise)(_bitwise(_kind))


def _check_bitwise_not(n: NodeView) -> str | None:
    elem = n.dtype(0)
    return None if elem in _BITS and _BITS[elem][1] else _check_bitwise(n)  # -x - 1 needs no bit planes


@lowers("BitwiseNot", check=_check_bitwise_not)
def bitwise_not(n: NodeView, env: Env):
    """-x - 1 for signed types, (2^w - 1) - x for unsigned (the same bit flip, exact in int32)"""
    width, signed = _BITS[n.dtype(0)]
    x = env.var(n, 0)
    if signed:
        return mb.sub(x=mb.mul(x=x, y=np.int32(-1), name=env.tmp(n, "neg")), y=np.int32(1), name=env.out(n))
    return mb.sub(x=np.int32((1 << width) - 1), y=x, name=env.out(n))
