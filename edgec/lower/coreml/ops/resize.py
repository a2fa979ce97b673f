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
    native = _native_why(n)
    if native is None or need_shape(n, 0) or any(need_const(n, i, "x") for i in range(1, len(n.inputs))):
        return native
    general = _separable_plan(n)
    return general if isinstance(general, str) else None


def _native_why(n: NodeView) -> str | None:
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
    """upsample_nearest_neighbor (integer factors) / resize_bilinear (sampling mode per coordinate mode); any other
    mode, scale or axis as one constant interpolation matrix per resized axis (matmul), ONNX's reference weights"""
    if _native_why(n) is not None:
        return _separable(n, env)
    out_h, out_w, sh, sw = _plan(n)
    x = env.var(n, 0)
    if n.attr("mode", "nearest") == "nearest":
        return mb.upsample_nearest_neighbor(x=x, scale_factor_height=np.int32(sh), scale_factor_width=np.int32(sw),
                                            name=env.out(n))
    ctm = n.attr("coordinate_transformation_mode", "half_pixel" if n.graph.opset >= 11 else "asymmetric")
    return mb.resize_bilinear(x=x, target_size_height=np.int32(out_h), target_size_width=np.int32(out_w),
                              sampling_mode=_LINEAR_MODES[ctm], name=env.out(n))



# --- every other Resize: separable, one [out, in] weight matrix per axis -------------------------------------------

def _coeff_fn(n: NodeView):
    from onnx.reference.ops import op_resize as ref

    mode = n.attr("mode", "nearest")
    antialias = bool(n.attr("antialias", 0))
    if mode == "nearest":
        nearest = n.attr("nearest_mode", "round_prefer_floor")
        return lambda x, scale: ref._nearest_coeffs(x, mode=nearest)
    if mode == "cubic":
        a = float(n.attr("cubic_coeff_a", -0.75))
        fn = ref._cubic_coeffs_antialias if antialias else ref._cubic_coeffs
        return lambda x, scale: fn(x, scale, A=a)
    return ref._linear_coeffs_antialias if antialias else ref._linear_coeffs


def _separable_plan(n: NodeView):
    """[(axis, weights^T [in, out], bias [out] or None)] or why not."""
    shape = n.shape(0)
    rank = len(shape)
    if n.dtype(0) not in (1, 10, None):  # FLOAT, FLOAT16
        return "non-float input (the general Resize is a float matmul)"
    mode = n.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic"):
        return f"mode={mode}"
    if mode == "nearest" and n.attr("antialias", 0):
        return "antialias with mode=nearest is not defined"
    try:
        from onnx.reference.ops import op_resize as ref

        along = ref._interpolate_1d_along_axis
    except (ImportError, AttributeError):
        return "this onnx package has no reference Resize to take the weights from"
    opset = n.graph.opset
    scales_i, sizes_i = (1, None) if opset < 11 else (2, 3)
    axes = n.attr("axes")
    axes = [a + rank if a < 0 else a for a in axes] if axes else list(range(rank))
    sizes = n.const(sizes_i) if sizes_i is not None and n.has(sizes_i) else None
    scales = n.const(scales_i) if n.has(scales_i) else None
    if sizes is not None and sizes.size:
        factor = {a: int(s) / shape[a] for a, s in zip(axes, sizes.tolist())}
        out = {a: int(s) for a, s in zip(axes, sizes.tolist())}
        policy = n.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            one = (min if policy == "not_larger" else max)(factor.values())
            factor = {a: one for a in axes}
            out = {a: int(one * shape[a] + 0.5) for a in axes}
    elif scales is not None and scales.size:
        factor = {a: float(s) for a, s in zip(axes, scales.tolist())}
        out = {a: int(f * shape[a]) for a, f in factor.items()}
    else:
        return "neither scales nor sizes given"
    expected = n.out_shape(0)
    final = [out.get(a, shape[a]) for a in range(rank)]
    if expected is not None and list(expected) != final:
        return f"output shape {final} differs from the model's {list(expected)}"
    ctm = n.attr("coordinate_transformation_mode", "half_pixel" if opset >= 11 else "asymmetric")
    roi = n.const(1) if n.has(1) and opset >= 11 else None
    roi = None if roi is None or roi.size == 0 or ctm != "tf_crop_and_resize" else roi.reshape(-1).tolist()
    fct = _coeff_fn(n)
    plan = []
    extra = float(n.attr("extrapolation_value", 0.0))
    for k, a in enumerate(axes):
        axis_roi = None if roi is None else [roi[k], roi[len(axes) + k]]
        if (math.isclose(factor[a], 1.0) and out[a] == shape[a]
                and (axis_roi is None or (math.isclose(axis_roi[0], 0.0) and math.isclose(axis_roi[1], 1.0)))):
            continue
        kw = dict(roi=axis_roi, extrapolation_value=extra, coordinate_transformation_mode=ctm,
                  exclude_outside=bool(n.attr("exclude_outside", 0)))
        bias = along(np.zeros((1, shape[a])), 1, factor[a], out[a], fct, **kw)[0]
        weights = along(np.eye(shape[a]), 1, factor[a], out[a], fct, **kw) - bias
        plan.append((a, weights, bias if np.any(bias) else None))
    if sum(b is not None for _, _, b in plan) > 1:
        return "tf_crop_and_resize extrapolating on more than one axis is not separable"
    if any(b is not None for _, _, b in plan) and len(plan) > 1:
        return "tf_crop_and_resize extrapolation with more than one resized axis is not separable"
    return plan


def _separable(n: NodeView, env: Env):
    x = env.var(n, 0)
    dtype = np.float16 if n.dtype(0) == 10 else np.float32
    rank = len(n.shape(0))
    plan = _separable_plan(n)
    if not plan:
        return mb.identity(x=x, name=env.out(n))
    for k, (a, wt, bias) in enumerate(plan):
        last = k == len(plan) - 1
        name = env.out(n) if last and bias is None else env.tmp(n, f"axis{a}")
        if a == rank - 1:
            x = mb.matmul(x=x, y=wt.astype(dtype), name=name)
        elif a == rank - 2:
            x = mb.matmul(x=np.ascontiguousarray(wt.T).astype(dtype), y=x, name=name)
        else:
            perm = [i for i in range(rank) if i != a] + [a]
            inv = [perm.index(i) for i in range(rank)]
            x = mb.transpose(x=x, perm=np.array(perm, np.int32), name=env.tmp(n, f"to{a}"))
            x = mb.matmul(x=x, y=wt.astype(dtype), name=env.tmp(n, f"mm{a}"))
            x = mb.transpose(x=x, perm=np.array(inv, np.int32), name=name)
        if bias is not None:
            shape = [1] * rank
            shape[a] = bias.size
            x = mb.add(x=x, y=bias.reshape(shape).astype(dtype), name=env.out(n) if last else env.tmp(n, f"b{a}"))
    return x


def _as_resize(n: NodeView) -> NodeView:
    """Upsample (opset 7-9) is Resize with asymmetric coordinates and, for nearest, the floor of i / scale."""
    n.attrs.setdefault("coordinate_transformation_mode", "asymmetric")
    n.attrs.setdefault("nearest_mode", "floor")
    return n


@lowers("Upsample", check=lambda n: _check_resize(_as_resize(n)))
def upsample(n: NodeView, env: Env):
    """as Resize (scales input; asymmetric coordinates, nearest rounds down)"""
    return resize(_as_resize(n), env)
