"""quantize.activations: int16 ("16x8"): the stage writes one opset-21 QDQ graph with int8 weights and symmetric
int16 activations; every target lowers it (TFLite 16x8 kernels, ORT's 16-bit Q/DQ, CoreML float activations with
8-bit weights) and validates against ONNX Runtime on the float original."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from ai_edge_litert import schema_py_generated as S
from onnx import TensorProto, numpy_helper

from edgec import api
from edgec.cli import app
from tests.tflite.test_int8 import _tensor_types

from .helpers import classifier, save, write_profile

pytestmark = pytest.mark.filterwarnings("ignore::edgec.quantize.calibration.CalibrationWarning")

INT16 = "  activations: int16\n"


def test_int16_activations_build_and_validate_on_every_target(tmp_path):
    model = save(classifier(), tmp_path / "clf.onnx")
    prof = write_profile(tmp_path, mode="int8", source="random", samples=8, quantize_extra=INT16)
    outcome = api.build(model, api.BuildOptions(target="all", profile=str(prof), out_dir=tmp_path / "out"))
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for entry in manifest["artifacts"]:
        assert entry["numerics"]["passed"], entry
        assert entry["details"]["quantize"]["activations"] == "int16"
        # no target runs 16-bit kernels by default: the latency estimate is float's, never int8's speedup
        assert entry["details"]["quantize"]["predicted_speedup"]["speedup"] <= 1.01, entry["details"]["quantize"]
        # int16 rounding is 256x finer than int8's: the artifact sits much closer to fp32 than int8 would
        assert entry["numerics"]["outputs"]["logits"]["cosine"] > 0.9995, (entry["target"], entry["numerics"])
    notes = {a.artifact.target: " ".join(a.artifact.notes) for a in outcome.result.artifacts}
    assert "int16 activations (16x8)" in notes["android"]
    assert "CoreML has no 16-bit activation ops" in notes["ios"]
    # android's default (tflite.int16_activations: float): float activations, int8 weights, no int16 tensor
    assert "int16 activations run float" in notes["android"]
    types = _tensor_types((tmp_path / "out" / "clf.tflite").read_bytes())
    assert all(S.TensorType.INT16 not in inputs for inputs in types.values()), types


def test_tflite_16x8_kernels_build_and_validate(tmp_path):
    model = save(classifier(), tmp_path / "clf.onnx")
    prof = write_profile(tmp_path, mode="int8", source="random", samples=8, quantize_extra=INT16,
                         extra="tflite: {int16_activations: kernels}\n")
    outcome = api.build(model, api.BuildOptions(target="android", profile=str(prof), out_dir=tmp_path / "out"))
    assert outcome.ok, outcome.result.artifacts[0].numerics.message
    assert outcome.result.artifacts[0].numerics.outputs["logits"].cosine > 0.9995
    types = _tensor_types((tmp_path / "out" / "clf.tflite").read_bytes())
    assert types["CONV_2D"][0] == types["FULLY_CONNECTED"][0] == S.TensorType.INT16


def test_stage_graph_is_opset_21_with_symmetric_int16_activations(tmp_path):
    from edgec.config.loader import load_profile
    from edgec.quantize.stage import quantize

    prof = load_profile(str(write_profile(tmp_path, mode="int8", source="random", samples=8, quantize_extra=INT16)))
    out, result = quantize(classifier(), prof)
    _check_qdq(out)
    assert result.summary()["activations"] == "int16"
    assert not any("input" in why and "float" in why for why in result.kept_float.values())  # no float stem


def _check_qdq(qdq: onnx.ModelProto) -> None:
    assert next(o.version for o in qdq.opset_import if o.domain in ("", "ai.onnx")) >= 21
    inits = {i.name: i for i in qdq.graph.initializer}
    acts = [n for n in qdq.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
    assert acts
    for q in acts:
        zp = inits[q.input[2]]
        assert zp.data_type == TensorProto.INT16 and not numpy_helper.to_array(zp).any(), q.name
    weights = [n for n in qdq.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
               and inits[n.input[0]].data_type != TensorProto.INT32]
    assert weights and all(inits[n.input[0]].data_type == TensorProto.INT8 for n in weights)
    assert np.all([n.domain in ("", "ai.onnx") for n in qdq.graph.node])


def test_unknown_activation_width_is_a_profile_error(tmp_path, cli):
    prof = write_profile(tmp_path, mode="int8", quantize_extra="  activations: int4\n")
    model = save(classifier(), tmp_path / "clf.onnx")
    r = cli.invoke(app, ["build", str(model), "--profile", str(prof), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "activations" in r.stderr and "Traceback" not in r.output + r.stderr
    assert not (tmp_path / "o").exists()


def test_auto_activations_try_int16_when_int8_cannot_meet_the_target(tmp_path):
    """The outlier model (test_target.py): its input's one int8 scale leaves the channels that matter ~0 levels,
    so with no node allowed float int8 cannot meet cosine 0.99; auto (the default) then tries int16 activations,
    whose 256x finer grid meets it, and says why."""
    from tests.quantize.test_target import _outlier_model

    model, cal = _outlier_model(tmp_path)
    prof = write_profile(tmp_path, source=str(cal), samples=32, target="{min_cosine: 0.99, max_float_nodes: 0}",
                         quantize_extra="  float_input_layers: false\n")
    outcome = api.build(model, api.BuildOptions(target="ort-mobile", out_dir=tmp_path / "out", profile=str(prof),
                                                latency="off"))
    assert outcome.ok, [f.error for f in outcome.failures]
    q = json.loads((tmp_path / "out" / "manifest.json").read_text())["artifacts"][0]["details"]["quantize"]
    assert q["activations"] == "int16" and q["target"]["float_nodes"] == []
    assert q["int8_shortfall"].startswith("reaches at best") and "every node int8" in q["int8_shortfall"]
    notes = " ".join(outcome.result.artifacts[0].artifact.notes)
    assert "int16 activations because int8 ones could not meet quantize.target" in notes, notes


def test_cannot_be_met_at_either_width_names_both(tmp_path, cli):
    from tests.quantize.test_target import _outlier_model

    model, cal = _outlier_model(tmp_path)
    prof = write_profile(tmp_path, source=str(cal), samples=32, target="{min_cosine: 0.9999999, max_float_nodes: 0}",
                         quantize_extra="  float_input_layers: false\n")
    r = cli.invoke(app, ["build", str(model), "--profile", str(prof), "--out", str(tmp_path / "o"), "--latency", "off"])
    text = " ".join(r.stderr.split())
    assert r.exit_code == 13, r.output + r.stderr
    assert "int8 weights with int16 activations reaches at best" in text and "(int8 activations first: reaches" in text
    assert "Traceback" not in text and not (tmp_path / "o").exists()


def _coarse_weights(folder):
    """A 1x1 Conv whose weights on input channel 0 are 60 and on the others ~N(0, 0.3), and calibration samples
    whose channel 0 is always 0: each output channel's int8 scale is set by a weight that never contributes, so the
    weights that do get a few levels."""
    from onnx import helper

    from .helpers import npy_folder

    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (8, 16, 1, 1)).astype(np.float32)
    w[:, 0] = 60.0
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], "coarse",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, 8])], [numpy_helper.from_array(w, "w")])
    cal = npy_folder(folder / "cal", [1, 16, 8, 8], 24)
    for f in cal.glob("*.npy"):
        x = np.load(f)
        x[:, 0] = 0.0
        np.save(f, x)
    return save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), folder / "coarse.onnx"), cal


def test_cannot_be_met_says_when_the_weights_hold_the_error(tmp_path, cli):
    """16-bit activations cannot help a graph whose 8-bit weights are the error: the message measures the same
    graph with every activation float and says so (on the outlier model, test_target.py, it says the activations
    hold it)."""
    model, cal = _coarse_weights(tmp_path)
    prof = write_profile(tmp_path, source=str(cal), samples=16, quantize_extra=INT16,
                         target="{min_cosine: 0.99, max_float_nodes: 0}")
    r = cli.invoke(app, ["build", str(model), "--profile", str(prof), "--out", str(tmp_path / "o"), "--latency", "off"])
    text = " ".join(r.stderr.split())
    assert r.exit_code == 13, r.output + r.stderr
    assert "With every activation float, its 8-bit weights alone reach" in text, text
    assert "the weights hold the error, and no activation width removes it" in text, text
    assert "Traceback" not in text and not (tmp_path / "o").exists()


def test_activation_width_with_another_mode_is_a_profile_error(tmp_path, cli):
    prof = write_profile(tmp_path, mode="int8-weights", quantize_extra=INT16)
    model = save(classifier(), tmp_path / "clf.onnx")
    r = cli.invoke(app, ["build", str(model), "--profile", str(prof), "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "quantize.activations is int16" in " ".join(r.stderr.split())
    assert "Traceback" not in r.output + r.stderr and not (tmp_path / "o").exists()


def test_int16_builds_are_byte_identical(tmp_path):
    model = save(classifier(), tmp_path / "clf.onnx")
    prof = write_profile(tmp_path, mode="int8", source="random", samples=8, quantize_extra=INT16,
                         extra="tflite: {int16_activations: kernels}\n")
    shas = [{a.artifact.target: a.sha256 for a in api.build(model, api.BuildOptions(
        target="all", profile=str(prof), out_dir=tmp_path / out, latency="off", validate=False)).result.artifacts}
        for out in ("a", "b")]
    assert shas[0] == shas[1] and len(shas[0]) == 3


def test_int16_ranges_have_headroom_past_the_calibration_data(tmp_path):
    """The model input's int16 scale covers INT16_HEADROOM x the largest calibration value (16 bits have steps to
    spare; values past the calibration data's range would otherwise saturate)."""
    from edgec.config.loader import load_profile
    from edgec.quantize.stage import INT16_HEADROOM, quantize

    from .helpers import npy_folder

    cal = npy_folder(tmp_path / "cal", [1, 3, 32, 32], 10)
    largest = max(float(np.abs(np.load(f)).max()) for f in sorted(cal.glob("*.npy"))[:8])  # the calibrated files
    prof = load_profile(str(write_profile(tmp_path, mode="int8", source=str(cal), samples=8, quantize_extra=INT16)))
    out, _ = quantize(classifier(), prof)
    inits = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
    q_in = next(n for n in out.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == out.graph.input[0].name)
    covered = float(inits[q_in.input[1]]) * 32767
    assert covered == pytest.approx(INT16_HEADROOM * largest, rel=0.01), (covered, largest)
