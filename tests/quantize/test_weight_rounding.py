"""Error-compensating weight rounding (edgec/quantize/weight_rounding.py) and the float input layers
(islands.input_layers): checked with ONNX Runtime on inputs the rounding never saw."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.quantize import weight_rounding
from edgec.quantize.int8 import quantize_weights_only
from edgec.quantize.islands import input_layers
from edgec.quantize.weight_rounding import input_hessians, round_weights

SHAPE = [1, 16, 24, 24]


def _smooth_inputs(n: int, seed: int) -> list[np.ndarray]:
    """Correlated neighbouring pixels, as in images (the case nearest rounding gets wrong: a kernel's errors add)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal(SHAPE)
        for axis in (2, 3):  # a running average: neighbours share most of their value
            x = (x + np.roll(x, 1, axis) + np.roll(x, 2, axis)) / 3
        out.append((x + rng.standard_normal((1, 16, 1, 1))).astype(np.float32))
    return out


def _model(op: str) -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    if op == "Conv":
        w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
        node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", pads=[1, 1, 1, 1])
        out = [1, 24, 24, 24]
    elif op == "Depthwise":
        w = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
        node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=16, strides=[2, 2])
        out = [1, 16, 11, 11]
    else:
        w = rng.standard_normal((24, 8)).astype(np.float32)
        node = helper.make_node("MatMul", ["x", "w"], ["y"], name="conv")
        out = [1, 16, 24, 8]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
                              [numpy_helper.from_array(w, "w")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _qdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """The weight as ONNX Runtime's quantizer writes it (int8.quantize_weights_only: symmetric int8 per output
    channel, nearest rounding), activations float."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    out, count = quantize_weights_only(copy, per_channel=True, exclude=[], min_elements=1)
    assert count == 1
    return out


def _error(model: onnx.ModelProto, ref: onnx.ModelProto, xs) -> float:
    run = lambda m: np.stack([ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])  # noqa: E731
                              .run(None, {"x": x})[0] for x in xs])
    a, b = run(model).astype(np.float64), run(ref).astype(np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("op", ["Conv", "Depthwise", "MatMul"])
def test_compensated_rounding_beats_nearest_on_unseen_inputs(op):
    model = _model(op)
    nearest = _qdq(model)
    rounded = _qdq(model)
    assert round_weights(rounded, model, input_hessians(model, [{"x": x} for x in _smooth_inputs(32, 0)])) == ["conv"]
    held_out = _smooth_inputs(4, 99)
    before, after = _error(nearest, model, held_out), _error(rounded, model, held_out)
    assert after < 0.8 * before, (before, after)
    # the quantizer's scales and zero points stay; only the int8 levels move, by at most a few steps
    old, new = ({t.name: numpy_helper.to_array(t) for t in m.graph.initializer} for m in (nearest, rounded))
    assert np.array_equal(old["w_scale"], new["w_scale"]) and np.array_equal(old["w_zero_point"], new["w_zero_point"])
    assert new["w_quantized"].dtype == np.int8 and np.abs(new["w_quantized"].astype(int)).max() <= 127
    assert not np.array_equal(old["w_quantized"], new["w_quantized"])


def test_too_few_samples_keep_nearest_rounding(monkeypatch):
    """X·Xᵀ from fewer rows than MIN_SAMPLES_PER_TAP per weight tap would fit the calibration data: not even
    accumulated (a D x D per layer), and the weights keep nearest rounding."""
    model = _model("Conv")
    feeds = [{"x": x} for x in _smooth_inputs(1, 0)]
    monkeypatch.setattr(weight_rounding, "MIN_SAMPLES_PER_TAP", 1)
    assert input_hessians(model, feeds)["conv"][1] == 24 * 24  # one sample's positions, 16 x 3 x 3 taps each
    monkeypatch.setattr(weight_rounding, "MIN_SAMPLES_PER_TAP", 24 * 24 // (16 * 9) + 1)
    hessians = input_hessians(model, feeds)
    assert hessians == {}
    qdq = _qdq(model)
    before = qdq.SerializeToString()
    assert round_weights(qdq, model, hessians) == []
    assert qdq.SerializeToString() == before


def test_a_gemm_reading_its_input_transposed_keeps_nearest_rounding():
    """Gemm(transA=1) reads [K, M] as rows of K: not the rows X·Xᵀ is built from, so it is left alone."""
    rng = np.random.default_rng(2)
    w = rng.standard_normal((24, 8)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], name="conv", transA=1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [24, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    # rows of 2 (what a plain reading would take): plenty of them for 2 taps, so only the transA rule leaves it out
    feeds = [{"x": rng.standard_normal((24, 2)).astype(np.float32)} for _ in range(4)]
    assert input_hessians(model, feeds) == {}


def test_rounding_is_deterministic():
    model = _model("Depthwise")
    feeds = [{"x": x} for x in _smooth_inputs(4, 0)]
    a, b = _qdq(model), _qdq(model)
    round_weights(a, model, input_hessians(model, feeds))
    round_weights(b, model, input_hessians(model, feeds))
    assert a.SerializeToString() == b.SerializeToString()


def _net(first_reader: str) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = lambda *s: numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), f"w{len(s)}{s[0]}")  # noqa: E731
    inits = [w(8, 3, 3, 3), w(8, 8, 1, 1), numpy_helper.from_array(np.full((1, 3, 1, 1), 0.5, np.float32), "mean")]
    if first_reader == "normalize":  # (x - mean) in the graph, then the stem conv
        head = [helper.make_node("Sub", ["x", "mean"], ["xn"], name="sub"),
                helper.make_node("Conv", ["xn", inits[0].name], ["a"], name="stem", pads=[1, 1, 1, 1])]
    else:  # x + (x * x): the input meets a computed tensor before any weight, nothing to keep float
        head = [helper.make_node("Mul", ["x", "x"], ["sq"], name="square"),
                helper.make_node("Add", ["x", "sq"], ["xn"], name="add"),
                helper.make_node("Conv", ["xn", inits[0].name], ["a"], name="stem", pads=[1, 1, 1, 1])]
    nodes = head + [helper.make_node("Relu", ["a"], ["r"], name="relu"),
                    helper.make_node("Conv", ["r", inits[1].name], ["y"], name="conv2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_input_layers_are_the_stem_and_the_ops_before_it():
    kept = input_layers(_net("normalize"))
    assert sorted(kept) == ["stem", "sub"]
    assert "reads model input 'x'" in kept["stem"]
    # the square reads x twice and the Add reads a computed tensor: the walk stops there, nothing stays float
    assert input_layers(_net("computed")) == {}


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_rows_are_what_the_conv_multiplies(auto_pad):
    """The rows X·Xᵀ is built from, times the weights, are ONNX Runtime's conv output (odd padding, stride 2,
    groups): the padding rule is graph.view.auto_pad_pads."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    x = rng.standard_normal((1, 4, 9, 8)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="c", group=2, strides=[2, 2], auto_pad=auto_pad)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    rows = weight_rounding._conv_rows(x.astype(np.float64), w.shape, node)  # [groups, positions, taps]
    got = np.concatenate([rows[g] @ w[2 * g:2 * g + 2].reshape(2, -1).T for g in range(2)], axis=1)
    np.testing.assert_allclose(got.T.reshape(want.shape), want, rtol=1e-4, atol=1e-4)
