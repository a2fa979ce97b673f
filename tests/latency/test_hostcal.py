"""Host calibration: real ONNX Runtime micro-benchmarks, the detected profile loads, the CLI writes it."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from edgec.config.loader import load_profile
from edgec.validate import hostcal


def test_micro_benchmarks_measure_this_machine():
    # small sizes: plausibility, not precision (any machine made since 2010 lies inside these bounds)
    assert 0.1 < hostcal.matmul_gflops(1, n=256, runs=3) < 5000
    assert 0.1 < hostcal.conv_gflops(1, c=16, hw=28, runs=3) < 5000
    assert 0.1 < hostcal.bandwidth_gbps(1, mb=16, runs=3) < 1000
    assert 0 < hostcal.op_overhead_us(1, ops=50, runs=5) < 1000


def test_detect_writes_a_loadable_host_profile(tmp_path):
    data = hostcal.detect(threads=1, rounds=1)
    path = tmp_path / "host.yaml"
    path.write_text(hostcal.to_yaml(data))
    prof = load_profile(str(path))
    assert prof.name == "host" and prof.runtime.threads == 1
    eff = prof.hardware.estimate.efficiency
    assert prof.hardware.cpu.peak_gflops_fp32 > 0 and 0 < eff["gemm"] <= 1
    assert "LRN" in prof.hardware.estimate.op_efficiency


def test_cli_profiles_detect(tmp_path, monkeypatch):
    from edgec.cli import app

    fixed = {"peak": 40.0, "int8": 120.0, "conv": 30.0, "dw": 10.0, "bw": 10.0, "ew": 12.0, "pool": 8.0, "oh": 1.5,
             "lrn": 0.2}
    monkeypatch.setattr(hostcal, "measure", lambda threads: dict(fixed))
    out = tmp_path / "me.yaml"
    r = CliRunner().invoke(app, ["profiles", "detect", "--out", str(out), "--threads", "2"])
    assert r.exit_code == 0, r.output
    assert "40.0 GFLOP/s" in r.output and str(out) in r.output.replace("\n", "")
    data = yaml.safe_load(out.read_text())
    assert data["hardware"]["estimate"]["efficiency"]["gemm"] == pytest.approx(0.75)
    assert data["hardware"]["estimate"]["bandwidth_efficiency"] == pytest.approx(1.2)
    # the default destination is the user's config folder, which emulate mode reads
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert CliRunner().invoke(app, ["profiles", "detect"]).exit_code == 0
    assert (tmp_path / "cfg" / "edgec" / "host.yaml").exists()
    from edgec.validate.latency import host_profile

    monkeypatch.delenv("EDGEC_HOST_PROFILE", raising=False)
    assert host_profile().hardware.cpu.peak_gflops_fp32 == 40.0
