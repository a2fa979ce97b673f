"""linear, matmul, einsum, scaled_dot_product_attention (fp16 inputs are multiplied in fp32)."""

from __future__ import annotations

import numpy as np

from . import mil_op
from ._util import compute_dtype
from .activation import softmax


@mil_op("linear")
def linear(x, weight, bias=None):
    x, weight = np.asarray(x), np.asarray(weight)
    ct = compute_dtype(x, weight)
    y = np.matmul(x.astype(ct, copy=False), weight.astype(ct, copy=False).T)  # weight is [D_out, D_in]
    return y if bias is None else y + np.asarray(bias, dtype=ct)


@mil_op("matmul")
def matmul(x, y, transpose_x=False, transpose_y=False):
    x, y = np.asarray(x), np.asarray(y)
    ct = compute_dtype(x, y)
    x, y = x.astype(ct, copy=False), y.astype(ct, copy=False)
    if transpose_x and x.ndim >= 2:
        x = np.swapaxes(x, -1, -2)
    if transpose_y and y.ndim >= 2:
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


@mil_op("einsum")
def einsum(values, equation):
    arrays = [np.asarray(v) for v in values]
    ct = compute_dtype(*arrays)
    return np.einsum(equation, *[a.astype(ct, copy=False) for a in arrays])


@mil_op("scaled_dot_product_attention")
def scaled_dot_product_attention(query, key, value, attn_mask=None):
    q, k, v = (np.asarray(a) for a in (query, key, value))
    ct = compute_dtype(q, k, v)
    q, k, v = q.astype(ct), k.astype(ct), v.astype(ct)
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) / np.sqrt(q.shape[-1]).astype(ct)
    if attn_mask is not None:
        m = np.asarray(attn_mask)
        # bool mask: True = attend; float mask is added (iOS18 op def)
        scores = np.where(m, scores, -np.inf) if m.dtype == bool else scores + m.astype(ct)
    return np.matmul(softmax(scores, -1), v)
