"""Op breadth on TFLite: the families lowered for the node-test sweep (issue 17) and transformer blocks
(issue 18), each checked against ONNX Runtime on seeded inputs, plus a stratified sample of ONNX node tests
per family (their expected outputs are ONNX Runtime's)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec import conformance as conf
from edgec.lower.tflite.convert import convert
from edgec.runtimes.host_litert import LiteRTRunner

# two or three node tests per family lowered here (all of them pass in the full sweep, bench/conformance.py)
NODE_TESTS = {
    "Equal": ["test_equal_bcast", "test_equal_int8"], "Less": ["test_less_uint8"], "Not": ["test_not_3d"],
    "And": ["test_and_bcast4v4d"], "Xor": ["test_xor_bcast3v1d"], "Where": ["test_where_long_example"],
    "IsInf": ["test_isinf_negative"], "Asinh": ["test_asinh"], "Softplus": ["test_softplus"],
    "Shrink": ["test_shrink_soft"], "Mish": ["test_mish"],
    "Shape": ["test_shape_start_negative_1", "test_shape_end_1"], "ConstantOfShape": ["test_constantofshape_int_zeros"],
    "Range": ["test_range_int32_type_negative_delta"], "Expand": ["test_expand_dim_changed"],
    "Tile": ["test_tile_precomputed"], "OneHot": ["test_onehot_negative_indices"], "EyeLike": ["test_eyelike_with_dtype"],
    "Attention": ["test_attention_3d_gqa_causal", "test_attention_4d_attn_mask_bool",
                  "test_attention_4d_with_past_and_present_qk_matmul_bias",
                  "test_attention_4d_gqa_causal_nonpad_decode"],
    "RMSNormalization": ["test_rms_normalization_4d_axis1"], "GroupNormalization": ["test_group_normalization_example"],
    "InstanceNormalization": ["test_instancenorm_epsilon"], "LpNormalization": ["test_l2normalization_axis_0"],
    "Mod": ["test_mod_mixed_sign_float32", "test_mod_int64_fmod", "test_mod_uint8"],
    "BitShift": ["test_bitshift_right_int8_negative_input", "test_bitshift_left_int32_overflow",
                 "test_bitshift_right_int32_shift_ge_width"],
    "CumSum": ["test_cumsum_1d_reverse_exclusive"], "CumProd": ["test_cumprod_2d_axis_0"],
    "TopK": ["test_top_k_smallest", "test_top_k_same_values_2d"], "Trilu": ["test_tril_neg", "test_triu_one_row"],
    "Hardmax": ["test_hardmax_one_hot"],
    "GatherElements": ["test_gather_elements_negative_indices"], "GatherND": ["test_gathernd_example_int32_batch_dim1"],
    "ScatterND": ["test_scatternd", "test_scatternd_add"], "ScatterElements": ["test_scatter_elements_with_axis"],
    "NegativeLogLikelihoodLoss": ["test_nllloss_NCd1_mean_weight_negative_ii"],
    "SoftmaxCrossEntropyLoss": ["test_sce_NCd1d2d3d4d5_mean_weight_log_prob"],
    "Einsum": ["test_einsum_batch_matmul", "test_einsum_inner_prod"], "DFT": ["test_dft_irfft", "test_dft_axis_opset19"],
    "RotaryEmbedding": ["test_rotary_embedding_3d_input", "test_rotary_embedding_with_interleaved_rotary_dim"],
    "QuantizeLinear": ["test_quantizelinear_blocked_asymmetric"], "DequantizeLinear": ["test_dequantizelinear_axis"],
    "Clip": ["test_clip_default_int8_inbounds"], "Add": ["test_add_uint32"], "Div": ["test_div_int8"],
    "BitCast": ["test_bitcast_float32_to_int32"], "BitwiseNot": ["test_bitwise_not_4d"],
    "CenterCropPad": ["test_center_crop_pad_crop_and_pad"], "Compress": ["test_compress_negative_axis"],
    "Dropout": ["test_dropout_default_mask"], "Pow": ["test_pow_bcast_scalar"],
}


@pytest.fixture(scope="module")
def node_results():
    names = [n for ns in NODE_TESTS.values() for n in ns]
    return {r.name: r for r in conf.run("tflite", ops=sorted(NODE_TESTS), names=names)}


@pytest.mark.parametrize("name", [n for ns in NODE_TESTS.values() for n in ns])
def test_node_test_passes(node_results, name):
    assert name in node_results, f"{name} was not selected (op missing from the TFLite op table?)"
    r = node_results[name]
    assert r.outcome == "pass", (r.outcome, r.detail)


# --- against ONNX Runtime on seeded inputs ------------------------------------------------------------------

def _model(nodes, inputs, outputs, inits=(), opset=23):
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                              [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
                              [numpy_helper.from_array(v, k) for k, v in inits])
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def _check(model, feeds, atol=1e-5, rtol=1e-4):
    res = convert(model)
    assert not res.problems, res.problems
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.tflite"
        path.write_bytes(res.data)
        got = LiteRTRunner(path).run(feeds)
    for k, v in ref.items():
        assert got[k].shape == v.shape and got[k].dtype == v.dtype, (k, got[k].shape, v.shape, got[k].dtype, v.dtype)
        np.testing.assert_allclose(got[k], v, atol=atol, rtol=rtol, err_msg=k)
    return res


F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
rng = np.random.default_rng(0)


def test_attention_gqa_mask_and_kv_cache_vs_ort():
    """3-D GQA attention (8 query heads on 2 KV heads) with a bool padding mask, causal, past/present KV."""
    b, q, past, hq, hkv, e = 2, 3, 4, 8, 2, 16
    node = helper.make_node("Attention", ["q", "k", "v", "mask", "pk", "pv"], ["y", "present_k", "present_v"],
                            q_num_heads=hq, kv_num_heads=hkv, is_causal=1)
    model = _model([node], [("q", F, [b, q, hq * e]), ("k", F, [b, q, hkv * e]), ("v", F, [b, q, hkv * e]),
                            ("mask", B, [b, 1, q, past + q]), ("pk", F, [b, hkv, past, e]), ("pv", F, [b, hkv, past, e])],
                   [("y", F), ("present_k", F), ("present_v", F)])
    mask = np.ones((b, 1, q, past + q), bool)
    mask[1, ..., :2] = False  # the second sequence starts with two padding keys
    feeds = {"q": rng.standard_normal((b, q, hq * e), np.float32), "k": rng.standard_normal((b, q, hkv * e), np.float32),
             "v": rng.standard_normal((b, q, hkv * e), np.float32), "mask": mask,
             "pk": rng.standard_normal((b, hkv, past, e), np.float32),
             "pv": rng.standard_normal((b, hkv, past, e), np.float32)}
    res = _check(model, feeds)
    h = res.op_histogram
    assert h["BATCH_MATMUL"] == 2 and h["SOFTMAX"] == 1, h  # one QK^T and one PV for all heads: no repeat of K/V
    assert h.get("TILE", 0) == 0 and h.get("GATHER", 0) == 0, h


def test_bert_mask_block_vs_ort():
    """The usual exported attention-mask and pooling patterns: Cast/Equal/Where/Expand/Range/Shape/Unsqueeze."""
    nodes = [
        helper.make_node("Shape", ["ids"], ["shp"]),
        helper.make_node("Equal", ["am", "zero"], ["is_pad"]),
        helper.make_node("Where", ["is_pad", "neg", "fzero"], ["bias"]),  # additive mask
        helper.make_node("Cast", ["am"], ["amf"], to=F),
        helper.make_node("Unsqueeze", ["amf", "axes2"], ["am3"]),
        helper.make_node("Expand", ["am3", "hshape"], ["amx"]),  # mean-pooling weights
        helper.make_node("Mul", ["h", "amx"], ["hm"]),
        helper.make_node("ReduceSum", ["hm", "axes1"], ["s"], keepdims=0),
        helper.make_node("ReduceSum", ["amx", "axes1"], ["n"], keepdims=0),
        helper.make_node("Clip", ["n", "eps", ""], ["nc"]),
        helper.make_node("Div", ["s", "nc"], ["pooled"]),
        helper.make_node("Range", ["zero", "len", "one"], ["pos"]),
        helper.make_node("Less", ["pos", "ids"], ["lt"]),
        helper.make_node("Not", ["lt"], ["ge"]),
    ]
    inits = [("zero", np.array(0, np.int64)), ("one", np.array(1, np.int64)), ("len", np.array(6, np.int64)),
             ("neg", np.array(-1e4, np.float32)), ("fzero", np.array(0, np.float32)), ("axes2", np.array([2])),
             ("axes1", np.array([1])), ("hshape", np.array([2, 6, 8])), ("eps", np.array(1e-9, np.float32))]
    model = _model(nodes, [("ids", I64, [2, 6]), ("am", I64, [2, 6]), ("h", F, [2, 6, 8])],
                   [("bias", F), ("pooled", F), ("ge", B), ("shp", I64)], inits, opset=17)
    am = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]], np.int64)
    _check(model, {"ids": rng.integers(0, 9, (2, 6)), "am": am, "h": rng.standard_normal((2, 6, 8), np.float32)})


def test_rotary_rmsnorm_vs_ort():
    nodes = [helper.make_node("RMSNormalization", ["x", "w"], ["n"], axis=-1, epsilon=1e-6),
             helper.make_node("RotaryEmbedding", ["n", "cos", "sin", "pos"], ["y"], interleaved=1)]
    pos_len, half = 16, 4
    ang = np.arange(pos_len)[:, None] / (10000 ** (np.arange(half) / half))[None]
    inits = [("w", rng.standard_normal(8).astype(np.float32)), ("cos", np.cos(ang).astype(np.float32)),
             ("sin", np.sin(ang).astype(np.float32))]
    model = _model(nodes, [("x", F, [1, 2, 5, 8]), ("pos", I64, [1, 5])], [("y", F)], inits)
    _check(model, {"x": rng.standard_normal((1, 2, 5, 8), np.float32), "pos": np.array([[3, 4, 5, 6, 7]])})


def test_clip_with_run_time_bound_vs_ort():
    """A log-mel front end's floor: clip(x, max(x) - 80 dB) with the bound computed in the graph."""
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             helper.make_node("Sub", ["m", "db"], ["lo"]),
             helper.make_node("Clip", ["x", "lo"], ["y"])]
    model = _model(nodes, [("x", F, [1, 40, 30])], [("y", F)], [("db", np.array(80, np.float32))], opset=18)
    _check(model, {"x": (rng.standard_normal((1, 40, 30)) * 60).astype(np.float32)})


def test_float64_and_uint32_are_carried_with_casts():
    nodes = [helper.make_node("Mul", ["a", "a"], ["sq"]), helper.make_node("Add", ["u", "v"], ["s"])]
    model = _model(nodes, [("a", TensorProto.DOUBLE, [3, 4]), ("u", TensorProto.UINT32, [4]),
                           ("v", TensorProto.UINT32, [4])], [("sq", TensorProto.DOUBLE), ("s", TensorProto.UINT32)],
                   opset=17)
    big = np.array([2**32 - 1, 5, 2**31, 7], np.uint32)  # the sum wraps mod 2^32, as in ONNX Runtime
    _check(model, {"a": rng.standard_normal((3, 4)), "u": big, "v": np.array([3, 1, 2**31, 0], np.uint32)})


def test_tanh_is_not_fused():
    """LiteRT ignores a TANH fused into ADD/CONV_2D: it must stay its own op (it came out without tanh)."""
    nodes = [helper.make_node("Add", ["x", "x"], ["a"]), helper.make_node("Tanh", ["a"], ["y"])]
    res = _check(_model(nodes, [("x", F, [2, 8])], [("y", F)], opset=17), {"x": rng.standard_normal((2, 8), np.float32)})
    assert res.op_histogram.get("TANH") == 1


def test_rank0_input_stays_rank0():
    nodes = [helper.make_node("Mul", ["x", "s"], ["y"])]
    _check(_model(nodes, [("x", F, [3]), ("s", F, [])], [("y", F)], opset=17),
           {"x": rng.standard_normal(3, np.float32), "s": np.array(2.5, np.float32)})


def test_optional_input_is_a_reported_problem():
    opt = helper.make_value_info("o", helper.make_optional_type_proto(helper.make_tensor_type_proto(F, [2])))
    graph = helper.make_graph([helper.make_node("OptionalHasElement", ["o"], ["y"])], "t", [opt],
                              [helper.make_tensor_value_info("y", B, [])])
    res = convert(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), write=False)
    assert res.problems and "optional" in res.problems[0][2], res.problems


def test_qlinear_matmul_and_dynamic_quantize_vs_ort():
    """Pre-quantized (QOperator) MatMul: exact integer product, requantized like ONNX Runtime; and
    DynamicQuantizeLinear on a random tensor (scale, zero point and every int value equal)."""
    u8 = TensorProto.UINT8
    inits = [("sa", np.array(0.02, np.float32)), ("za", np.array(120, np.uint8)), ("sb", np.array(0.01, np.float32)),
             ("zb", np.array(130, np.uint8)), ("sy", np.array(0.05, np.float32)), ("zy", np.array(128, np.uint8))]
    node = helper.make_node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])
    dq = helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "qs", "qz"])
    model = _model([node, dq], [("a", u8, [2, 5, 64]), ("b", u8, [64, 7]), ("x", F, [3, 50])],
                   [("y", u8), ("q", u8), ("qs", F), ("qz", u8)], inits, opset=13)
    feeds = {"a": rng.integers(0, 256, (2, 5, 64), dtype=np.uint8), "b": rng.integers(0, 256, (64, 7), dtype=np.uint8),
             "x": rng.standard_normal((3, 50), np.float32)}
    _check(model, feeds, atol=0, rtol=0)


@pytest.mark.parametrize("mode,padding,align", [("linear", "zeros", 0), ("cubic", "reflection", 1),
                                                ("nearest", "border", 0)])
def test_grid_sample_with_constant_grid_vs_ort(mode, padding, align):
    grid = rng.uniform(-1.2, 1.2, (2, 5, 7, 2)).astype(np.float32)
    node = helper.make_node("GridSample", ["x", "grid"], ["y"], mode=mode, padding_mode=padding, align_corners=align)
    model = _model([node], [("x", F, [2, 3, 6, 8])], [("y", F)], [("grid", grid)], opset=20)
    _check(model, {"x": rng.standard_normal((2, 3, 6, 8), np.float32)}, atol=1e-5)


def test_col2im_and_affine_grid_vs_ort():
    nodes = [helper.make_node("Col2Im", ["cols", "img", "blk"], ["im"], strides=[2, 1], pads=[1, 0, 1, 1]),
             helper.make_node("AffineGrid", ["theta", "size"], ["g"], align_corners=0)]
    inits = [("img", np.array([6, 5])), ("blk", np.array([3, 2])), ("size", np.array([2, 3, 4, 5]))]
    model = _model(nodes, [("cols", F, [2, 3 * 6, 15]), ("theta", F, [2, 2, 3])], [("im", F), ("g", F)], inits, opset=20)
    _check(model, {"cols": rng.standard_normal((2, 18, 15), np.float32), "theta": rng.standard_normal((2, 2, 3), np.float32)})


def test_gather_with_run_time_scalar_int64_index_vs_ort():
    """Exporters gather one position with a computed scalar (e.g. the CLS token, the last step)."""
    model = _model([helper.make_node("Gather", ["x", "i"], ["y"], axis=1)], [("x", F, [2, 5, 3]), ("i", I64, [])],
                   [("y", F)], opset=17)
    for i in (2, -1):
        _check(model, {"x": rng.standard_normal((2, 5, 3), np.float32), "i": np.array(i, np.int64)})
