"""paddle2onnx writes dim_value -1 for a dynamic dim. A graph output declared [-1, 2] (PP-OCR's text-orientation
classifier: Gemm -> Softmax) must be lowered with its inferred static shape, not -1 (LiteRT refused the file:
"BytesRequired number of elements overflowed")."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec.lower.tflite.ir import from_onnx
from tests.tflite.helpers import assert_close


def _paddle_head(out_dims) -> "onnx.ModelProto":
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 2)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(2).astype(np.float32), "b")
    nodes = [helper.make_node("Gemm", ["x", "w", "b"], ["logits"], name="fc"),
             helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1)]
    graph = helper.make_graph(nodes, "paddle_head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, out_dims)], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def test_output_declared_minus_one_gets_its_inferred_shape():
    model = _paddle_head([-1, 2])
    assert from_onnx(model).shapes["probs"] == (1, 2)
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_value == -1  # the caller's model is untouched
    assert_close(model, atol=1e-6)


def test_output_with_unknown_dims_only_is_inferred_too():
    assert from_onnx(_paddle_head([-1, -1])).shapes["probs"] == (1, 2)
