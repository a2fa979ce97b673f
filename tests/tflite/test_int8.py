"""int8 TFLite from ONNX QDQ models: LiteRT's int8 kernels against ONNX Runtime running the SAME QDQ model."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from ai_edge_litert import schema_py_generated as S
from onnx import TensorProto, helper, numpy_helper

from edgec.lower.tflite.convert import convert
from edgec.runtimes.host_litert import LiteRTRunner
from edgec.runtimes.host_ort import OrtRunner

RNG = np.random.default_rng(7)


def _cos(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def _w(*shape):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    return (RNG.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def _feeds(model, n, seed=0):
    rng = np.random.default_rng(seed)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return [{model.graph.input[0].name: rng.standard_normal(shape).astype(np.float32)} for _ in range(n)]


def qdq(model: onnx.ModelProto, activation="QInt8", samples: int = 16, exclude=(), **extra) -> onnx.ModelProto:
    """ONNX Runtime's static QDQ quantization (per-channel int8 weights), calibrated on seeded N(0,1)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(_feeds(model, samples, seed=123))

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "f.onnx", Path(d) / "q.onnx"
        onnx.save(model, str(src))
        quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=getattr(QuantType, activation), weight_type=QuantType.QInt8,
                        nodes_to_exclude=list(exclude), extra_options=extra or None)
        return onnx.shape_inference.infer_shapes(onnx.load(str(dst)))


def lower_and_compare(model: onnx.ModelProto, min_cos=0.999, min_delta=0.99, **kw):
    """Lower the QDQ model, run both runtimes on two inputs; check outputs and the outputs' difference."""
    res = convert(model, **kw)
    assert not res.problems, res.problems
    sess = OrtRunner(model)  # edgec's reference: exact int8 accumulation on any x86 CPU, as on the device
    feeds = _feeds(model, 2)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.tflite"
        path.write_bytes(res.data)
        runner = LiteRTRunner(path, threads=1)
        got = [runner.run(f) for f in feeds]
    ref = [sess.run(f) for f in feeds]
    for name in ref[0]:
        for r, g in zip(ref, got):
            assert _cos(r[name], g[name]) >= min_cos, (name, _cos(r[name], g[name]))
        delta = _cos(ref[0][name] - ref[1][name], got[0][name] - got[1][name])
        assert delta >= min_delta, (name, delta)
    return res


def _tensor_types(data: bytes) -> dict[str, list[int]]:
    """op code -> TFLite tensor type of each input of the first op of that code."""
    m = S.ModelT.InitFromPackedBuf(data, 0)
    sg = m.subgraphs[0]
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    out = {}
    for op in sg.operators:
        code = names[m.operatorCodes[op.opcodeIndex].builtinCode]
        out.setdefault(code, [sg.tensors[i].type if i >= 0 else None for i in op.inputs])
    return out


def _model(nodes, consts, in_shape, outputs, opset=13):
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(m)


def conv_net() -> onnx.ModelProto:
    """Conv (explicit pads, stride 2) -> Relu -> depthwise Conv -> MaxPool (pads) -> two branches with
    different ranges -> Concat -> Add (residual) -> AveragePool -> Flatten -> Gemm."""
    c = {"w1": _w(16, 3, 3, 3), "b1": RNG.standard_normal(16).astype(np.float32) * 0.1,
         "wd": _w(16, 1, 3, 3), "bd": RNG.standard_normal(16).astype(np.float32) * 0.1,
         "wa": _w(8, 16, 1, 1), "ba": np.zeros(8, np.float32), "wb": _w(8, 16, 3, 3) * 4,
         "bb": np.full(8, 0.5, np.float32), "wg": _w(10, 16 * 4 * 4), "bg": RNG.standard_normal(10).astype(np.float32)}
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 0, 0], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "wd", "bd"], ["d1"], pads=[1, 1, 1, 1], group=16),
        helper.make_node("MaxPool", ["d1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["p1", "wa", "ba"], ["ya"]),
        helper.make_node("Conv", ["p1", "wb", "bb"], ["yb"], pads=[1, 1, 1, 1]),
        helper.make_node("Concat", ["ya", "yb"], ["cat"], axis=1),
        helper.make_node("Add", ["cat", "p1"], ["res"]),
        helper.make_node("AveragePool", ["res"], ["ap"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["ap"], ["fl"]),
        helper.make_node("Gemm", ["fl", "wg", "bg"], ["y"], transB=1),
    ]
    return _model(nodes, c, [1, 3, 31, 32], ["y"])


def test_conv_net_int8_matches_ort_qdq():
    res = lower_and_compare(qdq(conv_net()))
    types = _tensor_types(res.data)
    for code in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):  # int8 data, int8 weights, int32 bias
        assert types[code] == [S.TensorType.INT8, S.TensorType.INT8, S.TensorType.INT32], code
    for code in ("MAX_POOL_2D", "CONCATENATION", "ADD", "AVERAGE_POOL_2D"):
        assert types[code][0] == S.TensorType.INT8, code
    h = res.op_histogram
    assert h["QUANTIZE"] >= 1 and h["DEQUANTIZE"] == 1  # float model I/O: one in, one out (+ requantizes)


def test_per_channel_quantization_parameters():
    """Filter scales per output channel on the right TFLite axis; bias scale = input scale x weight scale."""
    res = convert(qdq(conv_net()))
    m = S.ModelT.InitFromPackedBuf(res.data, 0)
    sg = m.subgraphs[0]
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    seen = set()
    for op in sg.operators:
        code = names[m.operatorCodes[op.opcodeIndex].builtinCode]
        if code not in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            continue
        x, w, b = (sg.tensors[i] for i in op.inputs)
        axis = 3 if code == "DEPTHWISE_CONV_2D" else 0
        assert w.quantization.quantizedDimension == axis
        assert len(w.quantization.scale) == w.shape[axis] > 1
        assert list(w.quantization.zeroPoint) == [0] * w.shape[axis]
        np.testing.assert_allclose(b.quantization.scale, x.quantization.scale[0] * np.array(w.quantization.scale),
                                   rtol=1e-6)
        seen.add(code)
    assert seen == {"CONV_2D", "DEPTHWISE_CONV_2D"}


def test_uint8_activations_become_int8():
    """QUInt8 QDQ tensors map to int8 with zero point - 128: same numerics, int8 kernels."""
    model = qdq(conv_net(), activation="QUInt8")
    assert any(t.data_type == TensorProto.UINT8 for t in model.graph.initializer)
    res = lower_and_compare(model)
    assert _tensor_types(res.data)["CONV_2D"][0] == S.TensorType.INT8


def test_float_island_keeps_ort_numerics():
    """An op left float in the QDQ model (here Softmax excluded from quantization) runs in float between
    DEQUANTIZE and QUANTIZE; the graph still matches ORT on the QDQ model."""
    c = {"w": _w(8, 3, 3, 3), "b": np.zeros(8, np.float32), "w2": _w(4, 8, 1, 1), "b2": np.zeros(4, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Softmax", ["c"], ["s"], axis=1, name="soft"),
             helper.make_node("Conv", ["s", "w2", "b2"], ["y"], name="conv2")]
    model = qdq(_model(nodes, c, [1, 3, 8, 8], ["y"]), exclude=["soft"])
    assert any(n.op_type == "Softmax" for n in model.graph.node)
    res = lower_and_compare(model)
    types = _tensor_types(res.data)
    assert types["CONV_2D"][:2] == [S.TensorType.INT8, S.TensorType.INT8]
    assert types["SOFTMAX"][0] == S.TensorType.FLOAT32
    assert res.op_histogram["CONV_2D"] == 2 and res.op_histogram["DEQUANTIZE"] == 2


def test_per_channel_activation_quantization_in_float_arithmetic():
    """Per-channel activation Q/DQ has no TFLite int8 tensor: it lowers as ONNX's formulas in float (round half
    to even, clamp) and matches ONNX Runtime exactly (it was refused before)."""
    from tests.tflite.helpers import assert_close

    c = {"s": np.array([0.1, 0.2, 0.3], np.float32), "z": np.array([0, 3, -5], np.int8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1, name="q_per_channel"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], axis=1, name="dq_per_channel")]
    res = assert_close(_model(nodes, c, [1, 3, 4, 4], ["y"]), atol=1e-6, rtol=0)
    assert "QUANTIZE" not in res.op_histogram and res.op_histogram["ROUND"] == 1


def _light_qdq(name: str, with_float: bool = False):
    """A random-weight light zoo model, prepared like a build (static shapes, simplified), then QDQ."""
    from edgec.prepare import prepare
    from edgec.quantize.int8 import to_qdq_opset
    from edgec.samples import randomized

    path = randomized(name)
    fp32 = prepare(onnx.load(str(path)), {}, str(path)).model
    q = qdq(to_qdq_opset(fp32), samples=4)
    return (q, fp32) if with_float else q


def test_squeezenet_int8_vs_ort_qdq():
    res = lower_and_compare(_light_qdq("squeezenet"), min_cos=0.9999, min_delta=0.9)
    h = res.op_histogram
    assert h["CONV_2D"] == 26 and h["DEQUANTIZE"] == 1  # every conv int8, float only at the output


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shufflenet", "resnet50", "inception_v1"])
def test_light_models_int8_vs_ort_qdq(name):
    """Deep random nets send two inputs to outputs only ~2% apart, near the int8 step, so the outputs' difference
    is bounded by int8 itself: LiteRT must follow ORT-QDQ's difference about as well as ORT-QDQ follows fp32's
    (measured: inception_v1 0.67 vs 0.78, resnet50 0.91 vs 0.29, shufflenet 0.87 vs 0.82)."""
    q, fp32 = _light_qdq(name, with_float=True)
    feeds = _feeds(q, 2)
    f, s = OrtRunner(fp32), OrtRunner(q)
    a, b = ([next(iter(sess.run(x).values())) for x in feeds] for sess in (s, f))
    inherent = _cos(a[0] - a[1], b[0] - b[1])
    lower_and_compare(q, min_cos=0.995, min_delta=min(0.95, inherent - 0.15))


def test_weight_only_int8_is_exact_and_small():
    """int8-weights (weight-only): int8 constants + DEQUANTIZE, float compute; equals ORT on the same model."""
    from edgec.quantize.int8 import quantize_weights_only

    fp32 = conv_net()
    model, n = quantize_weights_only(onnx.ModelProto.FromString(fp32.SerializeToString()), True, [], min_elements=16)
    assert n == 5
    res = lower_and_compare(model, min_cos=0.99999, min_delta=0.99999)
    assert res.op_histogram["DEQUANTIZE"] == 5 and "QUANTIZE" not in res.op_histogram
    float_size = len(convert(fp32).data)
    assert len(res.data) < 0.45 * float_size, (len(res.data), float_size)


def test_int8_model_io():
    """tflite.io_dtype: int8 -> int8 input/output tensors with the QDQ model's params, no boundary QUANTIZE/
    DEQUANTIZE; the runner quantizes feeds / dequantizes outputs with the file's params and still matches ORT."""
    model = qdq(conv_net())
    res = lower_and_compare(model, int8_io=True)
    m = S.ModelT.InitFromPackedBuf(res.data, 0)
    sg = m.subgraphs[0]
    x, y = sg.tensors[sg.inputs[0]], sg.tensors[sg.outputs[0]]
    assert x.type == y.type == S.TensorType.INT8
    q_in = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "x")
    scale = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}[q_in.input[1]]
    assert np.isclose(x.quantization.scale[0], float(scale))
    assert "DEQUANTIZE" not in res.op_histogram


def test_int8_io_needs_quantize_at_the_boundary():
    res = convert(conv_net(), int8_io=True)
    assert {("Input", "x"), ("Output", "y")} <= {p[:2] for p in res.problems}


@pytest.mark.slow
def test_zoo_mobilenet_v2_int8():
    """torchvision MobileNetV2 (depthwise convs, ReLU6 in the quantized range, residual adds): every conv int8."""
    from tests.zoo import zoo_model

    from edgec.prepare import prepare
    from edgec.quantize.int8 import to_qdq_opset

    path = zoo_model("mobilenet_v2")
    model = qdq(to_qdq_opset(prepare(onnx.load(str(path)), {}, str(path)).model), samples=4)
    res = lower_and_compare(model, min_cos=0.998, min_delta=0.97)
    h = res.op_histogram
    assert h["CONV_2D"] + h["DEPTHWISE_CONV_2D"] == 52 and h["DEQUANTIZE"] == 1 and h["QUANTIZE"] == 1


def test_int8_head_ops():
    """Resize (nearest, linear), ReduceMean, Sigmoid and a last-axis Softmax on int8 tensors (fixed-param kernels
    requantized to the QDQ model's params)."""
    c = {"w": _w(8, 3, 3, 3), "b": np.zeros(8, np.float32), "sc": np.array([1, 1, 2, 2], np.float32),
         "w2": _w(6, 8, 1, 1), "b2": np.zeros(6, np.float32), "ax": np.array([2, 3], np.int64)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Resize", ["c", "", "sc"], ["up"], mode="nearest"),
             helper.make_node("Resize", ["c", "", "sc"], ["lin"], mode="linear"),
             helper.make_node("Add", ["up", "lin"], ["s"]),
             helper.make_node("Conv", ["s", "w2", "b2"], ["d"]),
             helper.make_node("Sigmoid", ["d"], ["sg"]),
             helper.make_node("ReduceMean", ["sg"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("Softmax", ["m"], ["y"], axis=-1)]
    model = qdq(_model(nodes, c, [1, 3, 8, 8], ["y"]))
    res = lower_and_compare(model, min_cos=0.999, min_delta=0.95)
    types = _tensor_types(res.data)
    for code in ("RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR", "LOGISTIC", "MEAN", "SOFTMAX"):
        assert types[code][0] == S.TensorType.INT8, code


def test_int8_output_is_deterministic_and_xnnpack_takes_it():
    from edgec.runtimes.host_litert import xnnpack_coverage

    model = qdq(conv_net())
    a, b = convert(model).data, convert(onnx.ModelProto.FromString(model.SerializeToString())).data
    assert a == b
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.tflite"
        path.write_bytes(a)
        cov = xnnpack_coverage(path)
    # int8 AVERAGE_POOL_2D has no XNNPACK kernel, nor PADV2 (the max-pool pad of a signed range is -128, not the
    # zero point); everything else runs there
    assert set(cov["cpu"]) <= {"AVERAGE_POOL_2D", "PADV2"}, cov
    assert cov["xnnpack"]["CONV_2D"] == 3 and cov["xnnpack"]["FULLY_CONNECTED"] == 1


def test_int8_dynamic_is_unsupported_by_node():
    """ORT's int8-dynamic form of a conv net (DynamicQuantizeLinear + ConvInteger) has no TFLite lowering: every
    ConvInteger is listed (the build fails with UnsupportedOp, never writes a float model). DynamicQuantizeLinear
    and MatMulInteger alone are lowered (in exact float arithmetic, ops/quant_math.py)."""
    from edgec.quantize.int8 import quantize_dynamic_int8

    model = quantize_dynamic_int8(conv_net(), True, [])
    res = convert(model, write=False)
    ops = {p[0] for p in res.problems}
    assert "ConvInteger" in ops, res.problems


def test_quantize_of_constant_weights_is_folded():
    """QDQ exported with QuantizeLinear on float weights (PyTorch-style) lowers like ORT's constant int8 weights."""
    w = _w(8, 3, 3, 3)
    ws = (np.abs(w).reshape(8, -1).max(1) / 127).astype(np.float32)
    c = {"w": w, "ws": ws, "wz": np.zeros(8, np.int8), "xs": np.array(0.03, np.float32), "xz": np.array(0, np.int8),
         "ys": np.array(0.05, np.float32), "yz": np.array(-10, np.int8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["wq"], axis=0),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
             helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"])]
    res = lower_and_compare(_model(nodes, c, [1, 3, 8, 8], ["y"]), min_cos=0.9999, min_delta=0.999)
    assert _tensor_types(res.data)["CONV_2D"] == [S.TensorType.INT8, S.TensorType.INT8, S.TensorType.INT32]


def test_quantized_io_is_never_silently_wrong():
    """A uint8 model input/output (ONNX node tests) is refused by name: converting it to int8 would shift its
    values by 128. An int8 model input read by DequantizeLinear runs as is (the runner feeds int8 unchanged)."""
    c = {"s": np.array(0.5, np.float32), "z": np.array(3, np.uint8), "z8": np.array(3, np.int8)}
    q = _model([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], name="q_u8")], c, [2, 3], ["y"])
    assert ("QuantizeLinear", "q_u8") in {p[:2] for p in convert(q).problems}
    graph = helper.make_graph([helper.make_node("DequantizeLinear", ["x", "s", "z8"], ["y"])], "t",
                              [helper.make_tensor_value_info("x", TensorProto.INT8, [2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
                              [numpy_helper.from_array(v, k) for k, v in c.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    res = convert(model)
    assert not res.problems, res.problems
    x = np.arange(-3, 3, dtype=np.int8).reshape(2, 3)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.tflite"
        path.write_bytes(res.data)
        got = LiteRTRunner(path).run({"x": x})["y"]
    np.testing.assert_allclose(got, (x.astype(np.float32) - 3) * 0.5)


def test_conv1d_qdq_stays_float_and_correct():
    c = {"w": _w(6, 4, 3), "b": np.zeros(6, np.float32)}
    model = qdq(_model([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[1, 1])], c, [1, 4, 16], ["y"]))
    res = lower_and_compare(model, min_cos=0.9999, min_delta=0.999)
    assert _tensor_types(res.data)["CONV_2D"][0] == S.TensorType.FLOAT32


def test_int8_activations():
    """LeakyRelu, HardSwish between int8 convs run as int8 kernels and match ORT on the QDQ model."""
    c = {"w": _w(8, 3, 3, 3), "b": np.zeros(8, np.float32), "w2": _w(8, 8, 1, 1), "b2": np.zeros(8, np.float32),
         "w3": _w(8, 8, 1, 1), "b3": np.zeros(8, np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c"], ["l"], alpha=0.1),
             helper.make_node("Conv", ["l", "w2", "b2"], ["c2"]),
             helper.make_node("HardSwish", ["c2"], ["h"]),
             helper.make_node("Conv", ["h", "w3", "b3"], ["c3"]),
             helper.make_node("Tanh", ["c3"], ["y"])]
    model = qdq(_model(nodes, c, [1, 3, 8, 8], ["y"], opset=14))
    kinds = {n.op_type for n in model.graph.node}
    assert {"LeakyRelu", "HardSwish", "Tanh"} <= kinds
    res = lower_and_compare(model, min_cos=0.999, min_delta=0.99)
    types = _tensor_types(res.data)
    for code in ("LEAKY_RELU", "HARD_SWISH"):
        assert types[code][0] == S.TensorType.INT8, (code, res.op_histogram)
    assert types["TANH"][0] == S.TensorType.FLOAT32  # ONNX Runtime leaves Tanh float: a float island


@pytest.mark.parametrize("alpha, beta, s_out, z_out", [(1 / 6, 0.5, 1 / 255, -128), (0.2, 0.45, 0.01, -100)])
def test_hard_sigmoid_int8(alpha, beta, s_out, z_out, tmp_path):
    """DQ -> HardSigmoid -> Q (mobilenet_v3's squeeze-excite gates): int8 MUL (exact: the integers only take the
    scale alpha * s_x) + ADD with a fused RELU, and a MINIMUM at 1 when the output's int8 range reaches above 1
    (second case); no float island, and within one output step of ONNX Runtime on the same QDQ model."""
    consts = {"s": np.array(0.05, np.float32), "z": np.array(4, np.int8),
              "so": np.array(s_out, np.float32), "zo": np.array(z_out, np.int8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("HardSigmoid", ["xd"], ["h"], alpha=alpha, beta=beta),
             helper.make_node("QuantizeLinear", ["h", "so", "zo"], ["hq"]),
             helper.make_node("DequantizeLinear", ["hq", "so", "zo"], ["y"])]
    model = _model(nodes, consts, [1, 3, 8, 8], ["y"])
    res = convert(model)
    assert not res.problems, res.problems
    h = res.op_histogram
    assert h["QUANTIZE"] == h["DEQUANTIZE"] == 1 and h["MUL"] == h["ADD"] == 1, h
    assert h.get("MINIMUM", 0) == (round(1 / s_out) + z_out < 127), h
    assert _tensor_types(res.data)["ADD"] == [S.TensorType.INT8] * 2
    path = tmp_path / "hs.tflite"
    path.write_bytes(res.data)
    x = np.linspace(-6, 6, 3 * 64, dtype=np.float32).reshape(1, 3, 8, 8)  # the whole curve, both clips
    want = OrtRunner(model, level="disable").run({"x": x})["y"]
    got = LiteRTRunner(path, threads=1).run({"x": x})["y"]
    assert np.abs(got - want).max() <= s_out * 1.001, np.abs(got - want).max()
