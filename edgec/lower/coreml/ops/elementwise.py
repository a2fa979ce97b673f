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


for _onnx, _mil in (("Add", "add"), ("Sub", "sub"), ("Mul", "mul"), ("Pow", "pow")):
    lowers(_onnx)(_binary(_mil))


def _check_div(n: NodeView) -> str | None:
    if n.dtype(0) not in _FLOATS:
        return "integer Div truncates toward zero; CoreML only has floor_div (wrong for negatives)"
    return None


lowers("Div", check=_check_div)(_binary("real_div"))


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
