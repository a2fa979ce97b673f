"""MaxPool, AveragePool (count_include_pad, ceil_mode), GlobalAveragePool, GlobalMaxPool.

ceil_mode is lowered as extra end padding that pooling ignores: it gives exactly ONNX Runtime's
windows (the last window must start inside the input or its left pad) and divisors, and avoids
depending on how each CoreML version treats its own ceil_mode flag.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import TensorProto
from coremltools.converters.mil.mil import Builder as mb

from edgec.lower.coreml.ops._util import check_auto_pad, first, mil_pad, need_shape, spatial_pads
from edgec.lower.coreml.registry import Env, NodeView, lowers


def _check_pool(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), check_auto_pad(n))
    if why:
        return why
    rank = len(n.shape(0))
    if not 3 <= rank <= 5:
        return f"input rank {rank}: CoreML pooling takes 1-3 spatial dims"
    if _dilated(n) and n.out_shape(0) is None:
        return f"dilations={n.attr('dilations')} with an unknown output shape"
    if len(n.outputs) > 1 and n.outputs[1]:
        return "the Indices output has no CoreML equivalent"
    return None


def _windows(n: NodeView):
    """kernel, strides, and (begin, end) pads with ceil_mode folded into the end pads."""
    in_spatial = n.shape(0)[2:]
    kernel = list(n.attr("kernel_shape"))
    strides = list(n.attr("strides", [1] * len(kernel)))
    pads = spatial_pads(n, in_spatial, kernel, strides, [1] * len(kernel))
    if n.attr("ceil_mode", 0):
        grown = []
        for size, k, s, (b, e) in zip(in_spatial, kernel, strides, pads):
            span = size + b + e - k
            out = math.ceil(span / s) + 1
            if (out - 1) * s >= size + b:  # a window may not start in the right padding
                out -= 1
            grown.append((b, max(e, (out - 1) * s + k - size - b)))
        pads = grown
    return kernel, strides, pads


_EXACT_IN_FP16 = (TensorProto.UINT8, TensorProto.INT8)  # every value is an fp16 integer: max through float is exact


def _check_max_pool(n: NodeView) -> str | None:
    why = _check_pool(n)
    if why:
        return why
    elem = n.dtype(0)
    if _dilated(n) and elem not in (TensorProto.FLOAT, TensorProto.FLOAT16):
        return f"dilations={n.attr('dilations')} on a {TensorProto.DataType.Name(elem)} input (float only)"
    if elem not in (TensorProto.FLOAT, TensorProto.FLOAT16) + _EXACT_IN_FP16:
        return (f"{TensorProto.DataType.Name(elem)} input: CoreML max_pool is float-only and this type is not "
                f"exact in fp16")
    return None


def _dilated(n: NodeView) -> bool:
    return any(d != 1 for d in n.attr("dilations", []))


def _dilated_pool(n: NodeView, env: Env, x, is_max: bool):
    """Dilated pooling (CoreML's pools have no dilation): pad, then one strided slice per kernel offset, combined by
    maximum or sum; the average divides by a constant count of the positions each window covers (inside the input,
    or inside input + pads with count_include_pad), so ceil_mode overhang is never counted."""
    in_sp = n.shape(0)[2:]
    out_sp = n.out_shape(0)[2:]
    kernel = list(n.attr("kernel_shape"))
    strides = list(n.attr("strides", [1] * len(kernel)))
    dil = list(n.attr("dilations"))
    pads = spatial_pads(n, in_sp, kernel, strides, dil)
    ends = [max(e, (o - 1) * st + (k - 1) * d + 1 - size - b)
            for (b, e), o, st, k, d, size in zip(pads, out_sp, strides, kernel, dil, in_sp)]
    full = [(b, e) for (b, _), e in zip(pads, ends)]
    fill = -3.0e38 if is_max else 0.0
    if any(b or e for b, e in full):
        x = mb.pad(x=x, pad=mil_pad(full), mode="constant", constant_val=fill, name=env.tmp(n, "pad"))
    padded = [size + b + e for size, (b, e) in zip(in_sp, full)]
    acc = None
    for idx, offs in enumerate(np.ndindex(*kernel)):
        begin = [0, 0] + [j * d for j, d in zip(offs, dil)]
        end = [n.shape(0)[0], n.shape(0)[1]] + [j * d + (o - 1) * st + 1 for j, d, o, st in zip(offs, dil, out_sp, strides)]
        sl = mb.slice_by_index(x=x, begin=np.array(begin, np.int32), end=np.array(end, np.int32),
                               stride=np.array([1, 1] + strides, np.int32), name=env.tmp(n, f"tap{idx}"))
        if acc is None:
            acc = sl
        else:
            acc = (mb.maximum if is_max else mb.add)(x=acc, y=sl, name=env.tmp(n, f"acc{idx}"))
    if is_max:
        return mb.identity(x=acc, name=env.out(n))
    counted = np.zeros(padded, np.float32)
    inner = tuple(slice(b, b + size) if not n.attr("count_include_pad", 0) else slice(0, b + size + e0)
                  for (b, _), size, (_, e0) in zip(full, in_sp, pads))
    counted[inner] = 1
    count = np.zeros(out_sp, np.float32)
    for offs in np.ndindex(*kernel):
        sl = tuple(slice(j * d, j * d + (o - 1) * st + 1, st) for j, d, o, st in zip(offs, dil, out_sp, strides))
        count += counted[sl]
    return mb.real_div(x=acc, y=np.maximum(count, 1).reshape([1, 1] + list(out_sp)).astype(np.float32),
                       name=env.out(n))


@lowers("MaxPool", check=_check_max_pool)
def max_pool(n: NodeView, env: Env):
    """max_pool, custom pads; (u)int8 pooled as fp32 and cast back (exact); dilated windows as strided slices"""
    if _dilated(n):
        return _dilated_pool(n, env, env.var(n, 0), is_max=True)
    kernel, strides, pads = _windows(n)
    x = env.var(n, 0)
    integer = n.dtype(0) in _EXACT_IN_FP16
    if integer:
        x = mb.cast(x=x, dtype="fp32", name=env.tmp(n, "float"))
    y = mb.max_pool(x=x, kernel_sizes=np.array(kernel, np.int32), strides=np.array(strides, np.int32),
                    pad_type="custom", pad=mil_pad(pads), name=env.tmp(n, "pool") if integer else env.out(n))
    return mb.cast(x=y, dtype="int32", name=env.out(n)) if integer else y


@lowers("AveragePool", check=_check_pool)
def avg_pool(n: NodeView, env: Env):
    """avg_pool; count_include_pad=1 pads zeros explicitly so only the ceil overhang is excluded; dilated windows as
    strided slices"""
    if _dilated(n):
        return _dilated_pool(n, env, env.var(n, 0), is_max=False)
    kernel, strides, pads = _windows(n)
    x = env.var(n, 0)
    if n.attr("count_include_pad", 0):
        declared = spatial_pads(n, n.shape(0)[2:], kernel, strides, [1] * len(kernel))
        if any(b or e for b, e in declared):
            x = mb.pad(x=x, pad=mil_pad(declared), mode="constant", constant_val=0.0, name=env.tmp(n, "pad"))
        pads = [(0, e - de) for (_, e), (_, de) in zip(pads, declared)]
    return mb.avg_pool(x=x, kernel_sizes=np.array(kernel, np.int32), strides=np.array(strides, np.int32),
                       pad_type="custom", pad=mil_pad(pads), exclude_padding_from_average=True,
                       name=env.out(n))


def _check_global(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    return None if len(n.shape(0)) >= 3 else f"input rank {len(n.shape(0))} < 3"


@lowers("GlobalAveragePool", check=_check_global)
def global_avg_pool(n: NodeView, env: Env):
    """reduce_mean over the spatial axes"""
    axes = np.arange(2, len(n.shape(0)), dtype=np.int32)
    return mb.reduce_mean(x=env.var(n, 0), axes=axes, keep_dims=True, name=env.out(n))


@lowers("GlobalMaxPool", check=_check_global)
def global_max_pool(n: NodeView, env: Env):
    """reduce_max over the spatial axes"""
    axes = np.arange(2, len(n.shape(0)), dtype=np.int32)
    return mb.reduce_max(x=env.var(n, 0), axes=axes, keep_dims=True, name=env.out(n))
