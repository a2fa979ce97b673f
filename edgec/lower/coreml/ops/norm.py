"""BatchNormalization (inference), LayerNormalization, LRN."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb

from edgec.lower.coreml.ops._util import first, need_const, need_shape, norm_axis
from edgec.lower.coreml.registry import Env, NodeView, lowers, to_mil_array


def _check_bn(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), *(need_const(n, i, p) for i, p in
                                     ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var"))))
    if why:
        return why
    if n.attr("training_mode", 0) or any(o for o in n.outputs[1:]):
        return "training mode (running mean/var outputs) is not lowered; export the model in eval mode"
    return None


@lowers("BatchNormalization", check=_check_bn)
def batch_norm(n: NodeView, env: Env):
    """batch_norm for rank 3-5; a per-channel scale and shift (folded in numpy) otherwise"""
    scale, bias, mean, var = (n.const(i).astype(np.float32) for i in range(1, 5))
    eps = float(n.attr("epsilon", 1e-5))
    rank = len(n.shape(0))
    if 3 <= rank <= 5:
        return mb.batch_norm(x=env.var(n, 0), mean=mean, variance=var, gamma=scale, beta=bias,
                             epsilon=np.float32(eps), name=env.out(n))
    a = scale / np.sqrt(var + eps)
    shape = [-1] + [1] * (rank - 2)
    y = mb.mul(x=env.var(n, 0), y=a.reshape(shape), name=env.tmp(n, "scale"))
    return mb.add(x=y, y=(bias - mean * a).reshape(shape), name=env.out(n))


def _check_ln(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    if any(o for o in n.outputs[1:]):
        return "the Mean / InvStdDev outputs are not lowered"
    return None


@lowers("LayerNormalization", check=_check_ln)
def layer_norm(n: NodeView, env: Env):
    """layer_norm over axes [axis, rank); non-constant scale/bias are applied as mul/add"""
    shape = n.shape(0)
    rank = len(shape)
    axis = norm_axis(int(n.attr("axis", -1)), rank)
    axes = np.arange(axis, rank, dtype=np.int32)
    eps = np.float32(n.attr("epsilon", 1e-5))
    norm_shape = shape[axis:]
    scale = n.const(1)
    bias = n.const(2) if n.has(2) else None
    kw = {}
    if scale is not None and (bias is not None or not n.has(2)):
        kw["gamma"] = np.broadcast_to(to_mil_array(scale), norm_shape).astype(np.float32)
        if bias is not None:
            kw["beta"] = np.broadcast_to(to_mil_array(bias), norm_shape).astype(np.float32)
        return mb.layer_norm(x=env.var(n, 0), axes=axes, epsilon=eps, **kw, name=env.out(n))
    y = mb.layer_norm(x=env.var(n, 0), axes=axes, epsilon=eps, name=env.tmp(n, "norm"))
    y = mb.mul(x=y, y=env.var(n, 1), name=env.tmp(n, "scale") if n.has(2) else env.out(n))
    return mb.add(x=y, y=env.var(n, 2), name=env.out(n)) if n.has(2) else y


def _check_lrn(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    if not 3 <= len(n.shape(0)) <= 4:
        return f"input rank {len(n.shape(0))}: CoreML LRN takes rank 3-4"
    if int(n.attr("size")) % 2 == 0:
        return f"size={n.attr('size')} is even: ONNX's window is then asymmetric, CoreML's is not"
    return None


@lowers("LRN", check=_check_lrn)
def lrn(n: NodeView, env: Env):
    """local_response_norm (same formula: x / (k + alpha/size * sum x^2)^beta)"""
    return mb.local_response_norm(x=env.var(n, 0), size=int(n.attr("size")),
                                  alpha=np.float32(n.attr("alpha", 1e-4)), beta=np.float32(n.attr("beta", 0.75)),
                                  k=np.float32(n.attr("bias", 1.0)), name=env.out(n))
