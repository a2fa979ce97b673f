"""Unsupported nodes are listed all at once, by op and attribute, and lower() refuses with the same list."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from edgec.errors import UnsupportedOp
from tests.coreml.helpers import backend, infer, lower, single_op


def _why(model) -> str:
    (problem,) = backend().unsupported(model)
    return problem[2]


@pytest.mark.parametrize("model, fragment", [
    (lambda: single_op("MaxPool", {"x": [1, 2, 8, 8]}, {"kernel_shape": [2, 2]}, n_outputs=2), "Indices output"),
    (lambda: single_op("MaxPool", {"x": [1, 2, 8, 8]}, {"kernel_shape": [2, 2], "dilations": [2, 2]}, input_types={"x": TensorProto.UINT8}), "dilations"),
    (lambda: single_op("Resize", {"x": [1, 2, 4, 4]}, {"mode": "nearest"}, {"r": np.zeros(0, np.float32), "s": np.array([1, 1, 1.5, 1.5], np.float32)},
                       input_types={"x": TensorProto.UINT8}), "non-float"),
    (lambda: single_op("Resize", {"x": [1, 2, 4, 4]}, {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize", "extrapolation_value": 5.0},
                       {"r": np.array([0, 0, -0.5, -0.5, 1, 1, 1.5, 1.5], np.float32), "s": np.array([1, 1, 2, 2], np.float32)}), "not separable"),
    (lambda: single_op("Pad", {"x": [1, 2, 4, 4]}, {"mode": "wrap"}, {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)}, opset=19), "mode='wrap'"),
    (lambda: single_op("Pad", {"x": [1, 2, 4, 4]}, {}, {"p": np.array([0, 0, -1, 0, 0, 0, 0, 0], np.int64)}), "negative pads"),
    (lambda: single_op("Reshape", {"x": [2, 6], "s": [2]}, {}, input_types={"s": TensorProto.INT64}), "must be a constant"),
    (lambda: single_op("BitShift", {"x": [2, 3], "z": [2, 3]}, {"direction": "LEFT"}, input_types={"x": TensorProto.INT32, "z": TensorProto.INT32}), "overflow"),
    (lambda: single_op("TopK", {"x": [2, 3]}, {}, {"k": np.array([1], np.int64)}, n_outputs=2, input_types={"x": TensorProto.FLOAT16}), "float16"),
    (lambda: single_op("LRN", {"x": [1, 4, 3, 3]}, {"size": 2}), "even"),
    (lambda: single_op("Cast", {"x": [2, 3]}, {"to": TensorProto.BFLOAT16}), "BFLOAT16"),
    (lambda: single_op("Dropout", {"x": [2, 3]}, {}, {"r": np.array(0.3, np.float32), "t": np.array(True)}, n_outputs=2, opset=13), "random"),
    (lambda: single_op("Einsum", {"x": [3, 3]}, {"equation": "ii->i"}, opset=12), "diagonal"),
    (lambda: single_op("Pad", {"x": [2, 3]}, {}, {"p": np.array([0, 1, 1, 0], np.int64)}, input_types={"x": TensorProto.INT32}), "float-only"),
    (lambda: single_op("Pow", {"x": [3], "e": [3]}, {}, input_types={"x": TensorProto.INT32}), "integer base"),
    (lambda: single_op("Unsqueeze", {"x": [3, 4, 5]}, {}, {"a": np.array([0, 1, 2], np.int64)}), "rank 6"),
    (lambda: single_op("ReduceSum", {"x": [2, 0, 4]}, {"keepdims": 1}, {"a": np.array([1], np.int64)}), "zero-size"),
])
def test_attribute_level_reasons(model, fragment):
    assert fragment in _why(model())


def test_every_bad_node_is_listed_and_lower_refuses(tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="fine"),
        helper.make_node("MaxPool", ["a"], ["b", "b_idx"], name="pool_indices", kernel_shape=[2, 2]),
        helper.make_node("Einsum", ["b"], ["c"], name="einsum", equation="nchh->nch"),
        helper.make_node("LRN", ["c"], ["y"], name="lrn", size=2),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = infer(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    problems = backend().unsupported(model)
    assert [(op, name) for op, name, _ in problems] == [("MaxPool", "pool_indices"), ("Einsum", "einsum"), ("LRN", "lrn")]
    with pytest.raises(UnsupportedOp) as err:
        lower(model, tmp_path)
    assert err.value.problems == problems
    assert all(name in str(err.value) for name in ("pool_indices", "einsum", "lrn"))


def test_dynamic_input_shape_is_reported():
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert backend().unsupported(model)[0][:2] == ("graph input", "x")


def test_custom_domain_is_reported():
    node = helper.make_node("Relu", ["x"], ["y"], name="custom_relu", domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    (problem,) = backend().unsupported(model)
    assert problem[1] == "custom_relu" and "com.example" in problem[2]
