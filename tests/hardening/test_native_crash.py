"""Issue 21: a native crash (abort, segfault) in one target's lowering or validation fails that target with the
signal and the stage named; the other targets are still built, with their manifest and reports."""

from __future__ import annotations

import subprocess
import sys

import onnx
import pytest

from tests.hardening.models import cnn
from tests.hardening.util import REPO, assert_one_whole_build, env


@pytest.mark.parametrize("step,sig", [("validate", "SIGABRT"), ("lower", "SIGSEGV")])
def test_crash_in_one_target_is_that_targets_failure(tmp_path, step, sig):
    # main: the whole --target all process died (exit -6/-11): no manifest, no report, no other target
    model = tmp_path / "m.onnx"
    onnx.save(cnn(), str(model))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(REPO / "tests/hardening/crash_script.py"), "build", str(model),
                        "--target", "all", "--out", str(out), "--latency", "off"],
                       capture_output=True, text=True, env={**env(), "EDGEC_TEST_CRASH": f"{step}:{sig}"},
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 70, r.stderr
    assert f"android: internal error: android: the worker process running its {step} step died (signal {sig})" \
        in " ".join(r.stderr.split()), r.stderr
    assert "Traceback" not in r.stderr
    manifest = assert_one_whole_build(out)
    assert sorted(a["target"] for a in manifest["artifacts"]) == ["ios", "ort-mobile"]
    assert all(a["numerics"]["passed"] for a in manifest["artifacts"])
    assert [e["target"] for e in manifest["errors"]] == ["android"]


def _crash_build(tmp_path, step: str, sig: str, *args) -> tuple[subprocess.CompletedProcess, object]:
    model = tmp_path / "m.onnx"
    onnx.save(cnn(), str(model))
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, str(REPO / "tests/hardening/crash_script.py"), "build", str(model),
                        "--out", str(out), "--latency", "off", *args],
                       capture_output=True, text=True, env={**env(), "EDGEC_TEST_CRASH": f"{step}:{sig}"},
                       cwd=tmp_path, timeout=300)
    return r, out


@pytest.mark.parametrize("step,sig", [("lower", "SIGSEGV"), ("validate", "SIGABRT")])
def test_crash_in_a_single_target_build_is_a_clear_failure(tmp_path, step, sig):
    # before: a single-target build ran in the process itself: it died with the signal (exit -11/-6), no message
    r, out = _crash_build(tmp_path, step, sig, "--target", "android")
    assert r.returncode == 70, (r.returncode, r.stderr)
    text = " ".join(r.stderr.split())
    assert f"android: the worker process running its {step} step died (signal {sig})" in text, r.stderr
    assert "Try building this target with --no-validate" in text and "Traceback" not in r.stderr
    assert not out.exists()  # nothing was built: no folder left behind


def test_crash_in_a_quantized_target_is_that_targets_failure(tmp_path):
    # before: quantized targets were lowered in the build's own process: the segfault killed the whole build
    r, out = _crash_build(tmp_path, "lower", "SIGSEGV", "--target", "all", "--quantize", "int8",
                          "--calibration", "random")
    assert r.returncode == 70, (r.returncode, r.stderr)
    assert "android: the worker process running its lower step died (signal SIGSEGV)" in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr
    manifest = assert_one_whole_build(out)
    assert sorted(a["target"] for a in manifest["artifacts"]) == ["ios", "ort-mobile"]
    assert all(a["numerics"]["passed"] for a in manifest["artifacts"])
    # the accuracy check ran in the worker: its per-target outputs came back for the cross-target table
    assert manifest["cross_target"]["targets"] == ["ios", "ort-mobile"]


def test_worker_leaves_no_temporary_file(tmp_path):
    # coremltools removes its temporary .mlpackage copies in an atexit hook, which a forked worker never runs
    # (found by the fuzz: lstm:1 left tmp*.mlpackage in TMPDIR)
    model, tmp = tmp_path / "m.onnx", tmp_path / "tmp"
    onnx.save(cnn(), str(model))
    tmp.mkdir()
    r = subprocess.run([sys.executable, "-m", "edgec.cli", "build", str(model), "--target", "ios", "--out",
                        str(tmp_path / "out"), "--latency", "off"], capture_output=True, text=True,
                       env={**env(), "TMPDIR": str(tmp)}, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp.iterdir() if p.name != ".ses") == []
