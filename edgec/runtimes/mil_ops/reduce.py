"""Reductions (axes=None reduces everything), arg-reductions, cumsum, topk, argsort."""

from __future__ import annotations

import numpy as np

from . import mil_op
from ._util import axis_list, compute_dtype


def _axes(x, axes):
    return None if axes is None else axis_list(axes, max(np.ndim(x), 1))


def _reduction(fn):
    def op(x, axes=None, keep_dims=False):
        x = np.asarray(x)
        return fn(x, _axes(x, axes), bool(keep_dims))

    return op


def _acc(x):
    # sums of fp16 tensors accumulate in fp32 and round once (as conv/matmul do)
    return x.astype(compute_dtype(x), copy=False) if x.dtype.kind == "f" else x


_REDUCTIONS = {
    "reduce_sum": lambda x, a, k: np.sum(_acc(x), axis=a, keepdims=k),
    "reduce_mean": lambda x, a, k: np.mean(_acc(x), axis=a, keepdims=k),
    "reduce_max": lambda x, a, k: np.max(x, axis=a, keepdims=k),
    "reduce_min": lambda x, a, k: np.min(x, axis=a, keepdims=k),
    "reduce_prod": lambda x, a, k: np.prod(_acc(x), axis=a, keepdims=k),
    "reduce_l1_norm": lambda x, a, k: np.sum(np.abs(_acc(x)), axis=a, keepdims=k),
    "reduce_l2_norm": lambda x, a, k: np.sqrt(np.sum(np.square(_acc(x)), axis=a, keepdims=k)),
    "reduce_sum_square": lambda x, a, k: np.sum(np.square(_acc(x)), axis=a, keepdims=k),
    "reduce_log_sum": lambda x, a, k: np.log(np.sum(_acc(x), axis=a, keepdims=k)),
    "reduce_log_sum_exp": lambda x, a, k: _log_sum_exp(_acc(x), a, k),
}


def _log_sum_exp(x, axes, keep):
    m = np.max(x, axis=axes, keepdims=True)
    y = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return y if keep else np.squeeze(y, axis=axes if axes is not None else tuple(range(x.ndim)))


for _name, _fn in _REDUCTIONS.items():
    mil_op(_name)(_reduction(_fn))


def _arg(fn):
    def op(x, axis=-1, keep_dims=False, output_dtype="int32"):
        x = np.asarray(x)
        axis = int(axis) % x.ndim
        y = fn(x, axis=axis)
        return np.expand_dims(y, axis) if keep_dims else y

    return op


mil_op("reduce_argmax")(_arg(np.argmax))
mil_op("reduce_argmin")(_arg(np.argmin))


@mil_op("cumsum")
def cumsum(x, axis=0, exclusive=False, reverse=False):
    x = _acc(np.asarray(x))
    axis = int(axis)
    if reverse:
        x = np.flip(x, axis)
    y = np.cumsum(x, axis=axis)
    if exclusive:
        y = y - x
    return np.flip(y, axis) if reverse else y


@mil_op("topk")
def topk(x, k=1, axis=-1, ascending=False, sort=True, return_indices=True, output_indices_dtype="int32"):
    x = np.asarray(x)
    axis = int(axis) % x.ndim
    order = np.argsort(x if ascending else -x, axis=axis, kind="stable")
    idx = np.take(order, np.arange(int(k)), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx


@mil_op("argsort")
def argsort(x, axis=-1, ascending=False):
    x = np.asarray(x)
    return np.argsort(x if ascending else -x, axis=int(axis), kind="stable")
