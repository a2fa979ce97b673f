"""--input-value / profile `inputs.<name>.value`: the input becomes a constant before simplification, the artifact
loses it, the manifest records it, and validation feeds it to the original model."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from edgec import api
from edgec.cli import app
from edgec.errors import ShapeError, UsageError
from edgec.graph.values import fix_input_values, parse_input_value_flags


def _if_model(path):
    """y = tanh(x * 2 if sr == 16000 else x * 3): an If on a scalar sample-rate input."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    sr = helper.make_tensor_value_info("sr", TensorProto.INT64, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    then_g = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])])
    else_g = helper.make_graph([helper.make_node("Mul", ["x", "three"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 4])])
    nodes = [helper.make_node("Equal", ["sr", "rate"], ["is16k"]),
             helper.make_node("If", ["is16k"], ["y0"], then_branch=then_g, else_branch=else_g),
             helper.make_node("Tanh", ["y0"], ["y"])]
    inits = [helper.make_tensor("rate", TensorProto.INT64, [], [16000]),
             helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
             helper.make_tensor("three", TensorProto.FLOAT, [], [3.0])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x, sr], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_parse_flags():
    assert parse_input_value_flags(["sr=16000", "m=1,0,1", "t=0.5"]) == {"sr": 16000, "m": [1, 0, 1], "t": 0.5}
    for bad in ("sr", "=3", "sr=", "sr=abc"):
        with pytest.raises(UsageError, match="--input-value"):
            parse_input_value_flags([bad])


def test_fix_values_dtype_shape_and_errors(tmp_path):
    model = onnx.load(str(_if_model(tmp_path / "m.onnx")))
    fixed = fix_input_values(model, {"sr": 8000})
    assert fixed["sr"].dtype == np.int64 and fixed["sr"].shape == () and int(fixed["sr"]) == 8000
    assert [i.name for i in model.graph.input] == ["x"]
    model = onnx.load(str(tmp_path / "m.onnx"))
    with pytest.raises(ShapeError, match="unknown input"):
        fix_input_values(model, {"rate": 1})
    with pytest.raises(ShapeError, match="element"):
        fix_input_values(model, {"x": [1, 2]})
    with pytest.raises(UsageError, match="not an integer"):
        fix_input_values(model, {"sr": 0.5})


@pytest.mark.parametrize("target", ["ort-mobile", "android", "ios"])
def test_artifact_lost_the_input_and_matches(target, tmp_path):
    path = _if_model(tmp_path / "m.onnx")
    out = tmp_path / "out"
    outcome = api.build(path, api.BuildOptions(target=target, out_dir=out, input_values=["sr=16000"]))
    assert outcome.ok, outcome.result.artifacts[0].numerics
    art = json.loads((out / "manifest.json").read_text())["artifacts"][0]
    assert art["details"]["input_values"] == {"sr": 16000}
    assert any("sr=16000 (int64)" in n for n in art["notes"])
    assert "sr=16000" in (out / "report.md").read_text()
    (metrics,) = art["numerics"]["outputs"].values()
    assert metrics["cosine"] > 0.9999
    artifact = out / art["path"]
    if target == "ort-mobile":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(artifact))
        assert [i.name for i in sess.get_inputs()] == ["x"]
        x = np.arange(4, dtype=np.float32).reshape(1, 4) / 4
        np.testing.assert_allclose(sess.run(None, {"x": x})[0], np.tanh(2 * x), rtol=1e-6)
    elif target == "android":
        from ai_edge_litert.interpreter import Interpreter

        assert [d["name"] for d in Interpreter(str(artifact)).get_input_details()] == ["x"]


def test_profile_value_and_cli_help(tmp_path):
    path = _if_model(tmp_path / "m.onnx")
    prof = tmp_path / "p.yaml"
    from edgec.config.loader import BUILTIN_PROFILES

    text = (BUILTIN_PROFILES / "raspberry-pi-5.yaml").read_text().replace("name: raspberry-pi-5", "name: p")
    prof.write_text(text + "inputs:\n  sr:\n    value: 8000\n")
    out = tmp_path / "out"
    outcome = api.build(path, api.BuildOptions(target="ort-mobile", profile=str(prof), out_dir=out))
    assert outcome.ok
    art = json.loads((out / "manifest.json").read_text())["artifacts"][0]
    assert art["details"]["input_values"] == {"sr": 8000}
    result = CliRunner().invoke(app, ["build", "--help"], env={"COLUMNS": "200"})
    assert "--input-value" in result.output


def test_validate_command_feeds_the_fixed_value(tmp_path):
    path = _if_model(tmp_path / "m.onnx")
    out = tmp_path / "out"
    assert api.build(path, api.BuildOptions(target="android", out_dir=out, input_values=["sr=8000"])).ok
    r = api.validate_artifact(path, out / "m.tflite", input_values=["sr=8000"])
    assert r.passed
    wrong = api.validate_artifact(path, out / "m.tflite", input_values=["sr=16000"])  # 2x vs 3x: must not pass
    assert not wrong.passed
    result = CliRunner().invoke(app, ["validate", str(path), str(out / "m.tflite"), "--input-value", "sr=8000"])
    assert result.exit_code == 0, result.output
