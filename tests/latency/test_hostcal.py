"""Host calibration: real ONNX Runtime micro-benchmarks, the detected profile loads, the CLI writes it."""

from __future__ import annotations

import os

import pytest
import yaml
from typer.testing import CliRunner

from edgec.config.loader import load_profile
from edgec.validate import costfit, hostcal


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


FIXED = {"peak": 40.0, "int8": 120.0, "conv": 30.0, "dw": 10.0, "bw": 10.0, "ew": 12.0, "pool": 8.0, "oh": 1.5,
         "lrn": 0.2}


@pytest.fixture
def fake_machine(tmp_path, monkeypatch):
    """A private calibration cache and cheap fixed micro-benchmarks; returns the list of measure() calls."""
    calls = []
    monkeypatch.setenv("EDGEC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))  # no user-written host.yaml
    monkeypatch.delenv("EDGEC_HOST_PROFILE", raising=False)
    monkeypatch.setattr(hostcal, "measure", lambda threads: calls.append(threads) or dict(FIXED))
    monkeypatch.setattr(costfit, "measure", lambda runtime: dict(PROBE_MS[runtime]))
    return calls


def _probe_ms(peak_1t: float, gemm: float, dw: float, oh_us: float, cache_gbps: float, lrn: float) -> dict:
    """Probe times a machine with these coefficients would show (the inverse of costfit.fit)."""
    out = {}
    for p in costfit.probes():
        oh = oh_us / 1e3
        if p.name == "overhead":
            out[p.name] = oh
        elif p.name.startswith("conv"):
            out[p.name] = oh + p.flops / (peak_1t * 1e9 * gemm) * 1e3
        elif p.name.startswith("dw"):
            out[p.name] = oh + p.flops / (peak_1t * 1e9 * dw) * 1e3
        elif p.name == "lrn":
            out[p.name] = oh + p.flops / (peak_1t * 1e9 * lrn) * 1e3
        elif p.name == "pass_large":
            out[p.name] = oh + p.act_bytes / (cache_gbps / 4 * 1e9) * 1e3
        else:  # passes in cache, sigmoid, maxpool: at the cache rate
            out[p.name] = oh + p.act_bytes / (cache_gbps * 1e9) * 1e3
    return out


# two runtimes that differ the way MLAS and XNNPACK do (LRN a scalar loop in one, dispatch cheaper in the other)
PROBE_MS = {"ort": _probe_ms(40.0, 0.8, 0.3, 1.0, 60.0, 0.005), "ort-extended": _probe_ms(40.0, 0.5, 0.2, 1.0, 60.0, 0.005),
            "litert": _probe_ms(40.0, 0.9, 0.5, 0.2, 80.0, 0.05)}


def test_cli_profiles_detect(tmp_path, fake_machine):
    from edgec.cli import app
    from edgec.validate.latency import host_profile

    out = tmp_path / "me.yaml"
    r = CliRunner().invoke(app, ["profiles", "detect", "--out", str(out), "--threads", "2"])
    assert r.exit_code == 0, r.output
    # one core measured (CPU time), compute peaks scaled to every core
    peak = 40.0 * (os.cpu_count() or 1)
    assert f"{peak} GFLOP/s" in r.output and str(out) in r.output.replace("\n", "")
    data = yaml.safe_load(out.read_text())
    assert data["hardware"]["estimate"]["efficiency"]["gemm"] == pytest.approx(0.75)
    assert data["hardware"]["estimate"]["bandwidth_efficiency"] == pytest.approx(1.2)
    measured = len(fake_machine)
    # cached: builds and a second detect read it; --force measures again
    assert CliRunner().invoke(app, ["profiles", "detect"]).exit_code == 0
    assert len(fake_machine) == measured
    profile, source = host_profile()
    assert profile.hardware.cpu.peak_gflops_fp32 == peak and "calibrated on this machine" in source
    assert CliRunner().invoke(app, ["profiles", "detect", "--force"]).exit_code == 0
    assert len(fake_machine) > measured


def test_calibration_is_keyed_by_cpu_fingerprint(fake_machine, monkeypatch):
    from edgec.validate import hostcache

    real = hostcache.fingerprint()
    assert real["cores"] >= 1 and "onnxruntime" in real["runtimes"]
    fake_a = dict(real, cpu="Fake CPU A", flags=["avx2"])
    fake_b = dict(real, cpu="Fake CPU A", flags=["avx2", "avx512_vnni"])  # same model name, other kernels
    monkeypatch.setattr(hostcache, "fingerprint", lambda: fake_a)
    a = hostcache.calibrated(threads=1)
    once = len(fake_machine)
    assert a.fresh and once >= 1
    again = hostcache.calibrated(threads=1)
    assert not again.fresh and again.profile_path == a.profile_path and len(fake_machine) == once
    monkeypatch.setattr(hostcache, "fingerprint", lambda: fake_b)
    b = hostcache.calibrated(threads=1)
    assert b.fresh and b.profile_path != a.profile_path and len(fake_machine) == 2 * once
    assert b.fingerprint["flags"] == ["avx2", "avx512_vnni"] and "avx512_vnni" in b.describe()
    # a new calibration method measures again rather than reading numbers measured the old way
    monkeypatch.setattr(hostcache, "fingerprint", lambda: dict(fake_b, method=hostcache.METHOD + 1))
    assert hostcache.calibrated(threads=1).fresh and len(fake_machine) == 3 * once
    monkeypatch.setattr(hostcache, "fingerprint", lambda: fake_b)
    # a damaged entry is measured again, not trusted
    b.profile_path.with_suffix(".json").write_text("{not json")
    assert hostcache.calibrated(threads=1).fresh and len(fake_machine) == 4 * once


def test_builtin_host_profile_estimates_with_the_calibrated_numbers(fake_machine):
    from edgec.config.loader import load_profile
    from edgec.validate.latency import for_this_machine

    builtin = load_profile("host")
    assert builtin.hardware.calibrated and builtin.hardware.cpu.peak_gflops_fp32 != 40.0 * (os.cpu_count() or 1)
    mine = for_this_machine(builtin)
    assert mine.hardware.cpu.peak_gflops_fp32 == 40.0 * (os.cpu_count() or 1) and not mine.hardware.calibrated
    assert mine.runtime == builtin.runtime  # only the hardware numbers are this machine's
    pixel = load_profile("pixel-8")
    assert for_this_machine(pixel) is pixel


def test_costfit_recovers_the_coefficients_of_a_known_machine():
    # FIXED: 40 GFLOP/s per core, 10 GB/s DRAM; the probe times are what these coefficients predict
    for rt, (gemm, dw, oh, cache, lrn) in {"ort": (0.8, 0.3, 1.0, 60.0, 0.005),
                                           "litert": (0.9, 0.5, 0.2, 80.0, 0.05)}.items():
        spec = costfit.fit(PROBE_MS[rt], peak_1t=40.0, dram_gbps=10.0, cache_mb=1.0)
        assert spec["efficiency"]["gemm"] == pytest.approx(gemm, rel=0.01)
        assert spec["efficiency"]["depthwise"] == pytest.approx(dw, rel=0.01)
        assert spec["op_overhead_us"] == pytest.approx(oh, rel=0.01)
        assert spec["cache_bandwidth_gbps"] == pytest.approx(cache, rel=0.01)
        assert spec["op_efficiency"]["LRN"] == pytest.approx(lrn, rel=0.02)
        assert spec["bandwidth_efficiency"] == pytest.approx(min(1.5, cache / 4 / 10.0), rel=0.01)


def test_costfit_fits_the_short_m_side_and_does_not_count_it_again_in_k():
    # a machine whose convs with 16 output channels run at half the efficiency (full M side = 16 / 0.5^2 = 64)
    # and whose K = 24 probe (24 output channels too) is slow by exactly that M side's factor
    times = dict(PROBE_MS["ort"])
    oh = times["overhead"]
    by = {p.name: p for p in costfit.probes()}
    times["conv3x3_m16"] = oh + 2 * (times["conv3x3_m16"] - oh)
    times["conv1x1_k24"] = oh + (times["conv1x1_k24"] - oh) / (24 / 64) ** 0.5
    spec = costfit.fit(times, peak_1t=40.0, dram_gbps=10.0, cache_mb=1.0)
    assert by["conv3x3_m16"].model(1).graph.node[0].input[1] == "w0"  # a real conv probe, 16 output channels
    assert spec["gemm_full_m"] == 64 and spec["gemm_full_k"] == 24  # K = 24 already full: no drop left
    assert costfit.fit(PROBE_MS["ort"], peak_1t=40.0, dram_gbps=10.0, cache_mb=1.0)["gemm_full_m"] == 16


def test_costfit_fits_the_strided_conv_pass_and_the_estimate_charges_it_to_strided_convs_only():
    from edgec.config.loader import load_profile
    from edgec.validate.estimate import estimate

    times = dict(PROBE_MS["ort-extended"])
    times["conv3x3_s2"] += 576 * 3136 * 4 / 5e9 * 1e3  # its K x N im2col input (7.2 MB) expanded at 5 GB/s
    spec = costfit.fit(times, peak_1t=40.0, dram_gbps=10.0, cache_mb=1.0)
    assert spec["strided_conv_gbps"] == pytest.approx(5.0, rel=0.01)
    assert costfit.fit(PROBE_MS["ort"], peak_1t=40.0, dram_gbps=10.0, cache_mb=1.0)["strided_conv_gbps"] is None
    host = load_profile("host")
    fitted = host.model_copy(update={"hardware": host.hardware.model_copy(update={
        "estimate": host.hardware.estimate.model_copy(update={"strided_conv_gbps": 5.0})})})
    by = {p.name: p for p in costfit.probes()}
    for name, extra in (("conv3x3_s2", 576 * 3136 * 4 / 5e9 * 1e3), ("conv3x3_s1", 0.0)):
        m = by[name].model(1)
        assert estimate(m, fitted, threads=1).total_ms - estimate(m, host, threads=1).total_ms == pytest.approx(extra)


def test_per_runtime_coefficients_are_cached_with_the_calibration(fake_machine, monkeypatch):
    from edgec.config.loader import load_profile
    from edgec.validate import hostcache
    from edgec.validate.latency import host_profile

    fp = dict(hostcache.fingerprint(), cpu="Fake CPU C")
    monkeypatch.setattr(hostcache, "fingerprint", lambda: fp)
    fits = []
    real_fit = costfit.fit
    monkeypatch.setattr(costfit, "fit", lambda *a, **k: fits.append(a) or real_fit(*a, **k))
    entry = hostcache.calibrated(threads=1)
    assert entry.fresh and len(fits) == len(costfit.RUNTIMES)
    ort, ext, litert = (load_profile(str(entry.profile_for(rt))).hardware for rt in ("ort", "ort-extended", "litert"))
    assert ext.estimate.efficiency["gemm"] == pytest.approx(0.5, rel=0.01)
    common = load_profile(str(entry.profile_for(None))).hardware
    # same hardware numbers, each runtime's own coefficients
    assert ort.cpu == litert.cpu == common.cpu and ort.memory_bandwidth_gbps == common.memory_bandwidth_gbps
    assert ort.estimate.op_efficiency["LRN"] == pytest.approx(0.005, rel=0.02)
    assert litert.estimate.op_efficiency["LRN"] == pytest.approx(0.05, rel=0.02)
    assert ort.estimate.cache_mb == litert.estimate.cache_mb == costfit.l2_mb()
    # reused, not refitted; the build's lookup picks the runtime's file
    assert not hostcache.calibrated(threads=1).fresh and len(fits) == len(costfit.RUNTIMES)
    prof, source = host_profile(None, "litert")
    assert prof.hardware.estimate.op_overhead_us == pytest.approx(0.2, rel=0.01) and "fitted in litert" in source
    # an entry missing a runtime's file (written by an older edgec) is measured again
    entry.profile_for("litert").unlink()
    assert hostcache.calibrated(threads=1).fresh


@pytest.mark.parametrize("runtime", costfit.RUNTIMES)
def test_costfit_probes_run_in_each_runtime(runtime):
    """The real probes, lowered (LiteRT: to .tflite by edgec) and timed here: plausible coefficients (not their
    values: any x86 CPU)."""
    times = costfit.measure(runtime, rounds=1)
    assert set(times) == {p.name for p in costfit.probes()} and all(t > 0 for t in times.values())
    spec = costfit.fit(times, peak_1t=hostcal.matmul_gflops(1, n=512, runs=5), dram_gbps=10.0, cache_mb=1.0)
    assert 0.05 < spec["efficiency"]["gemm"] <= 1.5 and 0 < spec["efficiency"]["depthwise"] <= 1.0
    assert spec["cache_bandwidth_gbps"] > 0 and 0 < spec["op_efficiency"]["LRN"] < 1.0
