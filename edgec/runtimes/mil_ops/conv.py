"""conv, conv_transpose and pooling (iOS15/iOS17 conv.py, pool.py), any number of spatial dims.

Convolution is im2col by strided views (one copy per kernel offset, no Python loop over pixels)
followed by one batched matmul per group set.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from . import mil_op
from ._util import compute_dtype, ints


def explicit_pads(pad_type, pad, in_sizes, kernel, strides, dilations) -> list[tuple[int, int]]:
    """(before, after) padding per spatial dim for pad_type valid / custom / same / same_lower."""
    n = len(in_sizes)
    if pad_type == "valid":
        return [(0, 0)] * n
    if pad_type == "custom":
        p = ints(pad)
        return [(p[2 * i], p[2 * i + 1]) for i in range(n)]
    if pad_type in ("same", "same_lower"):
        out = []
        for i, s, k, d in zip(in_sizes, strides, kernel, dilations):
            keff = (k - 1) * d + 1
            total = max(0, s * math.ceil(i / s) - i + keff - s)  # = (ceil(i/s)-1)*s + keff - i
            small, big = total // 2, total - total // 2
            # "same" puts the odd row/column at the end (TF SAME), "same_lower" at the start
            out.append((small, big) if pad_type == "same" else (big, small))
        return out
    raise ValueError(f"unknown pad_type '{pad_type}'")


def _windows(xp: np.ndarray, kernel, strides, dilations, out_sizes) -> np.ndarray:
    """(N, C, prod(kernel), *out_sizes): input patches, one strided view per kernel offset."""
    cols = []
    for offs in itertools.product(*(range(k) for k in kernel)):
        sl = tuple(
            slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(offs, dilations, strides, out_sizes)
        )
        cols.append(xp[(slice(None), slice(None)) + sl])
    return np.stack(cols, axis=2)


def _geometry(x, weight, strides, dilations):
    """What conv and conv_transpose read alike: arrays, compute dtype, kernel, strides and dilations (default 1)."""
    x, weight = np.asarray(x), np.asarray(weight)
    nsp = x.ndim - 2
    strides = ints(strides) if strides is not None else [1] * nsp
    dilations = ints(dilations) if dilations is not None else [1] * nsp
    return x, weight, compute_dtype(x, weight), weight.shape[2:], strides, dilations


@mil_op("conv")
def conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None, groups=1):
    x, weight, ct, kernel, strides, dilations = _geometry(x, weight, strides, dilations)
    pads = explicit_pads(pad_type, pad, x.shape[2:], kernel, strides, dilations)
    xp = np.pad(x.astype(ct, copy=False), [(0, 0), (0, 0)] + pads)
    out_sizes = [
        (n - ((k - 1) * d + 1)) // s + 1 for n, k, d, s in zip(xp.shape[2:], kernel, dilations, strides)
    ]
    g = int(groups)
    N, C = x.shape[:2]
    O = weight.shape[0]
    K = int(np.prod(kernel))
    cols = _windows(xp, kernel, strides, dilations, out_sizes)  # N, C, K, *out
    P = int(np.prod(out_sizes))
    cols = cols.reshape(N, g, (C // g) * K, P)
    w = weight.astype(ct, copy=False).reshape(g, O // g, (C // g) * K)
    if C // g == 1 and O == g:  # depthwise: a matmul per channel would be 1xK; multiply-add instead
        y = np.einsum("ngkp,gk->ngp", cols, w[:, 0, :]).reshape(N, O, P)
    else:
        y = np.matmul(w[None], cols).reshape(N, O, P)
    if bias is not None:
        y = y + np.asarray(bias, dtype=ct).reshape(1, O, 1)
    return y.reshape((N, O, *out_sizes))


@mil_op("conv_transpose")
def conv_transpose(x, weight, bias=None, pad=None, output_shape=None, pad_type="valid", strides=None,
                   dilations=None, groups=1):
    """Scatter form: each kernel offset adds x @ w into a strided slice of the full output, which is
    then cropped by the padding (or to output_shape)."""
    x, weight, ct, kernel, strides, dilations = _geometry(x, weight, strides, dilations)
    nsp = x.ndim - 2
    N, C = x.shape[:2]
    in_sizes = x.shape[2:]
    g = int(groups)
    Og = weight.shape[1]
    O = Og * g
    full = [s * (n - 1) + (k - 1) * d + 1 for s, n, k, d in zip(strides, in_sizes, kernel, dilations)]
    y = np.zeros((N, g, Og, *full), dtype=ct)
    xg = x.astype(ct, copy=False).reshape(N, g, C // g, -1)
    w = weight.astype(ct, copy=False).reshape(g, C // g, Og, -1)  # weight is [C_in, C_out/groups, *K]
    for ki, offs in enumerate(itertools.product(*(range(k) for k in kernel))):
        contrib = np.matmul(w[None, :, :, :, ki].swapaxes(-1, -2), xg)  # N, g, Og, P
        sl = tuple(slice(o * d, o * d + s * (n - 1) + 1, s) for o, d, s, n in zip(offs, dilations, strides, in_sizes))
        y[(slice(None), slice(None), slice(None)) + sl] += contrib.reshape(N, g, Og, *in_sizes)
    y = y.reshape(N, O, *full)
    if pad_type == "same":
        targets = [s * n for s, n in zip(strides, in_sizes)]
        crops = []
        for f, t in zip(full, targets):
            total = f - t
            crops.append((max(total, 0) // 2, t))
    elif pad_type == "valid":
        crops = [(0, f) for f in full]
    elif pad_type == "custom":
        p = ints(pad)
        crops = [(p[2 * i], full[i] - p[2 * i] - p[2 * i + 1]) for i in range(nsp)]
    else:
        raise ValueError(f"unknown pad_type '{pad_type}'")
    if output_shape is not None:
        crops = [(b, t) for (b, _), t in zip(crops, ints(output_shape)[2:])]
    out = np.zeros((N, O, *[t for _, t in crops]), dtype=ct)
    src = tuple(slice(b, min(b + t, f)) for (b, t), f in zip(crops, full))
    dst = tuple(slice(0, min(b + t, f) - b) for (b, t), f in zip(crops, full))
    out[(slice(None), slice(None)) + dst] = y[(slice(None), slice(None)) + src]
    if bias is not None:
        out = out + np.asarray(bias, dtype=ct).reshape((1, O) + (1,) * nsp)
    return out


def _pool_geometry(x, kernel_sizes, strides, pad_type, pad, ceil_mode):
    nsp = x.ndim - 2
    kernel = ints(kernel_sizes)
    strides = ints(strides) if strides is not None else [1] * nsp
    pads = explicit_pads(pad_type, pad, x.shape[2:], kernel, strides, [1] * nsp)
    out_sizes = []
    for n, k, s, (b, a) in zip(x.shape[2:], kernel, strides, pads):
        if ceil_mode:
            o = (n + b + a - k + s - 1) // s + 1
            if (o - 1) * s >= n + b and (b > 0 or a > 0):  # last window must start inside input+left pad
                o -= 1
        else:
            o = (n + b + a - k) // s + 1
        out_sizes.append(o)
    # ceil_mode windows may run past the right pad: extend with extra padding that is never counted
    extra = [max(0, (o - 1) * s + k - (n + b + a)) for o, s, k, n, (b, a) in zip(out_sizes, strides, kernel, x.shape[2:], pads)]
    return kernel, strides, pads, extra, out_sizes


def _pool(x, kernel_sizes, strides, pad_type, pad, ceil_mode, fill):
    x = np.asarray(x)
    kernel, strides, pads, extra, out_sizes = _pool_geometry(x, kernel_sizes, strides, pad_type, pad, ceil_mode)
    widths = [(0, 0), (0, 0)] + [(b, a + e) for (b, a), e in zip(pads, extra)]
    xp = np.pad(x, widths, constant_values=fill)
    return _windows(xp, kernel, strides, [1] * len(kernel), out_sizes), kernel, strides, pads, extra, out_sizes


@mil_op("max_pool")
def max_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=False):
    cols, *_ = _pool(x, kernel_sizes, strides, pad_type, pad, bool(ceil_mode), -np.inf)
    return cols.max(axis=2)


@mil_op("avg_pool")
def avg_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, exclude_padding_from_average=False,
             ceil_mode=False):
    x = np.asarray(x)
    ct = compute_dtype(x)
    cols, kernel, strides, pads, extra, out_sizes = _pool(x.astype(ct), kernel_sizes, strides, pad_type, pad,
                                                          bool(ceil_mode), 0)
    total = cols.sum(axis=2)
    # Divisor: positions inside the input (exclude_padding) or inside input + explicit pads; the
    # ceil_mode overhang is never counted (PyTorch/ONNX semantics).
    ones = np.ones((1, 1) + x.shape[2:], dtype=ct)
    if exclude_padding_from_average:
        widths = [(0, 0), (0, 0)] + [(b, a + e) for (b, a), e in zip(pads, extra)]
        counted = np.pad(ones, widths)
    else:
        inner = np.pad(ones, [(0, 0), (0, 0)] + list(pads), constant_values=1)
        counted = np.pad(inner, [(0, 0), (0, 0)] + [(0, e) for e in extra])
    count = _windows(counted, kernel, strides, [1] * len(kernel), out_sizes).sum(axis=2)
    return total / np.maximum(count, 1)


@mil_op("l2_pool")
def l2_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, ceil_mode=False):
    x = np.asarray(x)
    cols, *_ = _pool(x.astype(compute_dtype(x)), kernel_sizes, strides, pad_type, pad, bool(ceil_mode), 0)
    return np.sqrt(np.sum(cols * cols, axis=2))
