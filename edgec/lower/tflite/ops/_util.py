"""Helpers shared by op families: ONNX padding -> TFLite padding, constant shaping."""

from __future__ import annotations

import functools
import math

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.ir import Node
from edgec.lower.tflite.registry import LowerCtx


def spatial_pads(ctx: LowerCtx, in_hw, kernel, strides, dilations) -> tuple[list[int], list[int]]:
    """(begin, end) pads per spatial axis from `pads` / `auto_pad`."""
    n = len(kernel)
    auto = ctx.attr("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        pads = [int(p) for p in ctx.attr("pads", [0] * (2 * n))]
        return pads[:n], pads[n:]
    if auto == "VALID":
        return [0] * n, [0] * n
    begin, end = [], []
    for i in range(n):
        out = math.ceil(in_hw[i] / strides[i])
        total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_hw[i], 0)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin, end


def is_tf_same(in_hw, kernel, strides, dilations, begin, end, out_hw) -> bool:
    """TFLite SAME pads total//2 before and the rest after, and outputs ceil(in / stride)."""
    for i in range(len(kernel)):
        out = math.ceil(in_hw[i] / strides[i])
        total = max((out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in_hw[i], 0)
        if out != out_hw[i] or begin[i] != total // 2 or end[i] != total - total // 2:
            return False
    return True


def pad_nhwc(ctx: LowerCtx, x: int, shape, begin, end, value: float = 0.0) -> int:
    """Explicit PAD (or PADV2 with `value`) of the spatial axes of an NHWC tensor."""
    n, h, w, c = shape
    paddings = np.array([[0, 0], [begin[0], end[0]], [begin[1], end[1]], [0, 0]], dtype=np.int32)
    out = ctx.temp((n, h + begin[0] + end[0], w + begin[1] + end[1], c), tag="padded")
    if value == 0.0:
        ctx.emit("PAD", [x, ctx.constant(paddings, "paddings")], [out], S.PadOptionsT())
    else:
        ctx.emit("PADV2", [x, ctx.constant(paddings, "paddings"), ctx.constant(np.array([value], np.float32), "pad_value")],
                 [out], S.PadV2OptionsT())
    return out


def padding_for(ctx: LowerCtx, x: int, shape, kernel, strides, dilations, begin, end, out_hw, value: float = 0.0,
                pad=None):
    """(input tensor, TFLite Padding) reproducing ONNX explicit pads: SAME only when exactly TF's SAME,
    VALID when no pads, else PAD then VALID (pads=1 stride 2 under SAME would be silently wrong).
    `pad(x)` replaces the float PAD with `value` (int8 tensors pad in their own quantized domain)."""
    in_hw = shape[1:3]
    if not any(begin) and not any(end):
        return x, S.Padding.VALID
    if is_tf_same(in_hw, kernel, strides, dilations, begin, end, out_hw):
        return x, S.Padding.SAME
    return (pad(x) if pad is not None else pad_nhwc(ctx, x, shape, begin, end, value)), S.Padding.VALID


def full_rank(value: np.ndarray, rank: int) -> np.ndarray:
    """A broadcastable constant with leading 1s up to `rank` (TFLite/XNNPACK broadcast same-rank shapes best)."""
    return value.reshape((1,) * (rank - value.ndim) + value.shape) if value.ndim < rank else value


def int_list(values) -> list[int]:
    return [int(v) for v in values]


def lift_1d(fn):
    """Let a 2-D NHWC lowering take 1-D data: (N, W, C) runs as (N, 1, W, C) with 1 x k windows, weights
    (O, I, k) as (O, I, 1, k), pads [b, e] as [0, b, 0, e]; RESHAPEs (free) around it."""

    @functools.wraps(fn)
    def lower(ctx: LowerCtx) -> None:
        shape = ctx.shape(0)
        if not ctx.nhwc or len(shape) != 3:
            return fn(ctx)
        g, node = ctx.g, ctx.node
        out = ctx.out_shape(0)
        x4, y4 = g.fresh(f"{node.inputs[0]}_2d"), g.fresh(f"{node.outputs[0]}_2d")
        g.shapes[x4], g.dtypes[x4] = (shape[0], 1, shape[1], shape[2]), ctx.dtype(0)
        g.shapes[y4], g.dtypes[y4] = (out[0], 1, out[1], out[2]), ctx.out_dtype(0)
        attrs = dict(node.attrs)
        for key, unit in (("kernel_shape", 1), ("strides", 1), ("dilations", 1), ("output_padding", 0),
                          ("output_shape", 1)):
            if key in attrs:
                attrs[key] = [unit, *attrs[key]]
        if "pads" in attrs:
            attrs["pads"] = [0, attrs["pads"][0], 0, attrs["pads"][1]]
        inputs = [x4, *node.inputs[1:]]
        if node.op in ("Conv", "ConvTranspose") and len(inputs) > 1 and inputs[1] in g.consts:
            w = g.consts[inputs[1]]
            inputs[1] = g.fresh(f"{inputs[1]}_2d")
            g.consts[inputs[1]] = w.reshape(w.shape[:2] + (1,) + w.shape[2:])
            g.shapes[inputs[1]], g.dtypes[inputs[1]] = g.consts[inputs[1]].shape, w.dtype
        inner = LowerCtx(g, ctx.b, ctx._tensors, Node(node.op, node.name, inputs, [y4, *node.outputs[1:]], attrs, True))
        ctx._tensors[x4] = ctx.temp(g.shapes[x4], ctx.dtype(0), "as_2d")
        ctx.emit("RESHAPE", [ctx.input(0), ctx.constant(np.array(g.shapes[x4], np.int32), "shape_2d")], [ctx._tensors[x4]])
        fn(inner)
        ctx.emit("RESHAPE", [inner.output(0), ctx.constant(np.array(out, np.int32), "shape_1d")], [ctx.output(0)])

    return lower


def const_output(ctx: LowerCtx, j: int, value: np.ndarray) -> None:
    """Output j is known at build time: later nodes read it as a constant (so Shape -> Reshape folds); a
    graph output gets its own tensor, a RESHAPE copy of the constant."""
    name = ctx.node.outputs[j]
    value = np.asarray(value, dtype=ctx.out_dtype(j))
    if value.size == 0:
        ctx.unsupported("the result is empty (TFLite tensors cannot have a zero dimension)")
    if name in ctx.g.outputs:
        ctx.emit("RESHAPE", [ctx.constant(value, "value"), ctx.constant(np.array(value.shape, np.int32), "shape")],
                 [ctx.output(j)])
    else:
        ctx.g.consts[name], ctx.g.shapes[name], ctx.g.dtypes[name] = value, value.shape, value.dtype
