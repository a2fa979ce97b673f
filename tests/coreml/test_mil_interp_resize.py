"""Resize / upsample / space-depth ops vs ONNX Runtime Resize / DepthToSpace / SpaceToDepth, and the
sampling grids vs the tables printed in coremltools' resize_bilinear docstring."""

from __future__ import annotations

import numpy as np
import pytest

import coremltools as ct

from edgec.runtimes.mil_ops.image import grid

from .mil_interp_helpers import mb, interp, onnx_ref, rand

# (mode, n_out) -> grid for n_in = 2, copied from iOS15 resize_bilinear's docstring
DOC_GRIDS = {
    ("UNALIGN_CORNERS", 5): [0.0, 0.1, 0.5, 0.9, 1.0],
    ("STRICT_ALIGN_CORNERS", 5): [0.0, 0.25, 0.5, 0.75, 1.0],
    ("ALIGN_CORNERS", 5): [0.0, 0.25, 0.5, 0.75, 1.0],
    ("DEFAULT", 5): [0.0, 0.4, 0.8, 1.0, 1.0],
    ("OFFSET_CORNERS", 5): [0.1, 0.3, 0.5, 0.7, 0.9],
    ("UNALIGN_CORNERS", 6): [0.0, 0.0, 0.33, 0.67, 1.0, 1.0],
    ("STRICT_ALIGN_CORNERS", 6): [0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
    ("DEFAULT", 6): [0.0, 0.33, 0.67, 1.0, 1.0, 1.0],
    ("OFFSET_CORNERS", 6): [0.08, 0.25, 0.42, 0.58, 0.75, 0.92],
}


@pytest.mark.parametrize("mode,n_out", list(DOC_GRIDS))
def test_sampling_grid_matches_op_docs(mode, n_out):
    np.testing.assert_allclose(grid(2, n_out, mode), DOC_GRIDS[(mode, n_out)], atol=0.005)


def _resize_ref(x, out_hw, mode, transform, nearest_mode=None):
    attrs = {"mode": mode, "coordinate_transformation_mode": transform}
    if nearest_mode:
        attrs["nearest_mode"] = nearest_mode
    sizes = np.array(list(x.shape[:2]) + list(out_hw), dtype=np.int64)
    (y,) = onnx_ref("Resize", {"x": x}, attrs, {"sizes": sizes}, node_inputs=["x", "", "", "sizes"])
    return y


# MIL sampling_mode -> ONNX coordinate_transformation_mode (linear modes clamp to the edge in both)
_ONNX_TRANSFORM = {"STRICT_ALIGN_CORNERS": "align_corners", "DEFAULT": "asymmetric",
                   "UNALIGN_CORNERS": "half_pixel"}


@pytest.mark.parametrize("mode", list(_ONNX_TRANSFORM))
@pytest.mark.parametrize("out_hw", [(11, 7), (3, 4)])
def test_resize_bilinear_matches_onnxruntime(mode, out_hw, tmp_path):
    x = rand(1, 2, 5, 6, seed=1)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x):
        return mb.resize_bilinear(x=x, target_size_height=out_hw[0], target_size_width=out_hw[1], sampling_mode=mode)

    (got,), runner = interp(prog, {"x": x}, tmp_path)
    assert "resize_bilinear" in runner.op_types
    np.testing.assert_allclose(got, _resize_ref(x, out_hw, "linear", _ONNX_TRANSFORM[mode]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("align,half,transform", [(True, None, "align_corners"), (False, None, "half_pixel"),
                                                  (False, False, "asymmetric")])
@pytest.mark.parametrize("scale", [2.0, 1.5])
def test_upsample_bilinear_matches_onnxruntime(align, half, transform, scale, tmp_path):
    x = rand(1, 3, 4, 5, seed=2)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS16)
    def prog(x):
        kw = {} if half is None else {"half_pixel_centers": half}
        return mb.upsample_bilinear(x=x, scale_factor_height=scale, scale_factor_width=scale, align_corners=align, **kw)

    (got,), runner = interp(prog, {"x": x}, tmp_path)
    assert "upsample_bilinear" in runner.op_types
    out_hw = (int(4 * scale), int(5 * scale))
    np.testing.assert_allclose(got, _resize_ref(x, out_hw, "linear", transform), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3])
def test_upsample_nearest_matches_onnxruntime(scale, tmp_path):
    x = rand(1, 2, 3, 4, seed=3)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x):
        return mb.upsample_nearest_neighbor(x=x, scale_factor_height=scale, scale_factor_width=scale)

    (got,), _ = interp(prog, {"x": x}, tmp_path)
    want = _resize_ref(x, (3 * scale, 4 * scale), "nearest", "asymmetric", "floor")
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("out_hw", [(7, 10), (2, 3)])
def test_resize_nearest_is_tf_half_pixel(out_hw, tmp_path):
    x = rand(1, 2, 5, 6, seed=4)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x):
        return mb.resize_nearest_neighbor(x=x, target_size_height=out_hw[0], target_size_width=out_hw[1])

    (got,), _ = interp(prog, {"x": x}, tmp_path)
    np.testing.assert_array_equal(got, _resize_ref(x, out_hw, "nearest", "tf_half_pixel_for_nn", "floor"))


def test_ios17_resize_linear(tmp_path):
    x = rand(1, 2, 5, 6, seed=5)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.resize(x=x, shape=np.array([9, 4], dtype=np.int32), resized_dims=np.uint32(2),
                         interpolation_mode="LINEAR", sampling_mode="UNALIGN_CORNERS")

    (got,), runner = interp(prog, {"x": x}, tmp_path, target=ct.target.iOS17)
    assert "resize" in runner.op_types
    np.testing.assert_allclose(got, _resize_ref(x, (9, 4), "linear", "half_pixel"), rtol=1e-5, atol=1e-5)


def test_depth_space_pixel_shuffle(tmp_path):
    x = rand(1, 8, 3, 4, seed=6)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x):
        d2s = mb.depth_to_space(x=x, block_size=2)
        ps = mb.pixel_shuffle(x=x, upscale_factor=2)
        s2d = mb.space_to_depth(x=mb.relu(x=d2s), block_size=2)
        return d2s, ps, s2d

    (d2s, ps, s2d), _ = interp(prog, {"x": x}, tmp_path)
    (want_dcr,) = onnx_ref("DepthToSpace", {"x": x}, {"blocksize": 2, "mode": "DCR"})
    (want_crd,) = onnx_ref("DepthToSpace", {"x": x}, {"blocksize": 2, "mode": "CRD"})
    (want_s2d,) = onnx_ref("SpaceToDepth", {"x": np.maximum(want_dcr, 0)}, {"blocksize": 2})
    np.testing.assert_array_equal(d2s, want_dcr)
    np.testing.assert_array_equal(ps, want_crd)
    np.testing.assert_array_equal(s2d, want_s2d)
