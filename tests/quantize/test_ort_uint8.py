"""ORT int8 artifacts carry uint8 activations (zero point + 128): the same values as the shared int8 QDQ graph."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgec.config.loader import load_profile
from edgec.quantize.int8 import uint8_activations
from edgec.quantize.stage import quantize

from .helpers import classifier, npy_folder, write_profile

pytestmark = pytest.mark.filterwarnings("ignore::edgec.quantize.calibration.CalibrationWarning")


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    # no fusion: Q and DQ run as the reference kernels, so the comparison is of the graph's arithmetic
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def test_uint8_activations_same_values_and_types(tmp_path):
    calib = npy_folder(tmp_path / "calib", [1, 3, 32, 32], 8)
    profile = load_profile(str(write_profile(tmp_path, source=str(calib), samples=6, sensitivity=0)))
    qdq, _ = quantize(classifier(), profile)
    u8, converted = uint8_activations(qdq)
    q_nodes = [n for n in u8.graph.node if n.op_type == "QuantizeLinear"]
    assert converted == len(q_nodes) > 0
    inits = {t.name: t for t in u8.graph.initializer}
    for n in q_nodes:
        assert inits[n.input[2]].data_type == onnx.TensorProto.UINT8
    # weights stay int8
    weights = [n for n in u8.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert weights and all(inits[n.input[0]].data_type in (onnx.TensorProto.INT8, onnx.TensorProto.INT32)
                           for n in weights)
    onnx.checker.check_model(u8)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = rng.standard_normal((1, 3, 32, 32)).astype(np.float32)
        np.testing.assert_array_equal(_run(u8, x), _run(qdq, x))


def test_ort_int8_artifact_is_uint8(tmp_path):
    from edgec import api

    from .helpers import save

    calib = npy_folder(tmp_path / "calib", [1, 3, 32, 32], 10)
    prof = write_profile(tmp_path, source=str(calib), samples=6, sensitivity=0)
    outcome = api.build(save(classifier(), tmp_path / "c.onnx"),
                        api.BuildOptions(target="ort-mobile", profile=str(prof), out_dir=tmp_path / "out"))
    assert outcome.ok
    a = outcome.result.artifacts[0]
    assert any("as uint8" in n for n in a.artifact.notes)
    s = ort.InferenceSession(str(a.final_path), providers=["CPUExecutionProvider"])
    assert s.run(None, {"x": np.zeros((1, 3, 32, 32), np.float32)})[0].shape == (1, 20)
