"""Single ops and small chains lowered to TFLite match ONNX Runtime in LiteRT."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from edgec.lower.tflite.convert import convert
from tests.tflite.helpers import assert_close, chain, single_op

R = np.random.default_rng(7)


def w(*shape, scale=0.3):
    return (R.standard_normal(shape) * scale).astype(np.float32)


CONV_CASES = {
    "plain_same": dict(shape=[1, 4, 9, 9], w=(8, 4, 3, 3), attrs=dict(pads=[1, 1, 1, 1])),
    "stride2_pad1": dict(shape=[1, 4, 10, 10], w=(8, 4, 3, 3), attrs=dict(pads=[1, 1, 1, 1], strides=[2, 2])),
    "asym_pads": dict(shape=[1, 4, 9, 9], w=(8, 4, 3, 3), attrs=dict(pads=[0, 1, 2, 1])),
    "dilated": dict(shape=[1, 4, 12, 12], w=(8, 4, 3, 3), attrs=dict(pads=[2, 2, 2, 2], dilations=[2, 2])),
    "grouped": dict(shape=[1, 8, 9, 9], w=(12, 2, 3, 3), attrs=dict(pads=[1, 1, 1, 1], group=4)),
    "depthwise": dict(shape=[1, 6, 9, 9], w=(6, 1, 3, 3), attrs=dict(pads=[1, 1, 1, 1], group=6)),
    "depthwise_mult2_s2": dict(shape=[1, 4, 10, 10], w=(8, 1, 3, 3), attrs=dict(pads=[1, 1, 1, 1], group=4, strides=[2, 2])),
    "same_upper_s2": dict(shape=[1, 3, 11, 11], w=(5, 3, 3, 3), attrs=dict(auto_pad="SAME_UPPER", strides=[2, 2])),
    "same_lower": dict(shape=[1, 3, 10, 10], w=(5, 3, 2, 2), attrs=dict(auto_pad="SAME_LOWER")),
    "rect_kernel_valid": dict(shape=[1, 3, 10, 12], w=(5, 3, 1, 5), attrs=dict()),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv(case):
    c = CONV_CASES[case]
    consts = {"w": w(*c["w"]), "b": w(c["w"][0])}
    assert_close(single_op("Conv", {"x": c["shape"]}, None, consts, **c["attrs"]))


@pytest.mark.parametrize("attrs", [dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
                                   dict(strides=[2, 2]), dict(strides=[1, 1], pads=[1, 0, 1, 0]),
                                   dict(auto_pad="SAME_UPPER", strides=[2, 2]), dict(auto_pad="SAME_LOWER", strides=[3, 3])])
def test_conv_transpose(attrs):
    consts = {"w": w(4, 6, 3, 3), "b": w(6)}
    assert_close(single_op("ConvTranspose", {"x": [1, 4, 7, 7]}, None, consts, **attrs))


POOL_CASES = [
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("MaxPool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("MaxPool", dict(kernel_shape=[2, 2], strides=[2, 2])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ("AveragePool", dict(kernel_shape=[3, 3], strides=[1, 1], pads=[1, 1, 1, 1])),
    ("GlobalAveragePool", {}),
    ("GlobalMaxPool", {}),
    ("LRN", dict(size=5, alpha=1e-3, beta=0.75, bias=1.0)),
]


@pytest.mark.parametrize("op,attrs", POOL_CASES)
def test_pool(op, attrs):
    assert_close(single_op(op, {"x": [1, 5, 12, 12]}, None, **attrs))


UNARY = [("Relu", {}), ("Sigmoid", {}), ("Tanh", {}), ("HardSwish", {}), ("HardSigmoid", dict(alpha=0.3, beta=0.4)),
         ("HardSigmoid", dict(alpha=1 / 6, beta=0.5)),
         ("LeakyRelu", dict(alpha=0.1)), ("Elu", {}), ("Exp", {}), ("Abs", {}), ("Neg", {}), ("Floor", {}),
         ("Softmax", dict(axis=-1)), ("LogSoftmax", dict(axis=-1))]


@pytest.mark.parametrize("op,attrs", UNARY)
def test_unary(op, attrs):
    assert_close(single_op(op, {"x": [2, 3, 4, 5]}, None, **attrs), atol=1e-5)


@pytest.mark.parametrize("lo,hi", [(0.0, 6.0), (-0.5, 0.7), (0.2, None), (-1.0, 1.0)])
def test_clip(lo, hi):
    consts = {"lo": np.array(lo, np.float32)}
    names = ["x", "lo"]
    if hi is not None:
        consts["hi"] = np.array(hi, np.float32)
        names.append("hi")
    assert_close(single_op("Clip", {"x": [1, 3, 4, 4]}, None, consts, inputs=names))


@pytest.mark.parametrize("op", ["Log", "Sqrt", "Reciprocal"])
def test_positive_unary(op):
    nodes = [helper.make_node("Exp", ["x"], ["e"]), helper.make_node(op, ["e"], ["y"])]
    assert_close(chain(nodes, {"x": [2, 3, 4]}, ["y"]), atol=1e-5)


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
def test_binary_broadcast(op):
    assert_close(single_op(op, {"a": [2, 3, 4, 5], "b": [3, 1, 5]}, None), atol=1e-5)


def test_pow_and_variadic():
    nodes = [helper.make_node("Exp", ["x"], ["e"]), helper.make_node("Pow", ["e", "p"], ["y"]),
             helper.make_node("Sum", ["x", "e", "y"], ["s"]), helper.make_node("Max", ["x", "e", "y"], ["m"])]
    assert_close(chain(nodes, {"x": [2, 3, 4]}, ["s", "m"], {"p": np.array([1.5], np.float32)}), atol=1e-5)


def test_prelu_after_conv():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("PRelu", ["c", "slope"], ["y"])]
    assert_close(chain(nodes, {"x": [1, 3, 8, 8]}, ["y"], {"w": w(6, 3, 3, 3), "slope": w(6, 1, 1)}))


def test_matmul_gemm():
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"]),                       # const right side, 3-D
             helper.make_node("MatMul", ["a", "x2"], ["b"]),                       # two activations
             helper.make_node("Gemm", ["f", "w2", "c"], ["g"], alpha=0.5, beta=2.0)]
    model = chain(nodes, {"x": [2, 3, 4], "x2": [2, 5, 6], "f": [3, 4]}, ["b", "g"],
                  {"w1": w(4, 5), "w2": w(4, 7), "c": w(7)})
    assert_close(model, atol=1e-4)


def test_shape_ops():
    nodes = [helper.make_node("Unsqueeze", ["x", "ax"], ["u"]), helper.make_node("Transpose", ["u"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("Squeeze", ["t", "ax2"], ["s"]), helper.make_node("Flatten", ["s"], ["y"], axis=2)]
    model = chain(nodes, {"x": [2, 3, 4]}, ["y"], {"ax": np.array([1], np.int64), "ax2": np.array([2], np.int64)})
    assert_close(model)


def test_batchnorm_standalone():
    consts = {"s": w(5) + 1, "b": w(5), "m": w(5), "v": np.abs(w(5)) + 0.5}
    assert_close(single_op("BatchNormalization", {"x": [1, 5, 6, 6]}, None, consts, inputs=["x", "s", "b", "m", "v"]))


def test_flatten_after_conv_keeps_nchw_order():
    """A Flatten of NHWC data must see NCHW element order (H, W > 1): a TRANSPOSE before it, unless the only
    users are Gemm/MatMul with constant weights, whose rows are permuted to NHWC order instead."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Flatten", ["c"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["y"], transB=1), helper.make_node("MatMul", ["f", "fc2"], ["y2"])]
    consts = {"w": w(4, 3, 3, 3), "fc": w(10, 36), "fc2": w(36, 7)}
    res = assert_close(chain(nodes, {"x": [2, 3, 5, 5]}, ["y", "y2"], consts), atol=1e-4)
    assert res.op_histogram["TRANSPOSE"] == 1, res.op_histogram  # the input only
    nodes.append(helper.make_node("Relu", ["f"], ["flat"]))  # another user sees the flat tensor: keep the order
    res = assert_close(chain(nodes, {"x": [2, 3, 5, 5]}, ["y", "y2", "flat"], consts), atol=1e-4)
    assert res.op_histogram["TRANSPOSE"] == 2, res.op_histogram


def test_layout_pass_leaves_boundary_transposes_only():
    """conv -> add(const C,1,1) -> relu -> concat(axis 1) -> maxpool -> softmax(axis 1) -> conv."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "k"], ["a"]), helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Conv", ["x", "w"], ["c2"], pads=[1, 1, 1, 1]),
             helper.make_node("Concat", ["r", "c2"], ["cat"], axis=1),
             helper.make_node("MaxPool", ["cat"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Softmax", ["p"], ["sm"], axis=1),
             helper.make_node("Conv", ["sm", "w2"], ["y"])]
    model = chain(nodes, {"x": [1, 3, 8, 8]}, ["y"], {"w": w(4, 3, 3, 3), "k": w(4, 1, 1), "w2": w(2, 8, 1, 1)})
    res = assert_close(model, atol=1e-5)
    assert res.op_histogram["TRANSPOSE"] == 2, res.op_histogram  # model input and output only


def test_unsupported_lists_every_node():
    nodes = [helper.make_node("Conv", ["x", "wx"], ["c"], name="conv_dyn"),      # weights not constant
             helper.make_node("Bernoulli", ["c"], ["m"], name="bernoulli"),       # no lowering (random)
             helper.make_node("LRN", ["m"], ["y"], name="lrn_even", size=4)]      # even window
    model = chain(nodes, {"x": [1, 3, 8, 8], "wx": [4, 3, 3, 3]}, ["y"], opset=18)
    problems = convert(model, write=False).problems
    assert [(op, name) for op, name, _ in problems] == [("Conv", "conv_dyn"), ("Bernoulli", "bernoulli"), ("LRN", "lrn_even")]
    assert "constant" in problems[0][2] and "even" in problems[2][2]


def test_conv_add_mul_folded_into_conv():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "k"], ["a"]), helper.make_node("Mul", ["m", "a"], ["y"])]
    model = chain(nodes, {"x": [1, 3, 6, 6]}, ["y"], {"w": w(4, 3, 3, 3), "k": w(4, 1, 1), "m": w(1, 4, 1, 1)})
    res = assert_close(model, atol=1e-5)
    assert res.op_histogram == {"CONV_2D": 1, "TRANSPOSE": 2}, res.op_histogram


def test_elu_alpha_and_gemm_variants():
    nodes = [helper.make_node("Elu", ["x"], ["e"], alpha=0.5),
             helper.make_node("Gemm", ["xt", "w"], ["g"], transA=1),
             helper.make_node("Gemm", ["e", "w2", "cfull"], ["g2"], beta=0.5)]
    model = chain(nodes, {"x": [3, 4], "xt": [4, 3]}, ["e", "g", "g2"],
                  {"w": w(4, 5), "w2": w(4, 6), "cfull": w(3, 6)})
    assert_close(model, atol=1e-5)


@pytest.mark.parametrize("a,b", [([4], [4, 3]), ([2, 3, 4], [4]), ([4], [4])])
def test_matmul_vectors(a, b):
    assert_close(single_op("MatMul", {"a": a, "b": b}, None), atol=1e-5)


def test_pow_int_exponent():
    from onnx import TensorProto
    node = helper.make_node("Pow", ["x", "p"], ["y"])
    graph = helper.make_graph([node], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
                                            helper.make_tensor_value_info("p", TensorProto.INT64, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    res = convert(model)
    assert not res.problems and res.op_histogram == {"CAST": 1, "POW": 1}


def test_conv1d_chain_runs_channels_last():
    """1-D conv nets (audio): Conv1d, depthwise Conv1d, pools, BN, ConvTranspose1d; only boundary transposes."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[2, 1], strides=[2]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[3], strides=[1], pads=[1, 1]),
             helper.make_node("Conv", ["p1", "w2"], ["c2"], group=6, kernel_shape=[3], auto_pad="SAME_UPPER"),
             helper.make_node("BatchNormalization", ["c2", "s", "bb", "m", "v"], ["n2"]),
             helper.make_node("AveragePool", ["n2"], ["p2"], kernel_shape=[2], strides=[2]),
             helper.make_node("ConvTranspose", ["p2", "wt"], ["ct"], strides=[2], pads=[1, 0]),
             helper.make_node("GlobalAveragePool", ["ct"], ["y"])]
    consts = {"w1": w(6, 3, 5), "b1": w(6), "w2": w(6, 1, 3), "s": w(6) + 1, "bb": w(6), "m": w(6),
              "v": np.abs(w(6)) + 0.5, "wt": w(6, 4, 3)}
    res = assert_close(chain(nodes, {"x": [2, 3, 40]}, ["y", "c2"], consts), atol=1e-4)
    assert res.op_histogram["TRANSPOSE"] <= 2, res.op_histogram  # the input; c2 back to NCW (y is N x C x 1)


@pytest.mark.parametrize("relu", [True, False])
def test_maxpool_pad_is_zero_pad_only_after_relu(relu):
    nodes = [helper.make_node("Relu" if relu else "Neg", ["x"], ["r"]),
             helper.make_node("MaxPool", ["r"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])]
    res = assert_close(chain(nodes, {"x": [1, 4, 10, 10]}, ["y"]))
    assert ("PADV2" in res.op_histogram) != relu, res.op_histogram


def test_conv_transpose_output_padding_past_footprint():
    consts = {"w": w(4, 6, 3, 3), "b": w(6)}
    assert_close(single_op("ConvTranspose", {"x": [1, 4, 5, 5]}, None, consts, strides=[2, 2], output_padding=[1, 1]))
    assert_close(single_op("ConvTranspose", {"x": [1, 4, 5, 5]}, None, consts, strides=[3, 2],
                           output_shape=[17, 12]))


def test_channel_shuffle_is_one_nhwc_transpose():
    """conv -> reshape (N,g,c,H,W) -> transpose -> reshape (N,C,H,W) -> conv: the layout pass moves the
    transposes through both reshapes, leaving the shuffle as one transpose of (N,H,W,g,c)."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Reshape", ["c", "s5"], ["r5"]),
             helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t5", "s4"], ["r4"]),
             helper.make_node("Conv", ["r4", "w2"], ["y"])]
    consts = {"w": w(6, 3, 1, 1), "s5": np.array([1, 2, 3, 5, 5], np.int64), "s4": np.array([1, 6, 5, 5], np.int64),
              "w2": w(4, 6, 1, 1)}
    res = assert_close(chain(nodes, {"x": [1, 3, 5, 5]}, ["y"], consts), atol=1e-5)
    assert res.op_histogram["TRANSPOSE"] == 3, res.op_histogram  # input, shuffle, output


def test_conv_transpose_with_fused_relu():
    nodes = [helper.make_node("ConvTranspose", ["x", "wt", "bt"], ["t"], strides=[2, 2]),
             helper.make_node("Relu", ["t"], ["y"])]
    res = assert_close(chain(nodes, {"x": [1, 4, 6, 6]}, ["y"], {"wt": w(4, 4, 3, 3), "bt": w(4)}))
    assert res.stats["fused_activations"] == 1 and "RELU" not in res.op_histogram


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis,opset", [(1, 17), (0, 17), (1, 11), (0, 11), (-1, 11)])
def test_softmax_any_axis(op, axis, opset):
    assert_close(single_op(op, {"x": [3, 4, 5]}, None, opset=opset, axis=axis), atol=1e-5)
