"""Activation ops (iOS15/iOS17 activation.py). Formulas are the op defs' own."""

from __future__ import annotations

import numpy as np

from . import mil_op
from .elementwise import erf_array


def _channel(alpha, x):
    """Per-channel parameters broadcast on axis 1 (prelu, softplus_parametric)."""
    alpha = np.asarray(alpha)
    return alpha.reshape((1, -1) + (1,) * (np.ndim(x) - 2)) if alpha.ndim == 1 else alpha


@mil_op("relu")
def relu(x):
    return np.maximum(x, 0)


@mil_op("relu6")
def relu6(x):
    return np.minimum(np.maximum(x, 0), 6)


@mil_op("leaky_relu")
def leaky_relu(x, alpha=0.01):
    x = np.asarray(x)
    return np.where(x >= 0, x, x * np.asarray(alpha, dtype=x.dtype))


@mil_op("prelu")
def prelu(x, alpha):
    x = np.asarray(x)
    return np.maximum(x, 0) + np.minimum(x, 0) * _channel(alpha, x).astype(x.dtype)


@mil_op("clamped_relu")
def clamped_relu(x, alpha, beta):
    x = np.asarray(x)
    return np.minimum(np.maximum(x, 0), beta) + np.minimum(np.minimum(x, 0) * alpha, beta)


@mil_op("elu")
def elu(x, alpha=1.0):
    x = np.asarray(x)
    return np.where(x > 0, x, np.asarray(alpha, dtype=x.dtype) * np.expm1(np.minimum(x, 0)))


@mil_op("sigmoid")
def sigmoid(x):
    x = np.asarray(x)
    # exp of -|x| never overflows; same value as 1 / (1 + exp(-x))
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


@mil_op("sigmoid_hard")
def sigmoid_hard(x, alpha=0.2, beta=0.5):
    x = np.asarray(x)
    return np.minimum(np.maximum(x * np.asarray(alpha, x.dtype) + np.asarray(beta, x.dtype), 0), 1)


@mil_op("silu")
def silu(x):
    return np.asarray(x) * sigmoid(x)


@mil_op("gelu")
def gelu(x, mode="EXACT"):
    x = np.asarray(x)
    x64 = x.astype(np.float64)
    if mode == "EXACT":
        y = 0.5 * x64 * (1 + erf_array(x64 / np.sqrt(2)))
    elif mode == "TANH_APPROXIMATION":
        y = 0.5 * x64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (x64 + 0.044715 * x64**3)))
    elif mode == "SIGMOID_APPROXIMATION":
        y = x64 * sigmoid(1.702 * x64)
    else:
        raise ValueError(f"gelu mode '{mode}' is not one of EXACT, TANH_APPROXIMATION, SIGMOID_APPROXIMATION")
    return y.astype(x.dtype)


@mil_op("softplus")
def softplus(x):
    x = np.asarray(x)
    return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)


@mil_op("softplus_parametric")
def softplus_parametric(x, alpha, beta):
    x = np.asarray(x)
    return _channel(alpha, x) * softplus(x * _channel(beta, x))


@mil_op("softsign")
def softsign(x):
    x = np.asarray(x)
    return x / (1 + np.abs(x))


@mil_op("scaled_tanh")
def scaled_tanh(x, alpha=1.0, beta=1.0):
    return np.asarray(alpha) * np.tanh(np.asarray(x) * beta)


@mil_op("linear_activation")
def linear_activation(x, alpha, beta=0.0):
    return np.asarray(x) * alpha + beta


@mil_op("thresholded_relu")
def thresholded_relu(x, alpha=1.0):
    x = np.asarray(x)
    return np.where(x > alpha, x, 0).astype(x.dtype)


@mil_op("softmax")
def softmax(x, axis=-1):
    x = np.asarray(x)
    axis = int(axis)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)
