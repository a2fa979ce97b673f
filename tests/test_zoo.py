"""The zoo models are what they claim to be: they run in ONNX Runtime, depend on their input, and contain the ops
(and op attributes) they exist to exercise. The first test to run builds the zoo if the cache lacks it (~1 min)."""

from __future__ import annotations

import json
import sys
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

from tests.zoo import (
    EXPORT_SCRIPT, INPUT_NAME, INPUT_SHAPES, OUTPUT_NAME, SEQ_INPUTS, SEQ_ZOO, ZOO, ZooBuildError, _run, venv_dir, zoo_dir, zoo_input,
    zoo_model, seq_inputs, DYNAMIC_INPUTS,
)

# op types each model must contain; a tuple means "any one of these" (Gelu only exists from opset 20)
EXPECTED_OPS = {
    "mobilenet_v2": ["Conv", "Clip", "Add", "GlobalAveragePool", "Gemm"],
    "mobilenet_v3_small": ["Conv", "HardSwish", "HardSigmoid", "Relu", "Mul", "GlobalAveragePool", "Gemm"],
    "efficientnet_b0": ["Conv", "Sigmoid", "Mul", "Add", "GlobalAveragePool", "Gemm"],
    "resnet18": ["Conv", "MaxPool", "Relu", "Add", "GlobalAveragePool", "Gemm"],
    # channel shuffle = Reshape/Transpose/Reshape; torch's chunk exports as shape arithmetic + Slice
    "shufflenet_v2_x1_0": ["Conv", "Slice", "Concat", "Reshape", "Transpose", "ReduceMean", "MaxPool", "Gemm"],
    "squeezenet1_1": ["Conv", "Concat", "MaxPool", "Relu", "GlobalAveragePool"],
    "transformer_block": ["MatMul", ("LayerNormalization", "ReduceMean"), "Softmax", ("Erf", "Gelu"), "Transpose",
                          "Reshape"],
    "detection_head": ["Conv", "Resize", "Split", "Sigmoid", "Concat", "MaxPool", "Transpose", "Reshape"],
}
DEPTHWISE = {"mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2_x1_0"}


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _load(name: str) -> onnx.ModelProto:
    return onnx.load(str(zoo_model(name)))


def test_zoo_lists_every_model_of_the_export_script():
    assert set(EXPECTED_OPS) == set(ZOO) and len(ZOO) == 8
    with pytest.raises(KeyError, match="unknown zoo model"):
        zoo_model("mobilenet_v4")


@pytest.mark.parametrize("name", ZOO)
def test_ops_and_io(name):
    model = _load(name)
    onnx.checker.check_model(model)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [17]
    assert [i.name for i in model.graph.input] == [INPUT_NAME]
    assert [o.name for o in model.graph.output] == [OUTPUT_NAME]
    dims = tuple(d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim)
    assert dims == INPUT_SHAPES[name]
    hist = Counter(n.op_type for n in model.graph.node)
    for want in EXPECTED_OPS[name]:
        options = want if isinstance(want, tuple) else (want,)
        assert any(hist[o] for o in options), f"{name} lacks {want}: {dict(hist)}"
    if name in DEPTHWISE:  # grouped convs with one channel per group
        inits = {t.name: t for t in model.graph.initializer}
        assert any(_attrs(n).get("group", 1) > 1 and inits[n.input[1]].dims[1] == 1
                   for n in model.graph.node if n.op_type == "Conv")


def test_detection_head_resize_modes():
    resizes = [_attrs(n) for n in _load("detection_head").graph.node if n.op_type == "Resize"]
    modes = {(r["mode"].decode(), r["coordinate_transformation_mode"].decode()) for r in resizes}
    # nn.Upsample(nearest) and nn.Upsample(bilinear, align_corners=False)
    assert modes == {("nearest", "asymmetric"), ("linear", "half_pixel")}


def test_squeezenet_uses_ceil_mode_pooling():
    pools = [_attrs(n) for n in _load("squeezenet1_1").graph.node if n.op_type == "MaxPool"]
    assert len(pools) == 3 and all(p.get("ceil_mode") == 1 for p in pools)


def test_efficientnet_has_5x5_depthwise():
    kernels = {tuple(_attrs(n)["kernel_shape"]) for n in _load("efficientnet_b0").graph.node if n.op_type == "Conv"}
    assert {(1, 1), (3, 3), (5, 5)} <= kernels


@pytest.mark.parametrize("name", ZOO)
def test_runs_in_onnxruntime_and_depends_on_input(name):
    sess = ort.InferenceSession(str(zoo_model(name)), providers=["CPUExecutionProvider"])
    (o1,), (o2,) = (sess.run(None, {INPUT_NAME: zoo_input(name, seed)}) for seed in (0, 1))
    assert np.isfinite(o1).all() and np.isfinite(o2).all()
    assert 0 < np.abs(o1).max() < 1e4  # fp16 backends must be able to represent it
    # two inputs give clearly different outputs (all-constant weights would give ~0 here)
    rel = np.linalg.norm(o1 - o2) / max(np.linalg.norm(o1), np.linalg.norm(o2))
    assert rel > 1e-2, f"{name}: outputs of two inputs differ by only {rel:.2e}"


def test_build_record_has_sane_activations_and_sizes():
    zoo_model(ZOO[0])
    info = json.loads((zoo_dir() / "build.json").read_text())
    by_name = {m["name"]: m for m in info["models"] if m["name"] in ZOO}
    assert set(by_name) == set(ZOO) and {m["name"] for m in info["models"]} == set(ZOO) | set(SEQ_ZOO) | set(DYNAMIC_INPUTS)
    for name, m in by_name.items():
        assert tuple(m["input"]) == INPUT_SHAPES[name]
        assert 1 < m["max_abs_activation"] < 1e4  # BN calibration keeps a trained net's range
        assert m["bytes"] == zoo_model(name).stat().st_size


def test_export_is_deterministic(tmp_path):
    ref = zoo_model("transformer_block")
    out = _run([str(venv_dir() / "bin" / "python"), "-I", str(EXPORT_SCRIPT), str(tmp_path), "transformer_block"],
               "re-export")
    assert json.loads(out)["name"] == "transformer_block"
    assert (tmp_path / "transformer_block.onnx").read_bytes() == ref.read_bytes()


def test_failed_step_raises_with_the_command_output():
    with pytest.raises(ZooBuildError, match=r"could not do it \(exit 3\).*boom"):
        _run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"], "do it")
    with pytest.raises(ZooBuildError, match="could not start"):
        _run(["/nonexistent/python"], "start")


SEQ_EXPECTED_OPS = {
    "text_encoder": ["Gather", "LayerNormalization", "Erf", "Equal", "Where", "Expand", "ReduceSum", "Softmax"],
    "streaming_vad": ["If", "LSTM", "GRU", "Sigmoid"],
    "speech_encoder": ["Conv", "LayerNormalization", "Erf", "Softmax", "MatMul"],
    "detr_head": ["Conv", "LayerNormalization", "Softmax", "MatMul", "Sigmoid"],
    "decoder_step": ["Gather", "Concat", "LayerNormalization", "Softmax", "Erf"],
}


@pytest.mark.parametrize("name", SEQ_ZOO)
def test_sequence_models_io_ops_and_input_dependence(name):
    model = onnx.load(str(zoo_model(name)))
    onnx.checker.check_model(model)
    inputs, outputs = SEQ_INPUTS[name]
    assert [i.name for i in model.graph.input] == list(inputs)
    assert [o.name for o in model.graph.output] == outputs
    hist = Counter(n.op_type for n in model.graph.node)
    assert all(hist[op] for op in SEQ_EXPECTED_OPS[name]), dict(hist)
    sess = ort.InferenceSession(str(zoo_model(name)), providers=["CPUExecutionProvider"])
    o1, o2 = (sess.run(None, seq_inputs(name, seed)) for seed in (0, 1))
    for a, b in zip(o1, o2):
        assert np.isfinite(a).all() and 0 < np.abs(a).max() < 1e4
    rel = np.linalg.norm(o1[0] - o2[0]) / max(np.linalg.norm(o1[0]), np.linalg.norm(o2[0]))
    assert rel > 1e-3, f"{name}: outputs of two inputs differ by only {rel:.2e}"
