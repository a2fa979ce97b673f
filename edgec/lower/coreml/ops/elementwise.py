"""Elementwise arithmetic (numpy broadcasting in both ONNX and MIL) and unary math."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from onnx import TensorProto

from edgec.lower.coreml.registry import Env, NodeView, lowers

_FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16, None)


def _binary(mil_op):
    def lower(n: NodeView, env: Env):
        return getattr(mb, mil_op)(x=env.var(n, 0), y=env.var(n, 1), name=env.out(n))

    lower.__doc__ = mil_op
    return lower


for _onnx, _mil in (("Add", "add"), ("Sub", "sub"), ("Mul", "mul")):
    lowers(_onnx)(_binary(_mil))


def _check_pow(n: NodeView) -> str | None:
    if n.dtype(0) not in _FLOATS and n.dtype(1) in _FLOATS:
        # it would have to run as float, and fp16 compute would silently round integer results above 2048
        return "integer base with a float exponent: CoreML pow takes one dtype"
    return None


@lowers("Pow", check=_check_pow)
def pow_(n: NodeView, env: Env):
    """pow; MIL wants one dtype: an integer exponent is cast to the float base (small integers are exact)"""
    x, y = env.var(n, 0), env.var(n, 1)
    if n.dtype(0) in _FLOATS and n.dtype(1) not in _FLOATS:
        y = mb.cast(x=y, dtype="fp32", name=env.tmp(n, "exp"))
    return mb.pow(x=x, y=y, name=env.out(n))


@lowers("Div")
def div(n: NodeView, env: Env):
    """real_div; integers truncate toward zero as ONNX: sign(x) * sign(y) * floor_div(|x|, |y|)"""
    x, y = env.var(n, 0), env.var(n, 1)
    if n.dtype(0) in _FLOATS:
        return mb.real_div(x=x, y=y, name=env.out(n))
    q = mb.floor_div(x=mb.abs(x=x, name=env.tmp(n, "ax")), y=mb.abs(x=y, name=env.tmp(n, "ay")), name=env.tmp(n, "q"))
    s = mb.mul(x=mb.sign(x=x, name=env.tmp(n, "sx")), y=mb.sign(x=y, name=env.tmp(n, "sy")), name=env.tmp(n, "s"))
    return mb.mul(x=q, y=s, name=env.out(n))


def _unary(mil_op):
    def lower(n: NodeView, env: Env):
        return getattr(mb, mil_op)(x=env.var(n, 0), name=env.out(n))

    lower.__doc__ = mil_op
    return lower


for _onnx, _mil in (("Sqrt", "sqrt"), ("Exp", "exp"), ("Log", "log"), ("Abs", "abs"),
                    ("Floor", "floor"), ("Ceil", "ceil")):
    lowers(_onnx)(_unary(_mil))


@lowers("Neg")
def neg(n: NodeView, env: Env):
    """mul by -1 (MIL has no neg)"""
    x = env.var(n, 0)
    minus_one = np.float32(-1) if n.dtype(0) in _FLOATS else np.int32(-1)
    return mb.mul(x=x, y=minus_one, name=env.out(n))


@lowers("Reciprocal")
def reciprocal(n: NodeView, env: Env):
    """real_div(1, x) (MIL's inverse adds an epsilon of 1e-4 to x)"""
    return mb.real_div(x=np.float32(1), y=env.var(n, 0), name=env.out(n))


def _variadic(mil_op):
    def lower(n: NodeView, env: Env):
        live = [i for i in range(len(n.inputs)) if n.has(i)]
        acc = env.var(n, live[0])
        if len(live) == 1:
            return mb.identity(x=acc, name=env.out(n))
        for k, i in enumerate(live[1:], start=2):
            acc = getattr(mb, mil_op)(x=acc, y=env.var(n, i), name=env.out(n) if k == len(live) else env.tmp(n, f"{k}"))
        return acc

    lower.__doc__ = f"chained {mil_op}"
    return lower


for _onnx, _mil in (("Sum", "add"), ("Max", "maximum"), ("Min", "minimum")):
    lowers(_onnx)(_variadic(_mil))
