"""16x8 TFLite (quantize.activations: int16): int16 activations, int8 weights, int64 bias. LiteRT's 16x8 kernels
against ONNX Runtime running the SAME opset-21 QDQ model (16-bit Q/DQ in float arithmetic)."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S
from onnx import helper

from edgec.lower.tflite.convert import convert
from tests.tflite.test_int8 import _model, _tensor_types, _w, conv_net, lower_and_compare, qdq

SYMMETRIC = {"ActivationSymmetric": True}  # TFLite's int16 activations have zero point 0 (the stage asks for it)

# a 16-bit step is 1/256 of an int8 one: LiteRT's fixed-point requantization and ORT's float Q/DQ differ by at most
# a step or so per layer, far below this (int8 tests take 0.999)
MIN_COS, MIN_DELTA = 0.99995, 0.9999


def test_conv_net_16x8_matches_ort_qdq():
    model = qdq(conv_net(), activation="QInt16", **SYMMETRIC)
    res = lower_and_compare(model, min_cos=MIN_COS, min_delta=MIN_DELTA)
    types = _tensor_types(res.data)
    for code in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):  # int16 data, int8 weights, int64 bias
        assert types[code] == [S.TensorType.INT16, S.TensorType.INT8, S.TensorType.INT64], code
    for code in ("MAX_POOL_2D", "CONCATENATION", "ADD", "AVERAGE_POOL_2D"):
        assert types[code][0] == S.TensorType.INT16, code
    versions = _versions(res.data)
    assert versions["CONV_2D"] == 4 and versions["DEPTHWISE_CONV_2D"] == 5 and versions["FULLY_CONNECTED"] == 7
    assert versions["ADD"] == versions["AVERAGE_POOL_2D"] == 3


def test_asymmetric_int16_runs_in_float_arithmetic():
    """ORT's default int16 activations have a zero point; TFLite's 16x8 kernels take none, so those Q/DQ run as
    float arithmetic (ops/quant_math.py) and the convolutions in float: the same numbers, no int16 kernel."""
    model = qdq(conv_net(), activation="QInt16")
    res = lower_and_compare(model, min_cos=MIN_COS, min_delta=MIN_DELTA)
    assert S.TensorType.INT16 not in _tensor_types(res.data)["CONV_2D"]


def test_16x8_model_io_stays_float():
    res = convert(qdq(conv_net(), activation="QInt16", **SYMMETRIC), int8_io=True)
    assert {("Input", "x"), ("Output", "y")} <= {p[:2] for p in res.problems}
    assert all("int16" in p[2] for p in res.problems if p[:2] in (("Input", "x"), ("Output", "y")))


def test_matmul_16x8():
    c = {"w": _w(24, 16), "w2": _w(16, 24)}
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    res = lower_and_compare(qdq(_model(nodes, c, [1, 5, 24], ["y"]), activation="QInt16", **SYMMETRIC),
                            min_cos=MIN_COS, min_delta=MIN_DELTA)
    assert _tensor_types(res.data)["FULLY_CONNECTED"][0] == S.TensorType.INT16


def _versions(data: bytes) -> dict[str, int]:
    m = S.ModelT.InitFromPackedBuf(data, 0)
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    return {names[c.builtinCode]: c.version for c in m.operatorCodes}


def test_16x8_is_deterministic():
    model = qdq(conv_net(), activation="QInt16", **SYMMETRIC)
    assert convert(model).data == convert(model).data


def test_head_ops_16x8():
    """LeakyRelu, Mul (a constant-free product of two branches), GlobalAveragePool, ReduceMean on int16; Sigmoid
    has no 16x8 rule here and runs float between int16 DEQUANTIZE / QUANTIZE."""
    c = {"w": _w(8, 3, 3, 3), "b": np.zeros(8, np.float32), "w2": _w(8, 8, 1, 1), "b2": np.zeros(8, np.float32),
         "axes": np.array([2, 3], np.int64)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("LeakyRelu", ["c"], ["l"], alpha=0.1),
             helper.make_node("Conv", ["l", "w2", "b2"], ["c2"]),
             helper.make_node("Sigmoid", ["c2"], ["s"]),
             helper.make_node("Mul", ["l", "s"], ["m"]),
             helper.make_node("GlobalAveragePool", ["m"], ["g"]),
             helper.make_node("ReduceMean", ["m", "axes"], ["r"], keepdims=1),
             helper.make_node("Add", ["g", "r"], ["y"])]
    model = qdq(_model(nodes, c, [1, 3, 8, 8], ["y"], opset=18), activation="QInt16", **SYMMETRIC)
    res = lower_and_compare(model, min_cos=MIN_COS, min_delta=MIN_DELTA)
    types = _tensor_types(res.data)
    for code in ("LEAKY_RELU", "MUL", "MEAN"):
        assert types[code][0] == S.TensorType.INT16, (code, res.op_histogram)
    assert types["LOGISTIC"][0] == S.TensorType.FLOAT32
