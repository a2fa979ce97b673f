"""NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss: gather the target class along axis 1, weight it, reduce
(none / sum / mean over the weights), ignore_index weighted 0."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from onnx import TensorProto

from edgec.lower.coreml.ops._util import first, like, need_shape
from edgec.lower.coreml.registry import Env, NodeView, lowers


def _check_loss(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_shape(n, 1), need_shape(n, 2) if n.has(2) else None)
    if why:
        return why
    r = n.attr("reduction", "mean")
    if r not in ("none", "sum", "mean"):
        return f"reduction='{r}'"
    return None


def _nll(n: NodeView, env: Env, logp, tag: str):
    """-logp[n, t[n, ...], ...] * w[t], reduced as the node asks."""
    t = env.var(n, 1)
    if n.dtype(1) not in (TensorProto.INT32, None):
        t = mb.cast(x=t, dtype="int32", name=env.tmp(n, f"{tag}_t32"))
    ignore = n.attr("ignore_index")
    valid = None
    if ignore is not None:  # ignored positions read class 0 (any in range) and weigh 0
        valid = mb.not_equal(x=t, y=np.int32(ignore), name=env.tmp(n, f"{tag}_valid"))
        t = mb.select(cond=valid, a=t, b=np.int32(0), name=env.tmp(n, f"{tag}_safe"))
    picked = mb.gather_along_axis(x=logp, indices=mb.expand_dims(x=t, axes=np.array([1], np.int32),
                                                                 name=env.tmp(n, f"{tag}_t1")),
                                  axis=1, name=env.tmp(n, f"{tag}_picked"))
    picked = mb.squeeze(x=picked, axes=np.array([1], np.int32), name=env.tmp(n, f"{tag}_picked_sq"))
    t_shape = [int(d) for d in n.shape(1)]
    if n.has(2):
        w = mb.gather(x=env.var(n, 2), indices=t, axis=0, name=env.tmp(n, f"{tag}_w"))
    else:
        w = np.ones(t_shape, dtype=like(logp, 0).dtype)
    if valid is not None:
        w = mb.select(cond=valid, a=w, b=like(logp, 0), name=env.tmp(n, f"{tag}_w_valid"))
    reduction = n.attr("reduction", "mean")
    loss = mb.mul(x=picked, y=w, name=env.tmp(n, f"{tag}_wl"))
    loss = mb.mul(x=loss, y=like(logp, -1), name=env.out(n) if reduction == "none" else env.tmp(n, f"{tag}_loss"))
    if reduction == "none":
        return loss
    total = mb.reduce_sum(x=loss, keep_dims=False, name=env.out(n) if reduction == "sum" else env.tmp(n, f"{tag}_sum"))
    if reduction == "sum":
        return total
    if valid is None and not n.has(2):
        return mb.real_div(x=total, y=like(logp, int(np.prod(t_shape))), name=env.out(n))
    wsum = mb.reduce_sum(x=w, keep_dims=False, name=env.tmp(n, f"{tag}_wsum"))
    return mb.real_div(x=total, y=wsum, name=env.out(n))


@lowers("NegativeLogLikelihoodLoss", check=_check_loss)
def nll_loss(n: NodeView, env: Env):
    """gather_along_axis of the target class, weighted and reduced"""
    return _nll(n, env, env.var(n, 0), "nll")


@lowers("SoftmaxCrossEntropyLoss", check=_check_loss)
def softmax_cross_entropy(n: NodeView, env: Env):
    """log-softmax over axis 1 (x - reduce_log_sum_exp), then the NLL loss; log_prob as the second output"""
    x = env.var(n, 0)
    lse = mb.reduce_log_sum_exp(x=x, axes=np.array([1], np.int32), keep_dims=True, name=env.tmp(n, "lse"))
    logp = mb.sub(x=x, y=lse, name=env.out(n, 1) if len(n.outputs) > 1 and n.outputs[1] else env.tmp(n, "logp"))
    loss = _nll(n, env, logp, "sce")
    return [loss, logp]
