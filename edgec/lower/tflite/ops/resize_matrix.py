"""Resize as separable linear maps: out = A_h . x . A_w^T with constant interpolation matrices.

Every ONNX Resize mode on static shapes (cubic, linear with antialias, tf_crop_and_resize, any nearest
rounding) is linear in the input and separable per axis, so each axis's matrix is ONNX's own reference
Resize applied to the basis vectors of that axis (the axis resized, a basis axis next to it kept at scale 1):
the lowering reproduces the spec's sampling by construction. Two BATCH_MATMULs with a constant left side run
it on NHWC data. tf_crop_and_resize's extrapolation_value fills the out-of-roi positions with a SELECT_V2.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from edgec.lower.tflite.registry import LowerCtx

_ATTRS = ("mode", "coordinate_transformation_mode", "cubic_coeff_a", "exclude_outside", "nearest_mode",
          "antialias", "keep_aspect_ratio_policy")
_MAX = 4096  # matrices are size_out x size_in floats per axis


def _axis_matrix(attrs: dict, opset: int, n: int, m: int, scale: float | None, roi: tuple | None,
                 extrapolation: float) -> np.ndarray:
    """(m, n): column j is the reference Resize of basis vector e_j along one axis."""
    from onnx.reference import ReferenceEvaluator

    node_attrs = {k: v for k, v in attrs.items() if k in _ATTRS}
    node_attrs.pop("keep_aspect_ratio_policy", None)  # per axis the scale is already the effective one
    node_attrs["extrapolation_value"] = float(extrapolation)
    # roi of the (basis, axis) pair: [start0, start1, end0, end1]
    inits = [numpy_helper.from_array(np.array([0, roi[0], 1, roi[1]] if roi else [], np.float32), "roi")]
    if scale is not None:
        inits.append(numpy_helper.from_array(np.array([1.0, scale], np.float32), "scales"))
        ins = ["x", "roi", "scales"]
    else:
        inits.append(numpy_helper.from_array(np.array([n, m], np.int64), "sizes"))
        ins = ["x", "roi", "", "sizes"]
    node = helper.make_node("Resize", ins, ["y"], **node_attrs)
    graph = helper.make_graph([node], "axis", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", max(opset, 11))])
    y = ReferenceEvaluator(model).run(None, {"x": np.eye(n, dtype=np.float32)})[0]
    return np.ascontiguousarray(np.asarray(y, np.float32).T)  # rows: outputs, columns: basis inputs


def _given(ctx: LowerCtx, i: int):
    if not ctx.has_input(i):
        return None
    v = ctx.const(i)
    if v is None:
        ctx.unsupported(f"input '{ctx.node.inputs[i]}' must be a constant")
    return np.asarray(v).reshape(-1) if v.size else None


def resize_by_matrices(ctx: LowerCtx, shape, out, why_native: str) -> None:
    """NHWC (N, H, W, C) -> (N, Ho, Wo, C) with constant per-axis matrices; `why_native` is kept in the
    refusal when this path cannot take the node either."""
    if ctx.node.op != "Resize" or ctx.opset < 11:
        ctx.unsupported(why_native)
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"{why_native}; dtype {ctx.dtype(0)}")
    attrs = dict(ctx.node.attrs)
    coord = attrs.get("coordinate_transformation_mode", "half_pixel")
    rank = 4
    axes = [int(a) + rank if int(a) < 0 else int(a) for a in attrs.get("axes", range(rank))]
    roi, scales, sizes = _given(ctx, 1), _given(ctx, 2), _given(ctx, 3)
    if attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        if sizes is None:
            ctx.unsupported(why_native)
        # the reference's effective scale: one for all resized axes
        ratios = [float(sizes[k]) / (shape[3] if a == 1 else shape[1] if a == 2 else shape[2] if a == 3 else shape[0])
                  for k, a in enumerate(axes)]
        common = min(ratios) if attrs["keep_aspect_ratio_policy"] == "not_larger" else max(ratios)
        scales, sizes = np.array([common if a in (2, 3) else 1.0 for a in axes], np.float32), None
    extrap = float(attrs.get("extrapolation_value", 0.0))
    nchw_in, nchw_out = (shape[0], shape[3], shape[1], shape[2]), (out[0], out[3], out[1], out[2])
    mats, masks = [], []
    for d in (2, 3):  # ONNX H, W
        k = axes.index(d) if d in axes else None
        n, m = nchw_in[d], nchw_out[d]
        if n * m > _MAX * 64:
            ctx.unsupported(f"{why_native}; the {n} -> {m} interpolation matrix is too large")
        r = (float(roi[k]), float(roi[len(axes) + k])) if coord == "tf_crop_and_resize" and roi is not None and k is not None else None
        if coord == "tf_crop_and_resize" and r is None:
            r = (0.0, 1.0)
        sc = float(scales[k]) if scales is not None and k is not None else (1.0 if scales is not None else None)
        if coord == "align_corners" and sc is not None and abs(n * sc - m) > 1e-6:
            # ONNX Runtime divides by n*scale - 1, ONNX's reference by m - 1: no one right answer to match
            ctx.unsupported(f"{why_native}; align_corners with scale {sc:g} ({n} -> {m} is not a whole scale)")
        try:
            a = _axis_matrix(attrs, ctx.opset, n, m, sc, r, 0.0)
            hit = _axis_matrix(attrs, ctx.opset, n, m, sc, r, 1.0) if coord == "tf_crop_and_resize" else None
        except Exception as e:  # noqa: BLE001  (the reference refuses the attribute mix: so do we)
            ctx.unsupported(f"{why_native}; ONNX's reference cannot resize one axis alone ({type(e).__name__})")
        if a.shape != (m, n):
            ctx.unsupported(f"{why_native}; per-axis sampling gives {a.shape[0]} values, the output has {m}")
        mats.append(a)
        # an extrapolated output is the extrapolation value (1 here) whatever the input: hit - a is 1 there
        masks.append(None if hit is None else (hit - a).max(axis=1) > 0.5)
    N, H, W, C = shape
    Ho, Wo = out[1], out[2]
    x = ctx.input(0)
    cur = x
    if not (W == Wo and np.array_equal(mats[1], np.eye(W, dtype=np.float32))):
        rows = ctx.temp((N * H, W, C), tag="rows")
        ctx.emit("RESHAPE", [cur, ctx.constant(np.array([N * H, W, C], np.int32), "rows_shape")], [rows])
        t = ctx.temp((N * H, Wo, C), tag="resized_w")
        ctx.emit("BATCH_MATMUL", [ctx.constant(mats[1][None], "a_w"), rows], [t])
        cur, W = t, Wo
    if not (H == Ho and np.array_equal(mats[0], np.eye(H, dtype=np.float32))):
        cols = ctx.temp((N, H, W * C), tag="cols")
        ctx.emit("RESHAPE", [cur, ctx.constant(np.array([N, H, W * C], np.int32), "cols_shape")], [cols])
        t = ctx.temp((N, Ho, W * C), tag="resized_h")
        ctx.emit("BATCH_MATMUL", [ctx.constant(mats[0][None], "a_h"), cols], [t])
        cur = t
    fill = None
    if extrap != 0.0 and any(mk is not None and mk.any() for mk in masks):
        mh = masks[0] if masks[0] is not None else np.zeros(Ho, bool)
        mw = masks[1] if masks[1] is not None else np.zeros(Wo, bool)
        fill = (mh[:, None] | mw[None, :]).reshape(1, Ho, Wo, 1)
    if fill is None:
        return ctx.emit("RESHAPE", [cur, ctx.constant(np.array(out, np.int32), "out_shape")], [ctx.output(0)])
    y = ctx.temp(out, tag="resized")
    ctx.emit("RESHAPE", [cur, ctx.constant(np.array(out, np.int32), "out_shape")], [y])
    ctx.emit("SELECT_V2", [ctx.constant(fill, "extrapolated"), ctx.constant(np.full((1, 1, 1, 1), extrap, np.float32),
                                                                             "extrapolation"), y], [ctx.output(0)])
