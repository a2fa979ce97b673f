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
    if any(d != 1 for d in n.attr("dilations", [])):
        return f"dilations={n.attr('dilations')}: CoreML pooling has no dilation"
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
    if elem not in (TensorProto.FLOAT, TensorProto.FLOAT16) + _EXACT_IN_FP16:
        return (f"{TensorProto.DataType.Name(elem)} input: CoreML max_pool is float-only and this type is not "
                f"exact in fp16")
    return None


@lowers("MaxPool", check=_check_max_pool)
def max_pool(n: NodeView, env: Env):
    """max_pool, custom pads; (u)int8 pooled as fp32 and cast back (exact)"""
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
    """avg_pool; count_include_pad=1 pads zeros explicitly so only the ceil overhang is excluded"""
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
