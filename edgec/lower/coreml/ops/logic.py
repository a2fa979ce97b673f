"""Comparisons, boolean logic, Where, IsNaN / IsInf: bool tensors (MIL compares fp16/fp32/int32 only)."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from onnx import TensorProto

from edgec.lower.coreml.ops._util import like
from edgec.lower.coreml.registry import Env, NodeView, lowers

_COMPARE = {"Equal": "equal", "Less": "less", "LessOrEqual": "less_equal", "Greater": "greater",
            "GreaterOrEqual": "greater_equal"}


def _comparable(n: NodeView, env: Env, i: int):
    """The input as a MIL var MIL can compare: bool becomes int32 (0 / 1 keeps ==, <, > the same)."""
    x = env.var(n, i)
    if n.dtype(i) == TensorProto.BOOL:
        x = mb.cast(x=x, dtype="int32", name=env.tmp(n, f"int{i}"))
    return x


def _compare(mil_op):
    def lower(n: NodeView, env: Env):
        return getattr(mb, mil_op)(x=_comparable(n, env, 0), y=_comparable(n, env, 1), name=env.out(n))

    lower.__doc__ = f"{mil_op} (bool operands compared as int32)"
    return lower


for _onnx, _mil in _COMPARE.items():
    lowers(_onnx)(_compare(_mil))


def _logical(mil_op):
    def lower(n: NodeView, env: Env):
        return getattr(mb, mil_op)(x=env.var(n, 0), y=env.var(n, 1), name=env.out(n))

    lower.__doc__ = mil_op
    return lower


for _onnx, _mil in (("And", "logical_and"), ("Or", "logical_or"), ("Xor", "logical_xor")):
    lowers(_onnx)(_logical(_mil))


@lowers("Not")
def not_(n: NodeView, env: Env):
    """logical_not"""
    return mb.logical_not(x=env.var(n, 0), name=env.out(n))


def _check_where(n: NodeView) -> str | None:
    return None if all(n.shape(i) is not None for i in range(3)) else "inputs without static shapes"


@lowers("Where", check=_check_where)
def where(n: NodeView, env: Env):
    """select; `a` is broadcast to the full output shape first when cond is the larger one (MIL's select takes
    its output shape from a and b only)"""
    out = list(np.broadcast_shapes(*(tuple(n.shape(i)) for i in range(3))))
    a = env.var(n, 1)
    if list(np.broadcast_shapes(tuple(n.shape(1)), tuple(n.shape(2)))) != out:
        src = list(n.shape(1))
        full = [1] * (len(out) - len(src)) + src
        if full != src:
            a = mb.reshape(x=a, shape=np.array(full, np.int32), name=env.tmp(n, "a_rank"))
        a = mb.tile(x=a, reps=np.array([o // s for o, s in zip(out, full)], np.int32), name=env.tmp(n, "a_full"))
    return mb.select(cond=env.var(n, 0), a=a, b=env.var(n, 2), name=env.out(n))


@lowers("IsNaN")
def is_nan(n: NodeView, env: Env):
    """not_equal(x, x): only NaN differs from itself"""
    x = env.var(n, 0)
    return mb.not_equal(x=x, y=x, name=env.out(n))


def _check_isinf(n: NodeView) -> str | None:
    return None if n.dtype(0) in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, None) \
        else "non-float input (integers are never infinite, but ONNX only defines IsInf on floats)"


@lowers("IsInf", check=_check_isinf)
def is_inf(n: NodeView, env: Env):
    """equal(x, +inf) / equal(x, -inf) for the signs asked for (detect_positive / detect_negative)"""
    x = env.var(n, 0)
    pos, neg = int(n.attr("detect_positive", 1)), int(n.attr("detect_negative", 1))
    if pos and neg:
        return mb.equal(x=mb.abs(x=x, name=env.tmp(n, "abs")), y=like(x, np.inf), name=env.out(n))
    if pos or neg:
        return mb.equal(x=x, y=like(x, np.inf if pos else -np.inf), name=env.out(n))
    return mb.logical_and(x=mb.equal(x=x, y=like(x, np.inf), name=env.tmp(n, "p")),  # never true
                          y=mb.equal(x=x, y=like(x, -np.inf), name=env.tmp(n, "m")), name=env.out(n))
