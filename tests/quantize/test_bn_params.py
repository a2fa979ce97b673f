"""Standalone BatchNormalization keeps float parameters in the int8 graph (CoreML needs them constant)."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.config.loader import load_profile
from edgec.quantize.stage import quantize

from .helpers import npy_folder, write_profile

pytestmark = pytest.mark.filterwarnings("ignore::edgec.quantize.calibration.CalibrationWarning")


def _bn_model() -> onnx.ModelProto:
    """Conv -> Relu -> BN (not foldable into the conv: a Relu sits between) -> Conv -> GAP."""
    rng = np.random.default_rng(0)
    c = 16
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, s).astype(np.float32), n) for n, s in
             (("w1", (c, 3, 3, 3)), ("w2", (c, c, 3, 3)))]
    inits += [numpy_helper.from_array(v.astype(np.float32), n) for n, v in (
        ("g", rng.uniform(0.5, 2, c)), ("b", rng.normal(0, 0.2, c)), ("m", rng.normal(0, 0.3, c)),
        ("v", rng.uniform(0.5, 2, c)))]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("BatchNormalization", ["r1", "g", "b", "m", "v"], ["n1"], name="bn"),
             helper.make_node("Conv", ["n1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c2"], ["y"], name="gap")]
    graph = helper.make_graph(nodes, "bn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 1, 1])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_bn_parameters_stay_float_constants(tmp_path):
    calib = npy_folder(tmp_path / "c", [1, 3, 16, 16], 8)
    profile = load_profile(str(write_profile(tmp_path, source=str(calib), samples=6, sensitivity=0)))
    qdq, _ = quantize(_bn_model(), profile)
    inits = {t.name: t for t in qdq.graph.initializer}
    bns = [n for n in qdq.graph.node if n.op_type == "BatchNormalization"]
    assert len(bns) == 1
    for name in bns[0].input[1:]:
        assert name in inits and inits[name].data_type == TensorProto.FLOAT, name
    # the activation around it is still quantized, and the conv weights are int8
    producer = {o: n for n in qdq.graph.node for o in n.output}
    assert producer[bns[0].input[0]].op_type == "DequantizeLinear"
    assert any(t.data_type == TensorProto.INT8 and len(t.dims) == 4 for t in qdq.graph.initializer)
    import onnxruntime as ort

    x = np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)
    ref = ort.InferenceSession(_bn_model().SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = ort.InferenceSession(qdq.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    a, b = ref[0].ravel(), got[0].ravel()
    assert a @ b / np.linalg.norm(a) / np.linalg.norm(b) > 0.999
