"""int8 checked with the device's arithmetic on any x86 CPU (edgec.runtimes.ort_exact).

The conv below is built so that two u8*s8 products add past int16 (255 * 127 * 2 = 64770): on CPUs with AVX2 but
no VNNI, ONNX Runtime's default U8S8 kernels saturate there and the output halves. edgec's reference (an ONNX
graph) and its run of an .ort artifact must give the int32 result on every CPU, as an ARM phone does. On a VNNI
host these pass with or without the fix; under `qemu-x86_64 -cpu Haswell` (AVX2, no VNNI) they fail without it.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec.lower.ort.convert import to_ort_format
from edgec.runtimes import ort_exact
from edgec.runtimes.host_ort import OrtRunner

SHAPE = [1, 8, 6, 6]


def _saturating_conv() -> onnx.ModelProto:
    """uint8 activations (scale 0.01) x int8 weights near +127 (scale 0.01), 3x3 conv over 8 channels."""
    rng = np.random.default_rng(0)
    w = rng.integers(110, 128, size=(4, 8, 3, 3)).astype(np.int8)
    c = {"xs": np.array(0.01, np.float32), "xz": np.array(0, np.uint8), "w": w,
         "ws": np.array(0.01, np.float32), "wz": np.array(0, np.int8),
         "ys": np.array(1.0, np.float32), "yz": np.array(0, np.uint8)}
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"]),
             helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("QuantizeLinear", ["c", "ys", "yz"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "ys", "yz"], ["y"])]
    g = helper.make_graph(nodes, "sat", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in c.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _exact(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """The int32 result in numpy: (sum of q_x * q_w) * scales, requantized with ORT's rounding."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    qx = np.clip(np.rint(x / 0.01), 0, 255).astype(np.int64)
    qx = np.pad(qx, ((0, 0), (0, 0), (1, 1), (1, 1)))
    w = inits["w"].astype(np.int64)
    acc = np.zeros((1, 4, 6, 6), np.int64)
    for i in range(3):
        for j in range(3):
            acc += np.einsum("nchw,oc->nohw", qx[:, :, i:i + 6, j:j + 6], w[:, :, i, j])
    return np.clip(np.rint(acc * 1e-4), 0, 255).astype(np.float32)


def _input() -> np.ndarray:
    return np.random.default_rng(1).uniform(2.3, 2.55, SHAPE).astype(np.float32)


def test_reference_accumulates_int8_exactly():
    model, x = _saturating_conv(), _input()
    want = _exact(model, x)
    for level in ("all", "extended", "disable"):
        got = OrtRunner(model, level=level).run({"x": x})["y"]
        assert np.max(np.abs(got - want)) <= 1.0, level  # one output step: float vs integer requantization


def test_ort_artifact_runs_with_exact_int8(tmp_path):
    model, x = _saturating_conv(), _input()
    path = tmp_path / "m.ort"
    to_ort_format(model, path, "all", "fixed", "ort-mobile")
    got = OrtRunner(path, level="disable").run({"x": x})["y"]
    assert np.max(np.abs(got - _exact(model, x))) <= 1.0


def test_ort_file_read_back_and_widened_computes_the_same(tmp_path, monkeypatch):
    """The saturating-host path, exercised on any host: the .ort's graph read back as ONNX, int8 weights widened
    to uint8, gives what the .ort itself gives on an exact CPU (and the int32 result)."""
    model, x = _saturating_conv(), _input()
    path = tmp_path / "m.ort"
    to_ort_format(model, path, "all", "fixed", "ort-mobile")
    twin = ort_exact.ort_to_onnx(path.read_bytes())
    assert any(n.op_type == "QLinearConv" for n in twin.graph.node)  # the file's fused kernel, not the QDQ graph
    assert ort_exact.has_int8_weights(twin)
    monkeypatch.setattr(ort_exact, "u8s8_saturates", lambda: True)
    runner = OrtRunner(path, level="disable")
    assert "widened to uint8" in runner.kernels and "exact int8" in runner.name
    got = runner.run({"x": x})["y"]
    assert np.max(np.abs(got - _exact(model, x))) <= 1.0
    widened = ort_exact.exact_twin(twin)[0]
    assert not ort_exact.has_int8_weights(widened)


def test_probe_matches_this_cpu():
    """The probe's answer agrees with what the default kernels do on the saturating conv."""
    import onnxruntime as ort

    model, x = _saturating_conv(), _input()
    so = ort.SessionOptions()
    so.log_severity_level = 3
    plain = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    off = np.max(np.abs(plain.run(None, {"x": x})[0] - _exact(model, x)))
    assert (off > 1.0) == ort_exact.u8s8_saturates(), off
