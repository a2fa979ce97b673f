"""`edgec validate` runs the build's validation stage: it reads the manifest next to the artifact (shapes,
precision, gates, validation data, quantization's held-out samples), reproduces the build's verdict and metrics,
and leaves the build folder byte-identical (--out: its results go there)."""

from __future__ import annotations

import hashlib

import pytest

from edgec import api


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_validate_reproduces_the_build(dynamic_model_path, tmp_path, quantize):
    out = tmp_path / "out"
    outcome = api.build(dynamic_model_path, api.BuildOptions(
        target="all", out_dir=out, latency="estimate", quantize=quantize,
        calibration="random" if quantize else None, input_shapes=["images=2,3,16,16"]))
    assert not outcome.failures and outcome.ok
    before = _digest(out)
    for a in outcome.result.artifacts:
        # no --input-shape: the model's batch is dynamic, the manifest says what the artifact was built at
        r = api.validate_artifact(dynamic_model_path, a.final_path)
        assert r.artifact.precision == a.artifact.precision
        assert r.numerics.passed == a.numerics.passed and r.numerics.thresholds == a.numerics.thresholds
        for name, m in a.numerics.outputs.items():
            got = r.numerics.outputs[name]
            assert got.cosine == pytest.approx(m.cosine, abs=1e-9), (a.artifact.target, name)
            assert got.max_abs == pytest.approx(m.max_abs, rel=1e-6, abs=1e-9), (a.artifact.target, name)
        assert r.numerics.data == a.numerics.data
        assert r.latency.median_ms == pytest.approx(a.latency.median_ms)  # the same (simplified) graph costed
    assert _digest(out) == before
    check = tmp_path / "check"
    api.validate_artifact(dynamic_model_path, outcome.result.artifacts[0].final_path, out_dir=check)
    assert (check / "validation.json").is_file()
    assert _digest(out) == before
