"""ONNX node tests through the TFLite backend (LiteRT): cases that must pass, and honest refusals."""

from __future__ import annotations

import pytest

from edgec import conformance as conf

MUST_PASS = {
    "Relu": ["test_relu"],
    "Conv": ["test_conv_with_strides_padding", "test_basic_conv_with_padding"],
    "Add": ["test_add_bcast"],
    "Resize": ["test_resize_upsample_scales_nearest", "test_resize_upsample_scales_linear",
               "test_resize_upsample_scales_linear_align_corners", "test_resize_downsample_scales_nearest",
               # not TFLite's own resize kernels: constant interpolation matrices (resize_matrix.py)
               "test_resize_upsample_scales_cubic", "test_resize_tf_crop_and_resize",
               "test_resize_upsample_sizes_nearest_not_larger", "test_resize_downsample_scales_linear_antialias"],
    "DepthToSpace": ["test_depthtospace_example", "test_depthtospace_crd_mode_example"],
    "SpaceToDepth": ["test_spacetodepth_example"],
    "ReduceMean": ["test_reduce_mean_keepdims_random", "test_reduce_mean_do_not_keepdims_random"],
    "ReduceSum": ["test_reduce_sum_keepdims_random"],
    "ReduceMax": ["test_reduce_max_do_not_keepdims_random"],
    "ArgMax": ["test_argmax_keepdims_random", "test_argmax_negative_axis_keepdims_random",
               "test_argmax_keepdims_example_select_last_index", "test_argmax_no_keepdims_random_select_last_index"],
    "Slice": ["test_slice", "test_slice_neg_steps", "test_slice_end_out_of_bounds"],
    "Split": ["test_split_variable_parts_2d_opset18", "test_split_equal_parts_1d_opset13"],
    "Gather": ["test_gather_1", "test_gather_negative_indices"],
    "Pad": ["test_constant_pad", "test_reflect_pad", "test_edge_pad"],
    "LayerNormalization": ["test_layer_normalization_4d_axis1", "test_layer_normalization_3d_axis_negative_2_epsilon"],
    "Cast": ["test_cast_FLOAT_to_FLOAT16"],
    "LogSoftmax": ["test_logsoftmax_axis_2"],
    "Gelu": ["test_gelu_default_2", "test_gelu_tanh_2"],
    "Erf": ["test_erf"],
}
MUST_REFUSE = {
    "test_resize_downsample_sizes_nearest_not_smaller": "keep_aspect_ratio_policy='not_smaller'",
    "test_cast_FLOAT_to_FLOAT8E4M3FN": "to=FLOAT8E4M3FN",
    "test_attention_4d_fp16": "float16",
}


@pytest.fixture(scope="module")
def results():
    names = [n for ns in MUST_PASS.values() for n in ns] + list(MUST_REFUSE)
    ops = set(MUST_PASS) | {"Cast", "Attention"}
    return {r.name: r for r in conf.run("tflite", ops=sorted(ops), names=names)}


@pytest.mark.parametrize("name", [n for ns in MUST_PASS.values() for n in ns])
def test_must_pass(results, name):
    assert name in results, f"{name} was not selected (op missing from the TFLite op table?)"
    r = results[name]
    assert r.outcome == "pass", (r.outcome, r.detail)
    assert r.ran_on.startswith("litert")


@pytest.mark.parametrize("name,needle", sorted(MUST_REFUSE.items()))
def test_refused_with_reason(results, name, needle):
    r = results[name]
    assert r.outcome == "unsupported", (r.outcome, r.detail)
    assert needle in r.detail
