"""The CLI contract: exit codes, one-paragraph errors, no traceback, no half-written artifact."""

import json

import pytest

from edgec.cli import app

from conftest import files_in


def _one_paragraph(text):
    text = text.strip()
    assert text and "Traceback" not in text
    assert "\n\n" not in text
    return text


def test_sample_build(tmp_path, cli):
    r = cli.invoke(app, ["build", "--sample", "squeezenet", "--target", "ort-mobile", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert {"squeezenet.ort", "manifest.json", "report.md"} <= set(files_in(tmp_path))


def test_build_json_is_the_manifest(conv_model_path, tmp_path, cli):
    r = cli.invoke(app, ["build", str(conv_model_path), "--target", "ort-mobile", "--out", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    for key in ("edgec_version", "model", "artifacts"):
        assert key in data
    assert set(data["model"]) >= {"path", "sha256", "opset", "inputs", "outputs"}
    art = data["artifacts"][0]
    assert set(art) >= {"target", "profile", "format", "path", "sha256", "bytes", "precision", "numerics", "latency"}
    assert set(art["numerics"]) >= {"ran_on", "outputs", "passed"}
    assert set(art["latency"]) >= {"mode", "median_ms", "p90_ms", "runs", "threads", "budget_ms", "passed"}


BAD_INPUTS = {
    "truncated": (lambda p, good: p.write_bytes(good.read_bytes()[:200]), 4, "truncated"),
    "text": (lambda p, good: p.write_text("name,value\n1,2\n"), 4, "not a readable ONNX model"),
    "empty": (lambda p, good: p.write_bytes(b""), 4, "empty"),
}


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_model_file(kind, conv_model_path, tmp_path, cli):
    make, code, words = BAD_INPUTS[kind]
    bad = tmp_path / f"{kind}.onnx"
    make(bad, conv_model_path)
    out = tmp_path / "out"
    r = cli.invoke(app, ["build", str(bad), "--target", "ort-mobile", "--out", str(out)])
    assert r.exit_code == code, r.output
    msg = _one_paragraph(r.stderr)
    assert str(bad) in msg and words in msg
    assert files_in(out) == []


def test_unresolved_dynamic_input(dynamic_model_path, tmp_path, cli):
    out = tmp_path / "out"
    r = cli.invoke(app, ["build", str(dynamic_model_path), "--target", "ort-mobile", "--out", str(out)])
    assert r.exit_code == 5
    msg = _one_paragraph(r.stderr)
    assert "'images'" in msg and "--input-shape images=" in msg
    assert files_in(out) == []


def test_bad_profile_yaml(conv_model_path, tmp_path, cli):
    profile = tmp_path / "broken.yaml"
    profile.write_text("name: x\ntarget: ort-mobile\nhardware:\n  cpu: {cores: 2, peak_gflops_fp32: 1}\n"
                       "  memory_bandwidth_gbps: 1\nruntime:\n  thread: 4\n")
    out = tmp_path / "out"
    r = cli.invoke(app, ["build", str(conv_model_path), "--profile", str(profile), "--out", str(out)])
    assert r.exit_code == 3
    msg = _one_paragraph(r.stderr)
    assert f"{profile}:7" in msg and "runtime.thread" in msg
    assert files_in(out) == []


def test_unwritable_output(conv_model_path, tmp_path, cli):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = cli.invoke(app, ["build", str(conv_model_path), "--target", "ort-mobile", "--out", str(blocker / "sub")])
    assert r.exit_code == 9
    assert "output folder" in _one_paragraph(r.stderr)


def test_debug_shows_traceback(tmp_path, cli):
    r = cli.invoke(app, ["build", str(tmp_path / "missing.onnx"), "--debug"])
    assert r.exit_code != 0 and r.exception is not None


def test_unknown_target(conv_model_path, tmp_path, cli):
    r = cli.invoke(app, ["build", str(conv_model_path), "--target", "symbian", "--out", str(tmp_path)])
    assert r.exit_code == 3 and "symbian" in r.stderr


def test_check(conv_model_path, dynamic_model_path, cli):
    r = cli.invoke(app, ["check", str(dynamic_model_path), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["opset"] == 13 and data["inputs"][0]["shape"] == ["batch", 3, 16, 16]
    assert data["op_histogram"]["Conv"] == 1 and "ort-mobile" in data["support"]
    r = cli.invoke(app, ["check", str(conv_model_path)])
    assert r.exit_code == 0 and "op histogram" in r.stdout and "BatchNormalization" in r.stdout


def test_profiles_and_targets_lists(cli):
    r = cli.invoke(app, ["profiles", "--json"])
    assert r.exit_code == 0
    assert {"pixel-8", "iphone-15-pro", "raspberry-pi-5", "jetson-orin-nano", "host"} <= {p["name"] for p in json.loads(r.stdout)}
    r = cli.invoke(app, ["targets", "--json"])
    assert {"ios", "android", "ort-mobile"} <= {t["name"] for t in json.loads(r.stdout)}
    r = cli.invoke(app, ["targets"])
    assert r.exit_code == 0 and "ort-mobile" in r.stdout


def test_validate_existing_artifact(conv_model_path, tmp_path, cli):
    out = tmp_path / "out"
    assert cli.invoke(app, ["build", str(conv_model_path), "--target", "ort-mobile", "--out", str(out)]).exit_code == 0
    r = cli.invoke(app, ["validate", str(conv_model_path), str(out / "conv.ort")])
    assert r.exit_code == 0, r.output
    assert "logits" in r.stdout and "pass" in r.stdout


def test_validate_catches_an_artifact_of_another_model(conv_model_path, tmp_path, cli):
    """An .ort built from different weights must fail numerics against this model."""
    import onnx

    from conftest import conv_model

    other = tmp_path / "other.onnx"
    onnx.save(conv_model(seed=7), str(other))
    out = tmp_path / "out"
    assert cli.invoke(app, ["build", str(other), "--target", "ort-mobile", "--out", str(out)]).exit_code == 0
    r = cli.invoke(app, ["validate", str(conv_model_path), str(out / "other.ort")])
    assert r.exit_code == 11 and "validation failed" in r.stderr


def test_validate_unknown_artifact_kind(conv_model_path, tmp_path, cli):
    bogus = tmp_path / "model.bin"
    bogus.write_bytes(b"x")
    r = cli.invoke(app, ["validate", str(conv_model_path), str(bogus)])
    assert r.exit_code == 2 and "unknown artifact kind" in r.stderr


def test_doctor(cli):
    r = cli.invoke(app, ["doctor"])
    assert r.exit_code == 0 and "onnxruntime" in r.stdout and "CoreML predict" in r.stdout
