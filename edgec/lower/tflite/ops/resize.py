"""Spatial resampling on NHWC data: Resize / Upsample (RESIZE_NEAREST_NEIGHBOR, RESIZE_BILINEAR),
DepthToSpace, SpaceToDepth (DEPTH_TO_SPACE / SPACE_TO_DEPTH, + a channel GATHER for CRD order).

TFLite resizes only H and W and derives its scale from the sizes; ONNX may use a given scale. So each
case is checked: nearest by comparing the exact source-index maps of ONNX and of each TFLite flag
setting, linear by the coordinate mode. Anything else is an UnsupportedOp naming the attribute.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.ops.resize_matrix import resize_by_matrices
from edgec.lower.tflite.registry import LowerCtx, Unsupported, lowers

# TFLite flags (align_corners, half_pixel_centers) per ONNX coordinate_transformation_mode, for linear
_LINEAR_FLAGS = {"half_pixel": (False, True), "pytorch_half_pixel": (False, True),
                 "align_corners": (True, False), "asymmetric": (False, False)}
_ROUND = {
    "round_prefer_floor": lambda v: np.ceil(v - 0.5),
    "round_prefer_ceil": lambda v: np.floor(v + 0.5),
    "floor": np.floor,
    "ceil": np.ceil,
}


def onnx_coords(mode: str, out: int, size: int, scale: float) -> np.ndarray:
    """ONNX's source coordinate of every output index along one axis (scale = out / in as ONNX uses it)."""
    x = np.arange(out, dtype=np.float32)
    s = np.float32(scale)
    if mode == "half_pixel":
        return (x + np.float32(0.5)) / s - np.float32(0.5)
    if mode == "pytorch_half_pixel":
        return (x + np.float32(0.5)) / s - np.float32(0.5) if out > 1 else np.zeros(out, np.float32)
    if mode == "align_corners":  # ONNX divides by the unrounded resized length, size * scale
        return x * np.float32((size - 1) / (size * scale - 1)) if out > 1 else np.zeros(out, np.float32)
    if mode == "asymmetric":
        return x / s
    raise ValueError(mode)


def onnx_nearest(mode: str, nearest: str, out: int, size: int, scale: float) -> np.ndarray:
    return np.clip(_ROUND[nearest](onnx_coords(mode, out, size, scale)), 0, size - 1).astype(np.int64)


def tflite_nearest(align: bool, half: bool, out: int, size: int) -> np.ndarray:
    """LiteRT's reference GetNearestNeighbor (resize_nearest_neighbor.h), in float32 like the kernel."""
    x = np.arange(out, dtype=np.float32)
    scale = np.float32((size - 1) / (out - 1)) if align and out > 1 else np.float32(size / out)
    v = (x + np.float32(0.5 if half else 0.0)) * scale
    idx = np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5)) if align else np.floor(v)
    return np.clip(idx, 0, size - 1).astype(np.int64)


def _scales(ctx: LowerCtx, rank: int, in_shape, out_shape) -> list[float]:
    """ONNX's scale per axis: the given `scales` (they drive the coordinate transform), else out / in."""
    if ctx.node.op == "Upsample":
        given = ctx.attr("scales") if ctx.opset < 9 else ctx.const(1)
    else:
        idx = 1 if ctx.opset < 11 else 2
        given = ctx.const(idx) if ctx.has_input(idx) else None
        if ctx.has_input(idx) and given is None:
            ctx.unsupported(f"scales (input '{ctx.node.inputs[idx]}') must be a constant")
    if given is None or not np.asarray(given).size:
        return [o / i for o, i in zip(out_shape, in_shape)]
    given = [float(v) for v in np.asarray(given).reshape(-1)]
    axes = ctx.attr("axes")
    if axes is not None:
        full = [1.0] * rank
        for a, v in zip(axes, given):
            full[int(a) + rank if int(a) < 0 else int(a)] = v
        given = full
    return given


def _int8_modes(ctx: LowerCtx) -> str | None:
    return None if ctx.attr("mode", "nearest") in ("nearest", "linear") else "cubic: no int8 kernel"


@lowers("int8.Resize", check=_int8_modes, float_kernel=True, same_scale=True)
@lowers("Resize", "Upsample")
def resize(ctx: LowerCtx) -> None:
    """RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR over H, W (modes checked against ONNX's sampling grid); any
    other mode (cubic, antialias, tf_crop_and_resize, other nearest roundings...) as two BATCH_MATMULs with
    constant interpolation matrices."""
    shape, out = ctx.shape(0), ctx.out_shape(0)
    if not ctx.nhwc or len(shape) != 4:
        ctx.unsupported(f"rank-{len(shape)} input: TFLite resizes the H and W of 4-D NCHW data only")
    if shape[0] != out[0] or shape[3] != out[3]:
        ctx.unsupported("resizing the batch or channel axis")
    first = len(ctx.b.ops)
    try:
        _resize_native(ctx, shape, out)
    except Unsupported as native:
        del ctx.b.ops[first:]
        resize_by_matrices(ctx, shape, out, str(native))


def _resize_native(ctx: LowerCtx, shape, out) -> None:
    mode = ctx.attr("mode", "nearest")
    coord = ctx.attr("coordinate_transformation_mode", "half_pixel" if ctx.node.op == "Resize" and ctx.opset >= 11
                     else "asymmetric")
    # before opset 11 (Upsample, Resize-10) ONNX Runtime rounds down when upsampling, up when downsampling
    nearest = ctx.attr("nearest_mode", "round_prefer_floor" if ctx.node.op == "Resize" and ctx.opset >= 11
                       else "simple")
    if mode not in ("nearest", "linear", "bilinear"):
        ctx.unsupported(f"mode='{mode}' (nearest and linear are lowered)")
    if coord not in _LINEAR_FLAGS:
        ctx.unsupported(f"coordinate_transformation_mode='{coord}'")
    if ctx.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        ctx.unsupported(f"keep_aspect_ratio_policy='{ctx.attr('keep_aspect_ratio_policy')}'")
    nchw_in = (shape[0], shape[3], shape[1], shape[2])
    nchw_out = (out[0], out[3], out[1], out[2])
    scales = _scales(ctx, 4, nchw_in, nchw_out)
    hw = [(nchw_out[a], nchw_in[a], scales[a]) for a in (2, 3)]
    if int(ctx.attr("antialias", 0)) and any(o < i for o, i, _ in hw) and mode != "nearest":
        ctx.unsupported("antialias=1 when downsampling")
    if mode == "nearest":
        if nearest not in _ROUND and nearest != "simple":
            ctx.unsupported(f"nearest_mode='{nearest}'")
        want = [onnx_nearest(coord, nearest if nearest != "simple" else ("floor" if o >= i else "ceil"), o, i, s)
                for o, i, s in hw]
        flags = next((f for f in ((False, False), (False, True), (True, False))
                      if all(np.array_equal(w, tflite_nearest(*f, o, i)) for w, (o, i, _) in zip(want, hw))), None)
        if flags is None:
            ctx.unsupported(f"nearest_mode='{nearest}' with coordinate_transformation_mode='{coord}' picks "
                            f"source pixels no TFLite flag setting reproduces at {nchw_in[2:]} -> {nchw_out[2:]}")
        code, opts = "RESIZE_NEAREST_NEIGHBOR", S.ResizeNearestNeighborOptionsT()
    else:
        flags = _LINEAR_FLAGS[coord]
        if any(abs(s - o / i) > 1e-6 * (o / i) for o, i, s in hw):
            ctx.unsupported(f"scales {[s for _, _, s in hw]} do not equal output/input size "
                            f"(TFLite derives the scale from the sizes)")
        if coord == "pytorch_half_pixel" and any(o == 1 for o, _, _ in hw):
            ctx.unsupported("coordinate_transformation_mode='pytorch_half_pixel' with an output size of 1")
        code, opts = "RESIZE_BILINEAR", S.ResizeBilinearOptionsT()
    opts.alignCorners, opts.halfPixelCenters = flags
    size = ctx.constant(np.array([out[1], out[2]], np.int32), "size")
    ctx.emit(code, [ctx.input(0), size], [ctx.output(0)], opts, version=3 if any(flags) else 1)


def _crd_perm(channels: int, block: int) -> np.ndarray:
    """Channel order that turns CRD depth (c*b*b + i) into DCR depth (i*C' + c) for TFLite's DCR kernels."""
    cprime = channels // (block * block)
    return np.array([c * block * block + i for i in range(block * block) for c in range(cprime)], np.int32)


def _check_nhwc(ctx: LowerCtx) -> None:
    if not ctx.nhwc:
        ctx.unsupported(f"rank-{len(ctx.shape(0))} input (4-D only)")


@lowers("DepthToSpace")
def depth_to_space(ctx: LowerCtx) -> None:
    """DEPTH_TO_SPACE (DCR, TFLite's order); CRD first permutes the channels with a GATHER."""
    _check_nhwc(ctx)
    block, mode = int(ctx.attr("blocksize")), ctx.attr("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        ctx.unsupported(f"mode='{mode}'")
    x = ctx.input(0)
    if mode == "CRD":
        t = ctx.temp(ctx.shape(0), ctx.dtype(0), "dcr")
        opts = S.GatherOptionsT()
        opts.axis = 3
        ctx.emit("GATHER", [x, ctx.constant(_crd_perm(ctx.shape(0)[3], block), "crd_to_dcr")], [t], opts)
        x = t
    opts = S.DepthToSpaceOptionsT()
    opts.blockSize = block
    ctx.emit("DEPTH_TO_SPACE", [x], [ctx.output(0)], opts)


@lowers("SpaceToDepth")
def space_to_depth(ctx: LowerCtx) -> None:
    """SPACE_TO_DEPTH (DCR order, as ONNX's default); mode='CRD' (opset 24) permutes channels after."""
    _check_nhwc(ctx)
    block, mode = int(ctx.attr("blocksize")), ctx.attr("mode", "DCR")
    if mode not in ("DCR", "CRD"):
        ctx.unsupported(f"mode='{mode}'")
    opts = S.SpaceToDepthOptionsT()
    opts.blockSize = block
    if mode == "DCR":
        return ctx.emit("SPACE_TO_DEPTH", [ctx.input(0)], [ctx.output(0)], opts)
    out = ctx.out_shape(0)
    t = ctx.temp(out, ctx.dtype(0), "dcr")
    ctx.emit("SPACE_TO_DEPTH", [ctx.input(0)], [t], opts)
    # CRD depth c*b*b + i holds DCR depth i*C + c: gather with the inverse of the CRD->DCR order
    perm = _crd_perm(out[3], block)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.size, dtype=np.int32)
    g = S.GatherOptionsT()
    g.axis = 3
    ctx.emit("GATHER", [t, ctx.constant(inv, "dcr_to_crd")], [ctx.output(0)], g)
