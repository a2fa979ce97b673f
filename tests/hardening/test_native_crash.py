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
