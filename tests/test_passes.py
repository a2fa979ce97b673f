import numpy as np
import onnx
from onnx import TensorProto, helper

from edgec.graph.passes import run_passes
from edgec.validate.runners.host_ort import OrtRunner

from conftest import conv_model


def _run(model, x):
    return OrtRunner(model).run({"images": x})["logits"]


def test_fold_batchnorm_keeps_outputs():
    model = conv_model()
    x = np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)
    before = _run(model, x)
    counts = run_passes(model, ["fold_batchnorm_into_conv", "remove_dead_nodes"])
    assert counts["fold_batchnorm_into_conv"] == 1
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu", "GlobalAveragePool", "Flatten"]
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-5, atol=1e-5)


def _sum_model():
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 3])
    nodes = [
        helper.make_node("Relu", ["images"], ["a"]),
        helper.make_node("Sigmoid", ["images"], ["b"]),
        helper.make_node("Identity", ["b"], ["b2"]),
        helper.make_node("Sum", ["images", "a", "b2"], ["s"]),
        helper.make_node("Dropout", ["s"], ["logits"]),
    ]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_sum_to_add_and_identity_removal_keep_outputs():
    model = _sum_model()
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    before = _run(model, x)
    counts = run_passes(model)
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert "Sum" not in ops and "Identity" not in ops and "Dropout" not in ops
    assert ops.count("Add") == 2 and counts["sum_to_add"] == 1
    assert model.graph.output[0].name == "logits"
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-6)
