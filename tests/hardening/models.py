"""Small real-shaped models for the hardening tests and the fuzz harness: a CNN, an attention block, an LSTM."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, inputs, outputs, inits, opset: int = 13) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgec-tests")
    model.ir_version = 8
    return model


def _w(rng, name, shape, scale=0.3):
    return numpy_helper.from_array(rng.normal(0, scale, shape).astype(np.float32), name)


def cnn(shape=(1, 3, 16, 16), seed: int = 0) -> onnx.ModelProto:
    """Conv -> Relu -> MaxPool -> Conv -> GlobalAveragePool -> Flatten -> Gemm."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1),
    ]
    inits = [_w(rng, "w1", (8, 3, 3, 3)), _w(rng, "b1", (8,), 0.1), _w(rng, "w2", (8, 8, 3, 3)),
             _w(rng, "b2", (8,), 0.1), _w(rng, "wf", (10, 8)), _w(rng, "bf", (10,), 0.1)]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [shape[0], 10])], inits)


def attention(seq: int = 8, dim: int = 16, seed: int = 0) -> onnx.ModelProto:
    """Single-head self-attention: softmax(Q K^T / sqrt(d)) V, then a projection and a residual Add."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], name="q"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], name="k"),
        helper.make_node("MatMul", ["x", "wv"], ["v"], name="v"),
        helper.make_node("Transpose", ["k"], ["kt"], name="kt", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
        helper.make_node("Mul", ["s", "scale"], ["ss"], name="scale"),
        helper.make_node("Softmax", ["ss"], ["a"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["a", "v"], ["av"], name="av"),
        helper.make_node("MatMul", ["av", "wo"], ["o"], name="proj"),
        helper.make_node("Add", ["o", "x"], ["y"], name="residual"),
    ]
    inits = [_w(rng, "wq", (dim, dim)), _w(rng, "wk", (dim, dim)), _w(rng, "wv", (dim, dim)),
             _w(rng, "wo", (dim, dim)), numpy_helper.from_array(np.array(dim ** -0.5, np.float32), "scale")]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, seq, dim])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, seq, dim])], inits)


def lstm(seq: int = 6, inp: int = 8, hidden: int = 12, seed: int = 0) -> onnx.ModelProto:
    """One forward LSTM layer over [seq, 1, inp] and a Gemm head on the last hidden state."""
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("LSTM", ["x", "W", "R", "B"], ["Y", "Y_h"], name="lstm", hidden_size=hidden),
        helper.make_node("Squeeze", ["Y_h", "axes0"], ["h"], name="squeeze"),
        helper.make_node("Gemm", ["h", "wf", "bf"], ["logits"], name="fc", transB=1),
    ]
    inits = [_w(rng, "W", (1, 4 * hidden, inp)), _w(rng, "R", (1, 4 * hidden, hidden)),
             _w(rng, "B", (1, 8 * hidden), 0.1), numpy_helper.from_array(np.array([0], np.int64), "axes0"),
             _w(rng, "wf", (4, hidden)), _w(rng, "bf", (4,), 0.1)]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, 1, inp])],
                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])], inits)


BASES = {"cnn": cnn, "attention": attention, "lstm": lstm}
