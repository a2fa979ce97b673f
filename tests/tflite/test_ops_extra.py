"""Resize, reductions, ArgMax, Slice, Split, Gather, Pad, LayerNormalization, Cast, DepthToSpace, SpaceToDepth,
LogSoftmax, Gelu, Erf: LiteRT against ONNX Runtime on small graphs, alone and after a Conv (NHWC layout)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.lower.tflite.convert import convert
from tests.tflite.helpers import assert_close, chain, single_op

RNG = np.random.default_rng(7)
W8 = RNG.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3  # Conv 3 -> 8 channels, 3x3


def after_conv(op: str, consts: dict | None = None, extra_inputs: list[str] = (), n_out: int = 1,
               x_shape=(1, 3, 6, 8), opset: int = 17, out_type: int = TensorProto.FLOAT, **attrs) -> onnx.ModelProto:
    """x -> Conv(pads 1) -> op: the op's input is NHWC inside the TFLite model."""
    outs = [f"y{i}" for i in range(n_out)]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node(op, ["c", *extra_inputs], outs, **attrs)]
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info(o, out_type, None) for o in outs],
        [numpy_helper.from_array(v, k) for k, v in {"w": W8, **(consts or {})}.items()])
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def problems(model) -> str:
    return " ".join(why for _, _, why in convert(model, write=False).problems)


def test_nhwc_really_used():
    res = assert_close(after_conv("Relu"))
    assert res.stats["nhwc_ops"] == 1


# --- Resize --------------------------------------------------------------------------------------------------

def _resize(x_shape, mode, coord, nearest="round_prefer_floor", scales=None, sizes=None, conv=False, **attrs):
    consts = {"roi": np.array([], np.float32)}
    inputs = ["roi"]
    if scales is not None:
        consts["scales"] = np.array(scales, np.float32)
        inputs.append("scales")
    else:
        consts["scales"] = np.array([], np.float32)
        consts["sizes"] = np.array(sizes, np.int64)
        inputs += ["scales", "sizes"]
    kw = dict(mode=mode, coordinate_transformation_mode=coord, nearest_mode=nearest, **attrs)
    if conv:
        return after_conv("Resize", consts=consts, extra_inputs=inputs, x_shape=x_shape, opset=13, **kw)
    node = helper.make_node("Resize", ["x", *inputs], ["y"], **kw)
    return chain([node], {"x": list(x_shape)}, ["y"], consts, opset=13)


@pytest.mark.parametrize("coord", ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric"])
@pytest.mark.parametrize("scales,sizes", [([1, 1, 2, 2], None), (None, [1, 8, 9, 11]), (None, [1, 8, 3, 5])])
def test_resize_linear(coord, scales, sizes):
    assert_close(_resize((1, 3, 6, 8), "linear", coord, scales=scales, sizes=sizes, conv=True), atol=2e-4)


@pytest.mark.parametrize("coord,nearest,scales,sizes", [
    ("asymmetric", "floor", [1, 1, 2, 2], None),          # PyTorch's nn.Upsample(mode="nearest") export
    ("half_pixel", "round_prefer_floor", [1, 1, 2, 3], None),
    ("half_pixel", "round_prefer_ceil", None, [1, 8, 9, 11]),
    ("align_corners", "round_prefer_ceil", None, [1, 8, 11, 15]),
    ("asymmetric", "floor", None, [1, 8, 3, 4]),          # downsampling
    ("asymmetric", "round_prefer_floor", [1, 1, 0.5, 0.5], None),
])
def test_resize_nearest(coord, nearest, scales, sizes):
    assert_close(_resize((1, 3, 6, 8), "nearest", coord, nearest, scales=scales, sizes=sizes, conv=True))


def test_resize_nearest_without_conv():
    assert_close(_resize((2, 3, 4, 5), "nearest", "asymmetric", "floor", scales=[1, 1, 3, 2]))


def test_upsample_opset9():
    node = helper.make_node("Upsample", ["x", "s"], ["y"], mode="nearest")
    assert_close(chain([node], {"x": [1, 2, 3, 4]}, ["y"], {"s": np.array([1, 1, 2, 2], np.float32)}, opset=9))


@pytest.mark.parametrize("kw,needle", [
    (dict(mode="cubic", coord="half_pixel"), "mode='cubic'"),
    (dict(mode="linear", coord="tf_crop_and_resize"), "coordinate_transformation_mode='tf_crop_and_resize'"),
    (dict(mode="nearest", coord="asymmetric", nearest="ceil"), "nearest_mode='ceil'"),
    (dict(mode="linear", coord="half_pixel", antialias=1, sizes=[1, 8, 3, 4]), "antialias"),
])
def test_resize_unsupported_modes_name_the_attribute(kw, needle):
    kw = dict(kw)
    sizes = kw.pop("sizes", None)
    model = _resize((1, 3, 6, 8), kw.pop("mode"), kw.pop("coord"), kw.pop("nearest", "round_prefer_floor"),
                    scales=None if sizes else [1, 1, 2, 2], sizes=sizes, conv=True, **kw)
    assert needle in problems(model)


def test_resize_fractional_scale_is_refused():
    """scale 1.7 on 6 rows gives 10 rows; ONNX samples with 1.7, TFLite with 10/6: different grids."""
    model = _resize((1, 3, 6, 8), "linear", "half_pixel", scales=[1, 1, 1.7, 2], conv=True)
    assert "do not equal output/input size" in problems(model)


# --- DepthToSpace / SpaceToDepth ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["DCR", "CRD"])
def test_depth_to_space(mode):
    assert_close(after_conv("DepthToSpace", blocksize=2, mode=mode))
    assert_close(single_op("DepthToSpace", {"x": [1, 8, 2, 3]}, blocksize=2, mode=mode))


def test_space_to_depth():
    assert_close(after_conv("SpaceToDepth", blocksize=2))
    assert_close(single_op("SpaceToDepth", {"x": [2, 3, 4, 6]}, blocksize=2))


# --- reductions ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd"])
@pytest.mark.parametrize("axes,keepdims", [([2, 3], 1), ([1], 0), ([-1], 1), (None, 0)])
def test_reduce(op, axes, keepdims):
    consts = {"axes": np.array(axes, np.int64)} if axes is not None else {}
    extra = ["axes"] if axes is not None else []
    assert_close(after_conv(op, consts=consts, extra_inputs=extra, opset=18, keepdims=keepdims), rtol=2e-4)


@pytest.mark.parametrize("op", ["ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"])
@pytest.mark.parametrize("axes,keepdims", [([2, 3], 1), ([1], 0), (None, 0)])
def test_reduce_composed(op, axes, keepdims):
    consts = {"axes": np.array(axes, np.int64)} if axes is not None else {}
    extra = ["axes"] if axes is not None else []
    assert_close(after_conv(op, consts=consts, extra_inputs=extra, opset=18, keepdims=keepdims), rtol=2e-4)


def test_reduce_log_sum_and_large_log_sum_exp():
    """LogSum of positive values; LogSumExp of values near 100 (exp overflows fp32 without the max shift)."""
    nodes = [helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Add", ["a", "k"], ["b"]),
             helper.make_node("ReduceLogSum", ["b", "ax"], ["y"], keepdims=0),
             helper.make_node("ReduceLogSumExp", ["b", "ax"], ["z"], keepdims=1)]
    assert_close(chain(nodes, {"x": [2, 5, 7]}, ["y", "z"], {"k": np.array(100.0, np.float32),
                                                              "ax": np.array([-1], np.int64)}, opset=18), rtol=2e-4)


def test_reduce_axes_attribute_opset13():
    assert_close(after_conv("ReduceMean", opset=13, axes=[1], keepdims=1))


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("axis,keepdims", [(1, 1), (-1, 0), (2, 1)])
def test_argmax(op, axis, keepdims):
    model = after_conv(op, out_type=TensorProto.INT64, axis=axis, keepdims=keepdims)
    res = convert(model)
    assert not res.problems
    from tests.tflite.helpers import run_both

    ref, got, _ = run_both(model)
    assert got["y0"].dtype == np.int64 and got["y0"].shape == ref["y0"].shape
    np.testing.assert_array_equal(got["y0"], ref["y0"])


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_arg_select_last_index_with_ties(op, keepdims):
    """Rounded inputs make ties; the last of them must win."""
    node = helper.make_node("Round", ["x"], ["r"])
    arg = helper.make_node(op, ["r"], ["y"], axis=1, keepdims=keepdims, select_last_index=1)
    graph = helper.make_graph([node, arg], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 9, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    if convert(model, write=False).problems:  # Round itself may not be lowered: feed rounded values instead
        arg = helper.make_node(op, ["x"], ["y"], axis=1, keepdims=keepdims, select_last_index=1)
        graph = helper.make_graph([arg], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 9, 4])],
                                  [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
        model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    import tempfile
    from pathlib import Path

    import onnxruntime as ort

    from edgec.runtimes.host_litert import LiteRTRunner

    res = convert(model)
    assert not res.problems, res.problems
    x = np.round(RNG.standard_normal((3, 9, 4))).astype(np.float32)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "m.tflite").write_bytes(res.data)
        got = LiteRTRunner(Path(d) / "m.tflite").run({"x": x})["y"]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, ref)


# --- Slice / Split / Gather / Pad ---------------------------------------------------------------------------

@pytest.mark.parametrize("starts,ends,axes,steps", [
    ([1, 2], [3, 5], [2, 3], [1, 1]),
    ([0], [5], [1], [2]),                       # channels, after the NHWC move
    ([-1], [-100], [3], [-1]),                  # reversed to the start: needs the end mask
    ([5, 0], [1, 2**62], [2, 1], [-2, 3]),
])
def test_slice(starts, ends, axes, steps):
    consts = {"st": np.array(starts, np.int64), "en": np.array(ends, np.int64), "ax": np.array(axes, np.int64),
              "sp": np.array(steps, np.int64)}
    assert_close(after_conv("Slice", consts=consts, extra_inputs=["st", "en", "ax", "sp"]))


@pytest.mark.parametrize("split,axis", [(None, 1), ([3, 5], 1), ([2, 4], 2), ([5, 3], -1)])
def test_split(split, axis):
    consts = {"split": np.array(split, np.int64)} if split else {}
    model = after_conv("Split", consts=consts, extra_inputs=["split"] if split else [], n_out=2, axis=axis)
    assert_close(model)


@pytest.mark.parametrize("indices,axis", [
    (np.array([2, 0, -1], np.int64), 1),
    (np.array([[1, 0], [3, 3]], np.int64), 3),
    (np.array(4, np.int64), 2),
])
def test_gather_constant_indices(indices, axis):
    assert_close(after_conv("Gather", consts={"i": indices}, extra_inputs=["i"], axis=axis))


def test_gather_runtime_negative_indices():
    node = helper.make_node("Gather", ["x", "i"], ["y"], axis=1)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 5, 3]),
                                            helper.make_tensor_value_info("i", TensorProto.INT64, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    res = convert(model)
    assert not res.problems
    import tempfile
    from pathlib import Path

    import onnxruntime as ort

    from edgec.runtimes.host_litert import LiteRTRunner

    feeds = {"x": RNG.standard_normal((2, 5, 3)).astype(np.float32), "i": np.array([-1, 0, -5, 3], np.int64)}
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "m.tflite").write_bytes(res.data)
        got = LiteRTRunner(Path(d) / "m.tflite").run(feeds)["y"]
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("mode,pads,value", [
    ("constant", [0, 0, 1, 2, 0, 1, 0, 3], 0.0),
    ("constant", [0, 2, 1, 0, 0, 1, 2, 0], 1.5),
    ("reflect", [0, 0, 2, 1, 0, 0, 1, 3], 0.0),
    ("edge", [0, 1, 3, 2, 0, 0, 1, 4], 0.0),
    ("wrap", [0, 0, 2, 1, 0, 0, 1, 3], 0.0),
])
def test_pad(mode, pads, value):
    consts = {"pads": np.array(pads, np.int64), "v": np.array(value, np.float32)}
    opset = 19 if mode == "wrap" else 18
    assert_close(after_conv("Pad", consts=consts, extra_inputs=["pads", "v"], mode=mode, opset=opset))


def test_pad_with_axes():
    consts = {"pads": np.array([1, 2, 3, 0], np.int64), "v": np.array(0.5, np.float32), "ax": np.array([3, 1], np.int64)}
    assert_close(after_conv("Pad", consts=consts, extra_inputs=["pads", "v", "ax"], opset=18))


# --- LayerNormalization, Cast, LogSoftmax, Gelu, Erf --------------------------------------------------------

@pytest.mark.parametrize("axis", [-1, 2])
def test_layer_norm(axis):
    shape = [2, 4, 6] if axis == -1 else [2, 3, 4, 5]
    norm_shape = shape[axis:]
    consts = {"s": RNG.standard_normal(norm_shape).astype(np.float32),
              "b": RNG.standard_normal(norm_shape).astype(np.float32)}
    assert_close(single_op("LayerNormalization", {"x": shape}, consts=consts, axis=axis, epsilon=1e-5), atol=2e-4)


def test_layer_norm_stats_outputs_and_after_conv():
    consts = {"s": RNG.standard_normal(8).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("LayerNormalization", ["t", "s"], ["y", "mean", "inv"], axis=-1)]
    model = chain(nodes, {"x": [1, 3, 5, 6]}, ["y", "mean", "inv"], {"w": W8, **consts})
    assert_close(model, atol=2e-4)


@pytest.mark.parametrize("to", [TensorProto.INT32, TensorProto.INT64, TensorProto.BOOL, TensorProto.FLOAT16])
def test_cast_from_float(to):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Mul", ["c", "k"], ["m"]),
             helper.make_node("Cast", ["m"], ["y"], to=to)]
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])],
                              [helper.make_tensor_value_info("y", to, None)],
                              [numpy_helper.from_array(W8, "w"), numpy_helper.from_array(np.array(3.0, np.float32), "k")])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert_close(model, atol=1e-3 if to == TensorProto.FLOAT16 else 0)


def test_cast_int_back_to_float():
    nodes = [helper.make_node("Mul", ["x", "k"], ["m"]),
             helper.make_node("Cast", ["m"], ["i"], to=TensorProto.INT32),
             helper.make_node("Cast", ["i"], ["y"], to=TensorProto.FLOAT)]
    assert_close(chain(nodes, {"x": [3, 7]}, ["y"], {"k": np.array(4.0, np.float32)}), atol=0)


@pytest.mark.parametrize("to", [TensorProto.STRING, TensorProto.BFLOAT16, TensorProto.FLOAT8E4M3FN])
def test_cast_to_unsupported_type_is_refused(to):
    node = helper.make_node("Cast", ["x"], ["y"], to=to)
    graph = helper.make_graph([node], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", to, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    assert f"to={TensorProto.DataType.Name(to)}" in problems(model)


def test_log_softmax_channels_after_conv():
    assert_close(after_conv("LogSoftmax", axis=1), atol=2e-4)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    assert_close(after_conv("Gelu", opset=20, approximate=approximate), atol=2e-4)


def test_erf():
    assert_close(single_op("Erf", {"x": [4, 50]}), atol=1e-6, rtol=0)
    assert_close(after_conv("Erf"), atol=1e-6, rtol=0)


def test_resize_align_corners_uses_the_unrounded_scale():
    """ONNX align_corners divides by in*scale - 1 (here 6*0.6 - 1), TFLite by out - 1: refused, not wrong."""
    model = _resize((1, 3, 6, 8), "linear", "align_corners", scales=[1, 1, 0.6, 0.5], conv=True)
    assert "do not equal output/input size" in problems(model)
    assert_close(_resize((1, 3, 6, 8), "linear", "align_corners", scales=[1, 1, 0.5, 0.5], conv=True))


def test_input_dtype_without_tflite_type_is_a_problem_not_a_crash():
    node = helper.make_node("Add", ["a", "b"], ["y"])
    vi = [helper.make_tensor_value_info(n, TensorProto.UINT16, [3]) for n in ("a", "b")]
    graph = helper.make_graph([node], "t", vi, [helper.make_tensor_value_info("y", TensorProto.UINT16, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    assert "uint16 has no TFLite tensor type" in problems(model)


@pytest.mark.parametrize("op,kw,consts,extra,out_type", [
    ("ArgMax", dict(axis=1, keepdims=1), {}, [], TensorProto.INT64),
    ("Gather", dict(axis=1), {"i": np.array([5, 0, 2], np.int64)}, ["i"], TensorProto.FLOAT),
])
def test_layout_moves_through_argmax_and_gather(op, kw, consts, extra, out_type):
    """After a Conv these run on NHWC data: no TRANSPOSE back to NCHW before them."""
    model = after_conv(op, consts=consts, extra_inputs=extra, out_type=out_type, **kw)
    from tests.tflite.helpers import run_both

    ref, got, res = run_both(model)
    np.testing.assert_allclose(got["y0"], ref["y0"], atol=1e-4, rtol=1e-4)
    # one TRANSPOSE for the NCHW model input; ArgMax's N x 1 x H x W result goes back by a RESHAPE
    # (Gather's axis rewrite is checked by the numbers: its 4-D output is transposed back either way)
    if op == "ArgMax":
        assert res.op_histogram.get("TRANSPOSE", 0) == 1, res.op_histogram


@pytest.mark.parametrize("make", [
    lambda: _resize((1, 3, 6, 8), "linear", "half_pixel", scales=[1, 1, 2, 2], conv=True),
    lambda: after_conv("Pad", consts={"pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "v": np.array(0.5, np.float32)},
                       extra_inputs=["pads", "v"], opset=18),
    lambda: after_conv("ReduceLogSumExp", consts={"axes": np.array([1], np.int64)}, extra_inputs=["axes"], opset=18),
    lambda: after_conv("Erf"),
    lambda: single_op("LayerNormalization", {"x": [2, 4, 6]}, consts={"s": RNG.standard_normal(6).astype(np.float32)}),
])
def test_fp16_weights_build(make):
    """fp16 builds store float constants as float16 (+ DEQUANTIZE): results stay within fp16 rounding."""
    from tests.tflite.helpers import cosine, run_both

    ref, got, _ = run_both(make(), fp16=True)
    for k in ref:
        assert cosine(ref[k], got[k]) > 0.9999, k
        np.testing.assert_allclose(got[k], ref[k], atol=2e-2, rtol=2e-2)
