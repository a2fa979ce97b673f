"""Activations and softmax-like ops."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb

from edgec.lower.coreml.ops._util import need_shape, norm_axis
from edgec.lower.coreml.registry import Env, NodeView, lowers


def _unary(mil_op):
    def lower(n: NodeView, env: Env):
        return getattr(mb, mil_op)(x=env.var(n, 0), name=env.out(n))

    lower.__doc__ = mil_op
    return lower


for _onnx, _mil in (("Relu", "relu"), ("Sigmoid", "sigmoid"), ("Tanh", "tanh"), ("Erf", "erf")):
    lowers(_onnx)(_unary(_mil))


@lowers("LeakyRelu")
def leaky_relu(n: NodeView, env: Env):
    """leaky_relu"""
    return mb.leaky_relu(x=env.var(n, 0), alpha=np.float32(n.attr("alpha", 0.01)), name=env.out(n))


@lowers("Elu")
def elu(n: NodeView, env: Env):
    """elu"""
    return mb.elu(x=env.var(n, 0), alpha=np.float32(n.attr("alpha", 1.0)), name=env.out(n))


@lowers("HardSigmoid")
def hard_sigmoid(n: NodeView, env: Env):
    """sigmoid_hard (same alpha/beta)"""
    return mb.sigmoid_hard(x=env.var(n, 0), alpha=np.float32(n.attr("alpha", 0.2)),
                           beta=np.float32(n.attr("beta", 0.5)), name=env.out(n))


@lowers("HardSwish")
def hard_swish(n: NodeView, env: Env):
    """x * sigmoid_hard(x, 1/6, 0.5)"""
    x = env.var(n, 0)
    g = mb.sigmoid_hard(x=x, alpha=np.float32(1 / 6), beta=np.float32(0.5), name=env.tmp(n, "gate"))
    return mb.mul(x=x, y=g, name=env.out(n))


def _check_gelu(n: NodeView) -> str | None:
    a = n.attr("approximate", "none")
    return None if a in ("none", "tanh") else f"approximate='{a}' is not an ONNX value"


@lowers("Gelu", check=_check_gelu)
def gelu(n: NodeView, env: Env):
    """gelu EXACT / TANH_APPROXIMATION"""
    mode = "EXACT" if n.attr("approximate", "none") == "none" else "TANH_APPROXIMATION"
    return mb.gelu(x=env.var(n, 0), mode=mode, name=env.out(n))


@lowers("Clip")
def clip(n: NodeView, env: Env):
    """clip for constant float bounds, else maximum / minimum with the bounds as they are (computed at run time
    or integer; either may be absent)"""
    lo = n.const(1) if n.has(1) else n.attr("min")
    hi = n.const(2) if n.has(2) else n.attr("max")
    x = env.var(n, 0)
    dtype = np.int32 if n.dtype(0) not in (None, 1, 10) else np.float32  # FLOAT=1, FLOAT16=10
    if lo is not None and hi is not None and dtype == np.float32 and n.dtype(0) != 10:
        return mb.clip(x=x, alpha=np.float32(lo), beta=np.float32(hi), name=env.out(n))
    has_lo = n.has(1) or lo is not None
    has_hi = n.has(2) or hi is not None

    def bound(i, value):
        if value is None:
            return env.var(n, i)
        return np.array(value).astype(np.float16 if n.dtype(0) == 10 else dtype).reshape(())

    if has_lo:
        x = mb.maximum(x=x, y=bound(1, lo), name=env.tmp(n, "lo") if has_hi else env.out(n))
    if has_hi:
        x = mb.minimum(x=x, y=bound(2, hi), name=env.out(n))
    if not has_lo and not has_hi:
        x = mb.identity(x=x, name=env.out(n))
    return x


def _check_prelu(n: NodeView) -> str | None:
    return need_shape(n, 0) or need_shape(n, 1)


@lowers("PRelu", check=_check_prelu)
def prelu(n: NodeView, env: Env):
    """prelu for a per-channel constant slope; relu(x) + slope * min(x, 0) for any other broadcast"""
    x = env.var(n, 0)
    shape = n.shape(0)
    slope = n.const(1)
    if slope is not None and len(shape) >= 3:
        full = np.broadcast_to(slope.astype(np.float32), shape)  # ONNX broadcasts slope to x, numpy-style
        per_channel = full[(0, slice(None)) + (0,) * (len(shape) - 2)]
        if np.array_equal(full, np.broadcast_to(per_channel.reshape([1, -1] + [1] * (len(shape) - 2)), shape)):
            return mb.prelu(x=x, alpha=np.ascontiguousarray(per_channel), name=env.out(n))
    pos = mb.relu(x=x, name=env.tmp(n, "pos"))
    neg = mb.minimum(x=x, y=np.float32(0), name=env.tmp(n, "neg"))
    neg = mb.mul(x=neg, y=env.var(n, 1), name=env.tmp(n, "scaled"))
    return mb.add(x=pos, y=neg, name=env.out(n))


def _check_softmax(n: NodeView) -> str | None:
    return need_shape(n, 0)


def _softmax_like(n: NodeView, env: Env, fn):
    """ONNX < 13 flattens at `axis` (softmax over all trailing dims); >= 13 uses one axis."""
    shape = n.shape(0)
    rank = len(shape)
    opset = env.graph.opset
    axis = norm_axis(int(n.attr("axis", -1 if opset >= 13 else 1)), rank)
    x = env.var(n, 0)
    if opset >= 13 or axis == rank - 1:
        return fn(x, axis, env.out(n))
    flat = [int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))]
    x = mb.reshape(x=x, shape=np.array(flat, np.int32), name=env.tmp(n, "flat"))
    y = fn(x, 1, env.tmp(n, "inner"))
    return mb.reshape(x=y, shape=np.array(shape, np.int32), name=env.out(n))


@lowers("Softmax", check=_check_softmax)
def softmax(n: NodeView, env: Env):
    """softmax"""
    return _softmax_like(n, env, lambda x, axis, name: mb.softmax(x=x, axis=axis, name=name))


@lowers("LogSoftmax", check=_check_softmax)
def log_softmax(n: NodeView, env: Env):
    """x - reduce_log_sum_exp(x) (stable, no log of a rounded softmax)"""

    def fn(x, axis, name):
        lse = mb.reduce_log_sum_exp(x=x, axes=np.array([axis], np.int32), keep_dims=True, name=env.tmp(n, "lse"))
        return mb.sub(x=x, y=lse, name=name)

    return _softmax_like(n, env, fn)
