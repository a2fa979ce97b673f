"""Pooling: MaxPool, AveragePool (count_include_pad, ceil_mode), GlobalAveragePool, GlobalMaxPool, LRN."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.ops._util import lift_1d, int_list, is_tf_same, pad_nhwc, padding_for, spatial_pads
from edgec.lower.tflite.registry import LowerCtx, lowers


def _window(ctx: LowerCtx):
    if not ctx.nhwc:
        ctx.unsupported("only 1-D and 2-D pooling (3-D or 4-D input) is supported")
    if len(ctx.node.outputs) > 1 and ctx.node.outputs[1]:
        ctx.unsupported("the Indices output has no TFLite equivalent")
    kernel = int_list(ctx.attr("kernel_shape"))
    strides = int_list(ctx.attr("strides", [1, 1]))
    if int_list(ctx.attr("dilations", [1, 1])) != [1, 1]:
        ctx.unsupported("dilated pooling has no TFLite equivalent")
    shape = ctx.shape(0)
    in_hw, out_hw = shape[1:3], ctx.out_shape(0)[1:3]
    begin, end = spatial_pads(ctx, in_hw, kernel, strides, [1, 1])
    # ceil_mode: extend the end pad so VALID produces exactly ONNX's output size
    ends = [max(end[i], (out_hw[i] - 1) * strides[i] + kernel[i] - in_hw[i] - begin[i]) for i in range(2)]
    return shape, kernel, strides, begin, end, ends, in_hw, out_hw


def _pool_op(ctx: LowerCtx, code: str, x: int, padding: int, kernel, strides) -> None:
    opts = S.Pool2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = padding, strides[0], strides[1]
    opts.filterHeight, opts.filterWidth = kernel[0], kernel[1]
    ctx.emit(code, [x], [ctx.output(0)], opts)


@lowers("MaxPool")
@lift_1d
def max_pool(ctx: LowerCtx) -> None:
    """MAX_POOL_2D; pads other than TF SAME become PADV2 with the lowest float, then VALID."""
    max_pool_2d(ctx, lambda x, shape, begin, ends: pad_nhwc(ctx, x, shape, begin, ends,
                                                            value=float(np.finfo(np.float32).min)))


def max_pool_2d(ctx: LowerCtx, pad_lowest) -> None:
    """MAX_POOL_2D for float and int8: VALID, TF SAME when the pads are exactly that (it ignores padded cells),
    else `pad_lowest(x, shape, begin, ends)` pads with the lowest value of the dtype, then VALID."""
    shape, kernel, strides, begin, _, ends, in_hw, out_hw = _window(ctx)
    x, padding = padding_for(ctx, ctx.input(0), shape, kernel, strides, [1, 1], begin, ends, out_hw,
                             pad=lambda t: pad_lowest(t, shape, begin, ends))
    _pool_op(ctx, "MAX_POOL_2D", x, padding, kernel, strides)


def _counts(size: int, out: int, k: int, s: int, pb: int, lo: int, hi: int) -> np.ndarray:
    """Per output position: how many window cells fall in [lo, hi) (input coordinates)."""
    starts = np.arange(out) * s - pb
    return np.clip(np.minimum(starts + k, hi) - np.maximum(starts, lo), 0, None)


@lowers("AveragePool")
@lift_1d
def average_pool(ctx: LowerCtx) -> None:
    """AVERAGE_POOL_2D; pads other than TF SAME: PAD + VALID, then a constant divisor correction."""
    shape, kernel, strides, begin, end, ends, in_hw, out_hw = _window(ctx)
    include = int(ctx.attr("count_include_pad", 0)) == 1
    x = ctx.input(0)
    if not any(begin) and not any(ends):
        return _pool_op(ctx, "AVERAGE_POOL_2D", x, S.Padding.VALID, kernel, strides)
    if not include and is_tf_same(in_hw, kernel, strides, [1, 1], begin, ends, out_hw):
        return _pool_op(ctx, "AVERAGE_POOL_2D", x, S.Padding.SAME, kernel, strides)  # TF SAME excludes pads too
    # VALID over the zero-padded input divides by the full window; ONNX divides by the counted cells
    counted = [_counts(in_hw[i], out_hw[i], kernel[i], strides[i], begin[i],
                       -begin[i] if include else 0, in_hw[i] + end[i] if include else in_hw[i]) for i in range(2)]
    count = np.outer(counted[0], counted[1]).astype(np.float32)
    if (count <= 0).any():
        ctx.unsupported("a pooling window covers no counted cell")
    scale = (kernel[0] * kernel[1] / count)[None, :, :, None].astype(np.float32)
    padded = pad_nhwc(ctx, x, shape, begin, ends)
    if np.all(scale == 1.0):
        return _pool_op(ctx, "AVERAGE_POOL_2D", padded, S.Padding.VALID, kernel, strides)
    opts = S.Pool2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = S.Padding.VALID, strides[0], strides[1]
    opts.filterHeight, opts.filterWidth = kernel[0], kernel[1]
    pooled = ctx.temp(ctx.out_shape(0), tag="pooled")
    ctx.emit("AVERAGE_POOL_2D", [padded], [pooled], opts)
    ctx.emit("MUL", [pooled, ctx.constant(scale, "divisor_fix")], [ctx.output(0)], S.MulOptionsT())


def _global(ctx: LowerCtx, code: str) -> None:
    if not ctx.nhwc:
        ctx.unsupported("only 3-D or 4-D input is supported")
    opts = S.ReducerOptionsT()
    opts.keepDims = True
    ctx.emit(code, [ctx.input(0), ctx.constant(np.array([1, 2], np.int32), "axes")], [ctx.output(0)], opts)


@lowers("int8.GlobalAveragePool", float_kernel=True, int16=True)
@lowers("GlobalAveragePool")
@lift_1d
def global_average_pool(ctx: LowerCtx) -> None:
    """MEAN over H, W (keep dims)."""
    _global(ctx, "MEAN")


@lowers("GlobalMaxPool")
@lift_1d
def global_max_pool(ctx: LowerCtx) -> None:
    """REDUCE_MAX over H, W (keep dims)."""
    _global(ctx, "REDUCE_MAX")


@lowers("LRN")
@lift_1d
def lrn(ctx: LowerCtx) -> None:
    """LOCAL_RESPONSE_NORMALIZATION (ONNX divides alpha by size; TFLite does not)."""
    if not ctx.nhwc:
        ctx.unsupported("only 3-D or 4-D input is supported")
    size = int(ctx.attr("size"))
    if size % 2 == 0:
        ctx.unsupported(f"even size={size} is an asymmetric window; TFLite's is symmetric")
    opts = S.LocalResponseNormalizationOptionsT()
    opts.radius, opts.bias = (size - 1) // 2, float(ctx.attr("bias", 1.0))
    opts.alpha, opts.beta = float(ctx.attr("alpha", 1e-4)) / size, float(ctx.attr("beta", 0.75))
    ctx.emit("LOCAL_RESPONSE_NORMALIZATION", [ctx.input(0)], [ctx.output(0)], opts)


@lowers("LpPool")
@lift_1d
def lp_pool(ctx: LowerCtx) -> None:
    """(sum over the window of |x|^p)^(1/p): POW, zero PAD, VALID AVERAGE_POOL_2D times the window size, POW."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")
    shape, kernel, strides, begin, end, ends, in_hw, out_hw = _window(ctx)
    p = float(ctx.attr("p", 2))
    if p <= 0:
        ctx.unsupported(f"p={p}")
    ones = (1, 1, 1, 1)
    a = ctx.temp(shape, tag="abs")
    ctx.emit("ABS", [ctx.input(0)], [a])
    powed = ctx.temp(shape, tag="pow")
    if p == 2.0:
        ctx.emit("MUL", [a, a], [powed], S.MulOptionsT())
    else:
        ctx.emit("POW", [a, ctx.constant(np.full(ones, p, np.float32), "p")], [powed], S.PowOptionsT())
    x = pad_nhwc(ctx, powed, shape, begin, ends) if any(begin) or any(ends) else powed  # zeros add nothing
    opts = S.Pool2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = S.Padding.VALID, strides[0], strides[1]
    opts.filterHeight, opts.filterWidth = kernel[0], kernel[1]
    mean = ctx.temp(ctx.out_shape(0), tag="mean")
    ctx.emit("AVERAGE_POOL_2D", [x], [mean], opts)
    total = ctx.temp(ctx.out_shape(0), tag="sum")
    ctx.emit("MUL", [mean, ctx.constant(np.full(ones, kernel[0] * kernel[1], np.float32), "window")], [total],
             S.MulOptionsT())
    if p == 2.0:
        return ctx.emit("SQRT", [total], [ctx.output(0)])
    ctx.emit("POW", [total, ctx.constant(np.full(ones, 1.0 / p, np.float32), "inv_p")], [ctx.output(0)],
             S.PowOptionsT())
