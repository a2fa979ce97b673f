"""Tiny conv nets for emulator tests: seconds under emulation (fp32 runs ~400x slower than native)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def few_convs(seed: int = 0, size: int = 32) -> onnx.ModelProto:
    """Conv 3x3 s2 -> Relu -> depthwise 3x3 -> Relu -> Conv 1x1 -> Relu -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(seed)

    def w(name, *shape):
        fan_in = int(np.prod(shape[1:]))
        return numpy_helper.from_array((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), name)

    def b(name, n):
        return numpy_helper.from_array((rng.standard_normal(n) * 0.1).astype(np.float32), name)

    inits = [w("w1", 16, 3, 3, 3), b("b1", 16), w("w2", 16, 1, 3, 3), b("b2", 16), w("w3", 32, 16, 1, 1), b("b3", 32),
             w("w4", 10, 32), b("b4", 10)]
    nodes = [
        helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="dw", pads=[1, 1, 1, 1], group=16),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Conv", ["r2", "w3", "b3"], ["c3"], name="pw"),
        helper.make_node("Relu", ["c3"], ["r3"], name="relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w4", "b4"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "few_convs", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgec-tests")
    model.ir_version = 8
    return model


def feeds(n: int, size: int = 32, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"images": rng.standard_normal((1, 3, size, size)).astype(np.float32)} for _ in range(n)]


def relu(n: int) -> onnx.ModelProto:
    """One Relu over n floats: a streaming kernel (each line read once, written once) for the cache simulation."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "stream", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
