"""Window functions, CumProd, LpPool, Compress, CenterCropPad: ops with a static answer shape composed from
slices, pooling and constants."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from onnx import TensorProto, helper

from edgec.lower.coreml.ops._util import check_auto_pad, first, like, mil_pad, need_const, need_shape, norm_axis, \
    spatial_pads
from edgec.lower.coreml.registry import MIL_DTYPE, Env, NodeView, lowers


def _i32(values) -> np.ndarray:
    return np.array(list(values), dtype=np.int32)


# --- window functions (the size is fixed by the static output shape) -------------------------------------------

def _check_window(n: NodeView) -> str | None:
    if n.const(0) is None and n.out_shape(0) is None:
        return "the window size is computed at run time and the output length is unknown"
    return None if int(n.attr("output_datatype", TensorProto.FLOAT)) in MIL_DTYPE else "output_datatype"


def _window(n: NodeView, coeffs: list[float]) -> np.ndarray:
    size = int(n.const(0).reshape(-1)[0]) if n.const(0) is not None else n.out_shape(0)[0]
    span = size if int(n.attr("periodic", 1)) else size - 1
    k = np.arange(size, dtype=np.float64)
    w = sum(c * np.cos(2 * np.pi * i * k / span) for i, c in enumerate(coeffs))
    return w.astype(helper.tensor_dtype_to_np_dtype(int(n.attr("output_datatype", TensorProto.FLOAT))))


@lowers("HannWindow", check=_check_window)
def hann_window(n: NodeView, env: Env):
    """a constant: 0.5 - 0.5 cos(2 pi k / N)"""
    return _window(n, [0.5, -0.5])


@lowers("HammingWindow", check=_check_window)
def hamming_window(n: NodeView, env: Env):
    """a constant: 25/46 - 21/46 cos(2 pi k / N)"""
    return _window(n, [25 / 46, -21 / 46])


@lowers("BlackmanWindow", check=_check_window)
def blackman_window(n: NodeView, env: Env):
    """a constant: 0.42 - 0.5 cos(2 pi k / N) + 0.08 cos(4 pi k / N)"""
    return _window(n, [0.42, -0.5, 0.08])


# --- CumProd ---------------------------------------------------------------------------------------------------

_MAX_SCAN = 256  # CumProd is unrolled along its axis (MIL has cumsum only)


def _check_cumprod(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "axis"))
    if why:
        return why
    axis = norm_axis(int(n.const(1).reshape(-1)[0]), len(n.shape(0)))
    if n.shape(0)[axis] > _MAX_SCAN:
        return f"axis length {n.shape(0)[axis]} > {_MAX_SCAN} (CumProd is unrolled into one mul per element)"
    return None


@lowers("CumProd", check=_check_cumprod)
def cumprod(n: NodeView, env: Env):
    """running products of slices along the axis (exclusive starts from ones, reverse walks backwards), concat"""
    shape = n.shape(0)
    rank = len(shape)
    axis = norm_axis(int(n.const(1).reshape(-1)[0]), rank)
    x = env.var(n, 0)
    length = shape[axis]
    order = list(range(length))[::-1] if int(n.attr("reverse", 0)) else list(range(length))
    one_shape = list(shape)
    one_shape[axis] = 1

    def piece(i):
        begin, end = [0] * rank, list(shape)
        begin[axis], end[axis] = i, i + 1
        return mb.slice_by_index(x=x, begin=_i32(begin), end=_i32(end), name=env.tmp(n, f"s{i}"))

    acc = np.ones(one_shape, dtype=like(x, 0).dtype)
    outs = {}
    for step, i in enumerate(order):
        if int(n.attr("exclusive", 0)):  # the product of the elements before this one (ones first)
            outs[i] = acc
            acc = mb.mul(x=acc, y=piece(i), name=env.tmp(n, f"p{i}")) if step else piece(i)
        else:
            acc = piece(i) if step == 0 else mb.mul(x=acc, y=piece(i), name=env.tmp(n, f"p{i}"))
            outs[i] = acc
    return mb.concat(values=[outs[i] for i in range(length)], axis=axis, name=env.out(n))


# --- LpPool ----------------------------------------------------------------------------------------------------

def _check_lppool(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), check_auto_pad(n))
    if why:
        return why
    if not 3 <= len(n.shape(0)) <= 5:
        return f"input rank {len(n.shape(0))}"
    if any(d != 1 for d in n.attr("dilations", [])):
        return f"dilations={n.attr('dilations')}: CoreML pooling has no dilation"
    if n.attr("ceil_mode", 0):
        return "ceil_mode=1 is not lowered for LpPool"
    return None


@lowers("LpPool", check=_check_lppool)
def lp_pool(n: NodeView, env: Env):
    """(sum over the window of |x|^p)^(1/p): zero padding, avg_pool * window size"""
    kernel = list(n.attr("kernel_shape"))
    strides = list(n.attr("strides", [1] * len(kernel)))
    pads = spatial_pads(n, n.shape(0)[2:], kernel, strides, [1] * len(kernel))
    p = float(n.attr("p", 2))
    x = mb.abs(x=env.var(n, 0), name=env.tmp(n, "abs"))
    if p != 1:
        x = mb.pow(x=x, y=like(x, p), name=env.tmp(n, "pow"))
    if any(b or e for b, e in pads):
        x = mb.pad(x=x, pad=mil_pad(pads), mode="constant", constant_val=0.0, name=env.tmp(n, "pad"))
    y = mb.avg_pool(x=x, kernel_sizes=_i32(kernel), strides=_i32(strides), pad_type="valid",
                    exclude_padding_from_average=False, name=env.tmp(n, "avg"))
    y = mb.mul(x=y, y=like(y, int(np.prod(kernel))), name=env.tmp(n, "sum") if p != 1 else env.out(n))
    return y if p == 1 else mb.pow(x=y, y=like(y, 1 / p), name=env.out(n))


# --- Compress, CenterCropPad -------------------------------------------------------------------------------------

def _check_compress(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "condition"))
    if why:
        return why
    if n.const(1) is not None and not n.const(1).any():
        return "condition selects nothing: CoreML has no empty tensors"
    return None


@lowers("Compress", check=_check_compress)
def compress(n: NodeView, env: Env):
    """gather with the constant condition's true positions (flattened first without an axis)"""
    keep = np.flatnonzero(n.const(1).reshape(-1).astype(bool))
    x = env.var(n, 0)
    axis = n.attr("axis")
    if axis is None:
        x = mb.reshape(x=x, shape=_i32([-1]), name=env.tmp(n, "flat"))
        axis = 0
        size = int(np.prod(n.shape(0)))
    else:
        axis = norm_axis(int(axis), len(n.shape(0)))
        size = n.shape(0)[axis]
    keep = keep[keep < size].astype(np.int32)
    return mb.gather(x=x, indices=keep, axis=axis, name=env.out(n))


def _check_center_crop_pad(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    if n.const(1) is None and n.out_shape(0) is None:
        return "the target shape is computed at run time and the output shape is unknown"
    if n.dtype(0) not in (TensorProto.FLOAT, TensorProto.FLOAT16, None) and n.out_shape(0) != n.shape(0):
        return "padding a non-float tensor: CoreML pad is float-only"
    return None


@lowers("CenterCropPad", check=_check_center_crop_pad)
def center_crop_pad(n: NodeView, env: Env):
    """slice_by_index for the axes that shrink, then pad with zeros for those that grow (centred, extra at the end)"""
    src = list(n.shape(0))
    rank = len(src)
    out = list(n.out_shape(0)) if n.out_shape(0) is not None else None
    if out is None:
        axes = [norm_axis(int(a), rank) for a in (n.attr("axes") or range(rank))]
        out = list(src)
        for a, d in zip(axes, n.const(1).reshape(-1).tolist()):
            out[a] = int(d)
    x = env.var(n, 0)
    begin, end = [0] * rank, list(src)
    for a in range(rank):
        if out[a] < src[a]:
            begin[a] = (src[a] - out[a]) // 2
            end[a] = begin[a] + out[a]
    if begin != [0] * rank or end != src:
        x = mb.slice_by_index(x=x, begin=_i32(begin), end=_i32(end), name=env.tmp(n, "crop"))
    pads = []
    for a in range(rank):
        grow = max(out[a] - src[a], 0)
        pads.append((grow // 2, grow - grow // 2))
    if any(b or e for b, e in pads):
        x = mb.pad(x=x, pad=mil_pad(pads), mode="constant", constant_val=0.0, name=env.tmp(n, "pad"))
    return mb.identity(x=x, name=env.out(n))


# --- ReverseSequence, AffineGrid ------------------------------------------------------------------------------------

@lowers("ReverseSequence", check=lambda n: first(need_shape(n, 0), need_shape(n, 1)))
def reverse_sequence(n: NodeView, env: Env):
    """reverse_sequence (the first sequence_lens[b] steps of each batch entry reversed)"""
    lens = env.var(n, 1)
    if n.dtype(1) != TensorProto.INT32:
        lens = mb.cast(x=lens, dtype="int32", name=env.tmp(n, "lens"))
    return mb.reverse_sequence(x=env.var(n, 0), lengths=lens, seq_axis=int(n.attr("time_axis", 0)),
                               batch_axis=int(n.attr("batch_axis", 1)), name=env.out(n))


def _check_affine_grid(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "size"))
    if why:
        return why
    return None if len(n.const(1).reshape(-1)) in (4, 5) else "size must be [N, C, H, W] or [N, C, D, H, W]"


@lowers("AffineGrid", check=_check_affine_grid)
def affine_grid(n: NodeView, env: Env):
    """matmul of the constant base grid ([x, y, (z,) 1] per output point) with theta transposed"""
    size = [int(d) for d in n.const(1).reshape(-1)]
    spatial = size[2:]
    align = bool(n.attr("align_corners", 0))

    def coords(length):
        if align:
            return np.linspace(-1, 1, length) if length > 1 else np.zeros(1)
        return (2 * np.arange(length) + 1) / length - 1

    axes = [coords(d) for d in spatial]  # D, H, W order; the grid lists x (W) first
    mesh = np.meshgrid(*axes, indexing="ij")
    base = np.stack([m.reshape(-1) for m in reversed(mesh)] + [np.ones(mesh[0].size)], axis=1).astype(np.float32)
    theta_t = mb.transpose(x=env.var(n, 0), perm=_i32([0, 2, 1]), name=env.tmp(n, "theta_t"))
    grid = mb.matmul(x=base, y=theta_t, name=env.tmp(n, "grid"))
    return mb.reshape(x=grid, shape=_i32([size[0]] + spatial + [len(spatial)]), name=env.out(n))


def _check_global_lp(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    return why or (None if len(n.shape(0)) >= 3 else "input rank < 3")


@lowers("GlobalLpPool", check=_check_global_lp)
def global_lp_pool(n: NodeView, env: Env):
    """(sum over the spatial axes of |x|^p)^(1/p)"""
    p = float(n.attr("p", 2))
    axes = _i32(range(2, len(n.shape(0))))
    x = mb.abs(x=env.var(n, 0), name=env.tmp(n, "abs"))
    if p != 1:
        x = mb.pow(x=x, y=like(x, p), name=env.tmp(n, "pow"))
    y = mb.reduce_sum(x=x, axes=axes, keep_dims=True, name=env.tmp(n, "sum") if p != 1 else env.out(n))
    return y if p == 1 else mb.pow(x=y, y=like(y, 1 / p), name=env.out(n))


@lowers("DynamicQuantizeLinear", check=lambda n: need_shape(n, 0))
def dynamic_quantize_linear(n: NodeView, env: Env):
    """uint8 quantization with the range taken at run time (ONNX's formula: scale = (max(0, max x) - min(0, min x))
    / 255, zero point = clip(round(-min / scale)), y = clip(round(x / scale) + zero point)); [y, scale, zero point]"""
    x = env.var(n, 0)
    hi = mb.maximum(x=mb.reduce_max(x=x, name=env.tmp(n, "max")), y=np.float32(0), name=env.tmp(n, "hi"))
    lo = mb.minimum(x=mb.reduce_min(x=x, name=env.tmp(n, "min")), y=np.float32(0), name=env.tmp(n, "lo"))
    scale = mb.real_div(x=mb.sub(x=hi, y=lo, name=env.tmp(n, "range")), y=np.float32(255), name=env.out(n, 1))
    zp = mb.clip(x=mb.round(x=mb.real_div(x=mb.mul(x=lo, y=np.float32(-1), name=env.tmp(n, "neg")), y=scale,
                                          name=env.tmp(n, "zpf")), name=env.tmp(n, "zpr")),
                 alpha=np.float32(0), beta=np.float32(255), name=env.tmp(n, "zpc"))
    y = mb.add(x=mb.round(x=mb.real_div(x=x, y=scale, name=env.tmp(n, "scaled")), name=env.tmp(n, "rounded")), y=zp,
               name=env.tmp(n, "shifted"))
    y = mb.clip(x=y, alpha=np.float32(0), beta=np.float32(255), name=env.tmp(n, "clipped"))
    return [mb.cast(x=y, dtype="int32", name=env.out(n)), scale, mb.cast(x=zp, dtype="int32", name=env.out(n, 2))]
