"""BatchNormalization (inference), LayerNormalization, LRN."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb

from onnx import TensorProto

from edgec.lower.coreml.ops._util import first, like, need_const, need_shape, norm_axis
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
    return need_shape(n, 0)


def _stats_norm(n: NodeView, env: Env, axes: np.ndarray, eps: float, rms: bool):
    """Composed (x - mean) * rsqrt(var + eps) (or x * rsqrt(mean(x^2) + eps) for RMS) in fp32 (ONNX's
    stash_type), scaled and shifted by inputs 1 and 2; returns [Y, Mean, InvStdDev] (Mean absent for RMS)."""
    x = env.var(n, 0)
    half = n.dtype(0) == TensorProto.FLOAT16 and int(n.attr("stash_type", 1)) == 1
    if half:
        x = mb.cast(x=x, dtype="fp32", name=env.tmp(n, "f32"))
    mean = None
    if rms:
        centred = x
    else:
        mean = mb.reduce_mean(x=x, axes=axes, keep_dims=True, name=env.tmp(n, "mean"))
        centred = mb.sub(x=x, y=mean, name=env.tmp(n, "centred"))
    sq = mb.mul(x=centred, y=centred, name=env.tmp(n, "sq"))
    var = mb.reduce_mean(x=sq, axes=axes, keep_dims=True, name=env.tmp(n, "var"))
    inv = mb.rsqrt(x=var, epsilon=like(var, eps), name=env.tmp(n, "inv"))
    y = mb.mul(x=centred, y=inv, name=env.tmp(n, "normed"))
    if half:
        y = mb.cast(x=y, dtype="fp16", name=env.tmp(n, "f16"))
    if n.has(1):
        y = mb.mul(x=y, y=env.var(n, 1), name=env.tmp(n, "scaled"))
    if n.has(2):
        y = mb.add(x=y, y=env.var(n, 2), name=env.tmp(n, "shifted"))
    y = mb.identity(x=y, name=env.out(n))
    return [y, mean, inv] if not rms else [y, inv]


@lowers("LayerNormalization", check=_check_ln)
def layer_norm(n: NodeView, env: Env):
    """layer_norm over axes [axis, rank); composed (reduce_mean, rsqrt) when Mean / InvStdDev are outputs too
    or scale/bias are computed"""
    shape = n.shape(0)
    rank = len(shape)
    axis = norm_axis(int(n.attr("axis", -1)), rank)
    axes = np.arange(axis, rank, dtype=np.int32)
    eps = np.float32(n.attr("epsilon", 1e-5))
    norm_shape = shape[axis:]
    scale = n.const(1)
    bias = n.const(2) if n.has(2) else None
    kw = {}
    if any(o for o in n.outputs[1:]) or n.dtype(0) == TensorProto.FLOAT16:
        return _stats_norm(n, env, axes, float(eps), rms=False)
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


@lowers("RMSNormalization", check=_check_ln)
def rms_norm(n: NodeView, env: Env):
    """x * rsqrt(mean(x^2 over [axis, rank)) + epsilon) * scale (fp32 statistics as stash_type)"""
    rank = len(n.shape(0))
    axis = norm_axis(int(n.attr("axis", -1)), rank)
    return _stats_norm(n, env, np.arange(axis, rank, dtype=np.int32), float(n.attr("epsilon", 1e-5)), rms=True)[0]


def _check_instance_norm(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    return None if len(n.shape(0)) >= 3 else "input rank < 3"


@lowers("InstanceNormalization", check=_check_instance_norm)
def instance_norm(n: NodeView, env: Env):
    """(x - mean) * rsqrt(var + epsilon) over the spatial axes, then per-channel scale and bias"""
    rank = len(n.shape(0))
    x = env.var(n, 0)
    axes = np.arange(2, rank, dtype=np.int32)
    mean = mb.reduce_mean(x=x, axes=axes, keep_dims=True, name=env.tmp(n, "mean"))
    centred = mb.sub(x=x, y=mean, name=env.tmp(n, "centred"))
    var = mb.reduce_mean(x=mb.mul(x=centred, y=centred, name=env.tmp(n, "sq")), axes=axes, keep_dims=True,
                         name=env.tmp(n, "var"))
    y = mb.mul(x=centred, y=mb.rsqrt(x=var, epsilon=like(var, n.attr("epsilon", 1e-5)), name=env.tmp(n, "inv")),
               name=env.tmp(n, "normed"))
    chan = [-1] + [1] * (rank - 2)
    y = mb.mul(x=y, y=_per_channel(n, env, 1, chan), name=env.tmp(n, "scaled"))
    return mb.add(x=y, y=_per_channel(n, env, 2, chan), name=env.out(n))


def _per_channel(n: NodeView, env: Env, i: int, shape: list[int]):
    c = n.const(i)
    if c is not None:
        return to_mil_array(c).reshape(shape)
    return mb.reshape(x=env.var(n, i), shape=np.array(shape, np.int32), name=env.tmp(n, f"chan{i}"))


def _check_group_norm(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    shape = n.shape(0)
    g = int(n.attr("num_groups"))
    if len(shape) < 3 or shape[1] % g:
        return f"{shape[1]} channels do not split into {g} groups" if len(shape) >= 3 else "input rank < 3"
    return None


@lowers("GroupNormalization", check=_check_group_norm)
def group_norm(n: NodeView, env: Env):
    """reshape to [N, groups, rest], normalise the last axis (fp32 statistics), reshape back, then scale and bias
    per channel (opset 21) or per group (opset 18)"""
    shape = n.shape(0)
    g = int(n.attr("num_groups"))
    c = shape[1]
    x = env.var(n, 0)
    grouped = mb.reshape(x=x, shape=np.array([shape[0], g, -1], np.int32), name=env.tmp(n, "grouped"))
    axes = np.array([2], np.int32)
    mean = mb.reduce_mean(x=grouped, axes=axes, keep_dims=True, name=env.tmp(n, "mean"))
    centred = mb.sub(x=grouped, y=mean, name=env.tmp(n, "centred"))
    var = mb.reduce_mean(x=mb.mul(x=centred, y=centred, name=env.tmp(n, "sq")), axes=axes, keep_dims=True,
                         name=env.tmp(n, "var"))
    y = mb.mul(x=centred, y=mb.rsqrt(x=var, epsilon=like(var, n.attr("epsilon", 1e-5)), name=env.tmp(n, "inv")),
               name=env.tmp(n, "normed"))
    if n.const(1) is not None and n.const(1).size == g and g != c:  # opset 18: one scale / bias per group
        y = mb.mul(x=y, y=to_mil_array(n.const(1)).reshape(1, g, 1), name=env.tmp(n, "gscaled"))
        y = mb.add(x=y, y=to_mil_array(n.const(2)).reshape(1, g, 1), name=env.tmp(n, "gshifted"))
        return mb.reshape(x=y, shape=np.array(shape, np.int32), name=env.out(n))
    y = mb.reshape(x=y, shape=np.array(shape, np.int32), name=env.tmp(n, "back"))
    chan = [-1] + [1] * (len(shape) - 2)
    y = mb.mul(x=y, y=_per_channel(n, env, 1, chan), name=env.tmp(n, "scaled"))
    return mb.add(x=y, y=_per_channel(n, env, 2, chan), name=env.out(n))


def _check_lp_norm(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    return None if int(n.attr("p", 2)) in (1, 2) else f"p={n.attr('p')} (1 and 2 are defined)"


@lowers("LpNormalization", check=_check_lp_norm)
def lp_norm(n: NodeView, env: Env):
    """x / reduce_l1_norm or reduce_l2_norm along the axis; 0 where the norm is 0 (ONNX's reference)"""
    axis = norm_axis(int(n.attr("axis", -1)), len(n.shape(0)))
    fn = mb.reduce_l1_norm if int(n.attr("p", 2)) == 1 else mb.reduce_l2_norm
    x = env.var(n, 0)
    norm = fn(x=x, axes=np.array([axis], np.int32), keep_dims=True, name=env.tmp(n, "norm"))
    q = mb.real_div(x=x, y=norm, name=env.tmp(n, "q"))
    zero = mb.equal(x=norm, y=like(norm, 0), name=env.tmp(n, "zero"))
    return mb.select(cond=zero, a=like(norm, 0), b=q, name=env.out(n))


@lowers("MeanVarianceNormalization", check=lambda n: need_shape(n, 0))
def mean_variance_norm(n: NodeView, env: Env):
    """(x - E[x]) / (sqrt(E[x^2] - E[x]^2) + 1e-9), ONNX's function body"""
    rank = len(n.shape(0))
    axes = np.array(sorted(norm_axis(int(a), rank) for a in n.attr("axes", [0, 2, 3])), np.int32)
    x = env.var(n, 0)
    mean = mb.reduce_mean(x=x, axes=axes, keep_dims=True, name=env.tmp(n, "mean"))
    sq_mean = mb.reduce_mean(x=mb.mul(x=x, y=x, name=env.tmp(n, "sq")), axes=axes, keep_dims=True,
                             name=env.tmp(n, "sqmean"))
    var = mb.sub(x=sq_mean, y=mb.mul(x=mean, y=mean, name=env.tmp(n, "mean2")), name=env.tmp(n, "var"))
    std = mb.add(x=mb.sqrt(x=var, name=env.tmp(n, "std")), y=like(var, 1e-9), name=env.tmp(n, "stdeps"))
    return mb.real_div(x=mb.sub(x=x, y=mean, name=env.tmp(n, "centred")), y=std, name=env.out(n))
