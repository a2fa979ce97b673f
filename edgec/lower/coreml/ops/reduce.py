"""ReduceMean / ReduceSum / ReduceMax / ReduceMin and ArgMax / ArgMin."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from onnx import TensorProto

from edgec.lower.coreml.ops._util import first, need_const, need_shape, norm_axis
from edgec.lower.coreml.registry import Env, NodeView, lowers

_REDUCE = {"ReduceMean": "reduce_mean", "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max",
           "ReduceMin": "reduce_min", "ReduceProd": "reduce_prod", "ReduceL1": "reduce_l1_norm",
           "ReduceL2": "reduce_l2_norm", "ReduceSumSquare": "reduce_sum_square", "ReduceLogSum": "reduce_log_sum",
           "ReduceLogSumExp": "reduce_log_sum_exp"}


def _check_reduce(n: NodeView) -> str | None:
    return first(need_shape(n, 0), need_const(n, 1, "axes"))


def _reduce(n: NodeView, env: Env):
    rank = len(n.shape(0))
    if n.has(1):
        axes = [int(a) for a in n.const(1).reshape(-1)]
    else:
        axes = list(n.attr("axes", []) or [])
    if not axes:
        if n.attr("noop_with_empty_axes", 0):
            return env.value(n, 0)
        axes = list(range(rank))
    axes = np.array(sorted(norm_axis(a, rank) for a in axes), np.int32)
    x = env.var(n, 0)
    boolean = n.dtype(0) == TensorProto.BOOL  # ReduceMax/Min on bool (opset 20) = any/all: reduce as int32
    if boolean:
        x = mb.cast(x=x, dtype="int32", name=env.tmp(n, "int"))
    y = getattr(mb, _REDUCE[n.op])(x=x, axes=axes, keep_dims=bool(n.attr("keepdims", 1)),
                                   name=env.tmp(n, "reduced") if boolean else env.out(n))
    return mb.cast(x=y, dtype="bool", name=env.out(n)) if boolean else y


for _op, _mil in _REDUCE.items():
    _reduce.__doc__ = "reduce_* (all axes when none are given)"
    lowers(_op, check=_check_reduce)(_reduce)


def _check_arg(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    return None


@lowers("ArgMax", "ArgMin", check=_check_arg)
def arg_reduce(n: NodeView, env: Env):
    """reduce_argmax / reduce_argmin (int32 indices; first of ties); select_last_index=1 runs on the reversed axis
    and maps the index back (dim - 1 - i)"""
    axis = norm_axis(int(n.attr("axis", 0)), len(n.shape(0)))
    fn = mb.reduce_argmax if n.op == "ArgMax" else mb.reduce_argmin
    keep = bool(n.attr("keepdims", 1))
    if not n.attr("select_last_index", 0):
        return fn(x=env.var(n, 0), axis=axis, keep_dims=keep, name=env.out(n))
    x = mb.reverse(x=env.var(n, 0), axes=np.array([axis], np.int32), name=env.tmp(n, "rev"))
    i = fn(x=x, axis=axis, keep_dims=keep, name=env.tmp(n, "rev_index"))
    return mb.sub(x=np.int32(n.shape(0)[axis] - 1), y=i, name=env.out(n))
