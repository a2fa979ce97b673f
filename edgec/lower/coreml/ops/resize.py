"""Resize (nearest: integer upsampling; linear: the four common coordinate modes) on the last two axes."""

from __future__ import annotations

import math

import numpy as np
from coremltools.converters.mil.mil import Builder as mb

from edgec.lower.coreml.ops._util import need_const, need_shape
from edgec.lower.coreml.registry import Env, NodeView, lowers

# ONNX coordinate_transformation_mode -> resize_bilinear sampling_mode with the same grid
_LINEAR_MODES = {
    "half_pixel": "UNALIGN_CORNERS",
    "pytorch_half_pixel": "UNALIGN_CORNERS",  # equal to half_pixel while the output size is > 1
    "align_corners": "STRICT_ALIGN_CORNERS",
    "asymmetric": "DEFAULT",
}


def _plan(n: NodeView):
    """(out_h, out_w, scale_h, scale_w) or a reason string."""
    shape = n.shape(0)
    rank = len(shape)
    scales_i, sizes_i = (1, None) if n.graph.opset < 11 else (2, 3)
    axes = n.attr("axes")
    axes = [a + rank if a < 0 else a for a in axes] if axes else list(range(rank))
    out = list(shape)
    scale = [1.0] * rank
    sizes = n.const(sizes_i) if sizes_i is not None and n.has(sizes_i) else None
    scales = n.const(scales_i) if n.has(scales_i) else None
    if sizes is not None and sizes.size:
        for a, s in zip(axes, sizes.tolist()):
            out[a], scale[a] = int(s), int(s) / shape[a]
    elif scales is not None and scales.size:
        for a, s in zip(axes, scales.tolist()):
            out[a], scale[a] = int(math.floor(shape[a] * s)), float(s)
    else:
        return "neither scales nor sizes given"
    if out[:-2] != shape[:-2]:
        return f"resizes axes other than the last two ({shape} -> {out})"
    for a in (rank - 2, rank - 1):
        if not math.isclose(scale[a] * shape[a], out[a], rel_tol=1e-6):
            return f"scale {scale[a]} gives a fractional size on axis {a} (CoreML recomputes the scale from the size)"
    return out[-2], out[-1], scale[-2], scale[-1]


def _check_resize(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    for i in range(1, len(n.inputs)):
        why = need_const(n, i, ["", "roi/scales", "scales", "sizes"][i])
        if why:
            return why
    if not 3 <= len(n.shape(0)) <= 5:
        return f"input rank {len(n.shape(0))}"
    plan = _plan(n)
    if isinstance(plan, str):
        return plan
    out_h, out_w, sh, sw = plan
    mode = n.attr("mode", "nearest")
    ctm = n.attr("coordinate_transformation_mode", "half_pixel" if n.graph.opset >= 11 else "asymmetric")
    if n.attr("antialias", 0) and (sh < 1 or sw < 1):
        return "antialias=1 when downscaling"
    if n.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        return f"keep_aspect_ratio_policy={n.attr('keep_aspect_ratio_policy')}"
    if mode == "linear":
        if ctm not in _LINEAR_MODES:
            return f"linear with coordinate_transformation_mode={ctm}"
        if ctm == "pytorch_half_pixel" and min(out_h, out_w) == 1:
            return "pytorch_half_pixel with an output size of 1"
        return None
    if mode == "nearest":
        if not (float(sh).is_integer() and float(sw).is_integer() and sh >= 1 and sw >= 1):
            return f"nearest with non-integer upscale ({sh}, {sw}); only integer upsampling is lowered"
        nearest = n.attr("nearest_mode", "round_prefer_floor")
        # for integer upscale, these pairs all pick source pixel floor(i / scale)
        if ctm == "asymmetric" and nearest == "floor":
            return None
        if ctm in ("half_pixel", "pytorch_half_pixel") and nearest in ("round_prefer_floor", "round_prefer_ceil"):
            return None
        return f"nearest with coordinate_transformation_mode={ctm}, nearest_mode={nearest}"
    return f"mode={mode} (nearest and linear are lowered)"


@lowers("Resize", check=_check_resize)
def resize(n: NodeView, env: Env):
    """upsample_nearest_neighbor (integer factors) / resize_bilinear (sampling mode per coordinate mode)"""
    out_h, out_w, sh, sw = _plan(n)
    x = env.var(n, 0)
    if n.attr("mode", "nearest") == "nearest":
        return mb.upsample_nearest_neighbor(x=x, scale_factor_height=np.int32(sh), scale_factor_width=np.int32(sw),
                                            name=env.out(n))
    ctm = n.attr("coordinate_transformation_mode", "half_pixel" if n.graph.opset >= 11 else "asymmetric")
    return mb.resize_bilinear(x=x, target_size_height=np.int32(out_h), target_size_width=np.int32(out_w),
                              sampling_mode=_LINEAR_MODES[ctm], name=env.out(n))
