"""The latency section of report.md and the manifest's latency block, from a real estimate-mode build."""

from __future__ import annotations

import json

from edgec import api, samples


def test_estimate_build_report_and_manifest(tmp_path):
    outcome = api.build(samples.randomized("squeezenet"), api.BuildOptions(
        target="ort-mobile", profile="raspberry-pi-5", out_dir=tmp_path, model_name="sq", latency="estimate",
        budget_ms=1.0))
    assert not outcome.ok  # ~12 ms estimated against a 1 ms budget
    lat = json.loads((tmp_path / "manifest.json").read_text())["artifacts"][0]["latency"]
    assert lat["mode"] == "estimate" and lat["passed"] is False
    assert lat["details"]["table"] == "sq.ort.latency-ops.csv" and (tmp_path / "sq.ort.latency-ops.csv").exists()
    top = lat["details"]["estimate"]["top_ops"]
    assert len(top) == 10 and top[0]["ms"] >= top[-1]["ms"]
    report = (tmp_path / "report.md").read_text()
    assert "estimate: " in report and "(roofline) / budget 1 ms FAIL" in report
    assert "| op | type | est. ms | GFLOP | MB moved | bound |" in report
    assert f"| {top[0]['name']} | Conv |" in report and "slowest ops (estimate on raspberry-pi-5)" in report
