"""Conv and ConvTranspose (2-D, NHWC data, weights permuted here from ONNX OIHW)."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.ops._util import lift_1d, int_list, padding_for, spatial_pads
from edgec.lower.tflite.registry import LowerCtx, lowers


def _weights_and_bias(ctx: LowerCtx, out_channels: int):
    w = ctx.const(1)
    if w is None:
        ctx.unsupported("weights (input 1) must be a constant")
    if ctx.has_input(2) and ctx.const(2) is None:
        ctx.unsupported("bias (input 2) must be a constant")
    bias = ctx.const(2) if ctx.has_input(2) else np.zeros(out_channels, np.float32)
    return w.astype(np.float32), bias.astype(np.float32)


@lowers("Conv")
@lift_1d
def conv(ctx: LowerCtx) -> None:
    """CONV_2D / DEPTHWISE_CONV_2D (grouped, dilated; explicit pads via PAD unless exactly SAME)."""
    if not ctx.nhwc:
        ctx.unsupported("only 1-D and 2-D convolution (3-D or 4-D input) is supported")
    shape = ctx.shape(0)
    n, h, wd, c = shape
    o = ctx.shape(1)[0]
    w, bias = _weights_and_bias(ctx, o)
    kernel = list(w.shape[2:])
    group = int(ctx.attr("group", 1))
    strides = int_list(ctx.attr("strides", [1, 1]))
    dil = int_list(ctx.attr("dilations", [1, 1]))
    begin, end = spatial_pads(ctx, (h, wd), kernel, strides, dil)
    out_hw = ctx.out_shape(0)[1:3]
    x, padding = padding_for(ctx, ctx.input(0), shape, kernel, strides, dil, begin, end, out_hw)
    y = ctx.output(0)
    if group == 1 or (group != c or w.shape[1] != 1):
        if group != 1 and (c % group or o % group):
            ctx.unsupported(f"group={group} does not divide the channels")
        opts = S.Conv2DOptionsT()
        opts.padding, opts.strideH, opts.strideW = padding, strides[0], strides[1]
        opts.dilationHFactor, opts.dilationWFactor = dil[0], dil[1]
        filt = ctx.constant(np.ascontiguousarray(w.transpose(0, 2, 3, 1)), "filter")  # OHWI
        ctx.emit("CONV_2D", [x, filt, ctx.constant(bias, "bias")], [y], opts, version=6 if group > 1 else 1)
        return
    opts = S.DepthwiseConv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = padding, strides[0], strides[1]
    opts.dilationHFactor, opts.dilationWFactor = dil[0], dil[1]
    opts.depthMultiplier = o // c
    filt = ctx.constant(np.ascontiguousarray(w[:, 0].transpose(1, 2, 0)[None]), "filter")  # 1,H,W,C*M
    ctx.emit("DEPTHWISE_CONV_2D", [x, filt, ctx.constant(bias, "bias")], [y], opts, version=2 if max(dil) > 1 else 1)


@lowers("ConvTranspose")
@lift_1d
def conv_transpose(ctx: LowerCtx) -> None:
    """TRANSPOSE_CONV (VALID) then a crop for ONNX pads; group 1, no dilation."""
    if not ctx.nhwc:
        ctx.unsupported("only 1-D and 2-D transposed convolution (3-D or 4-D input) is supported")
    shape = ctx.shape(0)
    n, h, wd, c = shape
    w = ctx.const(1)
    if w is None:
        ctx.unsupported("weights (input 1) must be a constant")
    if int(ctx.attr("group", 1)) != 1:
        ctx.unsupported("group > 1 has no TFLite TRANSPOSE_CONV")
    dil = int_list(ctx.attr("dilations", [1, 1]))
    if dil != [1, 1]:
        ctx.unsupported(f"dilations={dil}: TFLite TRANSPOSE_CONV has no dilation")
    kernel = list(w.shape[2:])
    o = w.shape[1]
    _, bias = _weights_and_bias(ctx, o)
    strides = int_list(ctx.attr("strides", [1, 1]))
    out = ctx.out_shape(0)
    full = [(h - 1) * strides[0] + kernel[0], (wd - 1) * strides[1] + kernel[1]]
    auto = ctx.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", "", "VALID"):
        pads = int_list(ctx.attr("pads", [0, 0, 0, 0])) if auto != "VALID" else [0, 0, 0, 0]
        begin = pads[:2]
    else:  # SAME_*: total padding = full - out, split like ONNX does
        total = [full[i] + int_list(ctx.attr("output_padding", [0, 0]))[i] - out[1 + i] for i in range(2)]
        begin = [t - t // 2 if auto == "SAME_LOWER" else t // 2 for t in total]
    if any(begin[i] < 0 for i in range(2)):
        ctx.unsupported("negative padding")
    # output_padding may reach past the footprint (those rows get only the bias): a larger output_shape,
    # which TRANSPOSE_CONV fills with zeros + bias, as long as the extra is less than the stride
    extra = [max(0, begin[i] + out[1 + i] - full[i]) for i in range(2)]
    if any(extra[i] >= strides[i] for i in range(2)):
        ctx.unsupported(f"output extends {extra} past the transposed-conv footprint (stride {strides})")
    full = [full[i] + extra[i] for i in range(2)]
    filt = ctx.constant(np.ascontiguousarray(w.astype(np.float32).transpose(1, 2, 3, 0)), "filter")  # OHWI
    opts = S.TransposeConvOptionsT()
    opts.padding, opts.strideH, opts.strideW = S.Padding.VALID, strides[0], strides[1]
    crop = [full[i] != out[1 + i] for i in range(2)]
    y = ctx.output(0)
    t = ctx.temp((n, full[0], full[1], o), tag="full") if any(crop) else y
    out_shape = ctx.constant(np.array([n, full[0], full[1], o], np.int32), "output_shape")
    ctx.emit("TRANSPOSE_CONV", [out_shape, filt, ctx.input(0), ctx.constant(bias, "bias")], [t], opts, version=3)
    if any(crop):
        ctx.emit("SLICE", [t, ctx.constant(np.array([0, begin[0], begin[1], 0], np.int32), "begin"),
                           ctx.constant(np.array([n, out[1], out[2], o], np.int32), "size")], [y], S.SliceOptionsT())
