"""Normalization ops. Statistics are computed in fp32 for fp16 inputs and the result rounded once."""

from __future__ import annotations

import numpy as np

from . import mil_op
from ._util import axis_list, compute_dtype


def _channel(v, x, ct):
    return np.asarray(v, dtype=ct).reshape((1, -1) + (1,) * (x.ndim - 2))


def _scale_shift_channels(y, gamma, beta, x, ct):
    """The optional per-channel gamma/beta that batch_norm and instance_norm apply after normalising."""
    if gamma is not None:
        y = y * _channel(gamma, x, ct)
    if beta is not None:
        y = y + _channel(beta, x, ct)
    return y


@mil_op("batch_norm")
def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    x = np.asarray(x)
    ct = compute_dtype(x)
    y = (x.astype(ct) - _channel(mean, x, ct)) / np.sqrt(_channel(variance, x, ct) + ct(epsilon))
    return _scale_shift_channels(y, gamma, beta, x, ct)


@mil_op("instance_norm")
def instance_norm(x, gamma=None, beta=None, epsilon=1e-5):
    x = np.asarray(x)
    ct = compute_dtype(x)
    xc = x.astype(ct)
    axes = tuple(range(2, x.ndim))
    mu = xc.mean(axis=axes, keepdims=True)
    var = np.square(xc - mu).mean(axis=axes, keepdims=True)
    y = (xc - mu) / np.sqrt(var + ct(epsilon))
    return _scale_shift_channels(y, gamma, beta, x, ct)


@mil_op("layer_norm")
def layer_norm(x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    x = np.asarray(x)
    ct = compute_dtype(x)
    xc = x.astype(ct)
    axes = tuple(range(x.ndim)) if axes is None else axis_list(axes, x.ndim)
    mu = xc.mean(axis=axes, keepdims=True)
    var = np.square(xc - mu).mean(axis=axes, keepdims=True)
    y = (xc - mu) / np.sqrt(var + ct(epsilon))
    # gamma/beta have shape x.shape[axes]: put them back on those axes
    param_shape = [x.shape[i] if i in axes else 1 for i in range(x.ndim)]
    if gamma is not None:
        y = y * np.asarray(gamma, dtype=ct).reshape(param_shape)
    if beta is not None:
        y = y + np.asarray(beta, dtype=ct).reshape(param_shape)
    return y


@mil_op("l2_norm")
def l2_norm(x, axes=None, epsilon=1e-6):
    x = np.asarray(x)
    ct = compute_dtype(x)
    xc = x.astype(ct)
    # iOS15: the last three dims; later versions may give axes
    axes = tuple(range(max(x.ndim - 3, 0), x.ndim)) if axes is None else axis_list(axes, x.ndim)
    return xc / np.sqrt(np.sum(xc * xc, axis=axes, keepdims=True) + ct(epsilon))


@mil_op("local_response_norm")
def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """x / (k + alpha/size * sum of x^2 over `size` neighbouring channels)^beta."""
    x = np.asarray(x)
    ct = compute_dtype(x)
    xc = x.astype(ct)
    size = int(size)
    sq = np.square(xc)
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    padded = np.pad(sq, [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
    C = x.shape[1]
    window = sum(padded[:, i:i + C] for i in range(size))  # size is small (3..11)
    return xc / np.power(ct(k) + ct(alpha) / size * window, ct(beta))
