"""`edgec build --emulator qemu:CORE`: ARM-kernel numerics in manifest.json and the report, int8 gated by them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgec.artifact import Artifact, ArtifactResult, NumericsResult
from edgec.cli import app
from edgec.config.loader import load_profile
from edgec.errors import ConfigError
from tests.emulator.models import few_convs


def test_int8_build_writes_arm_numerics_for_android_and_ort_mobile(emulators, cli, tmp_path):
    model = tmp_path / "few.onnx"
    onnx.save(few_convs(), str(model))
    out = tmp_path / "dist"
    r = cli.invoke(app, ["build", str(model), "--target", "all", "--quantize", "int8", "--calibration", "random",
                         "--emulator", "qemu:cortex-a76", "--latency", "off", "--out", str(out)])
    assert r.exit_code == 0, r.output
    manifest = json.loads((out / "manifest.json").read_text())
    by_target = {a["target"]: a for a in manifest["artifacts"]}
    for target in ("android", "ort-mobile"):
        a = by_target[target]
        arm = a["numerics_arm"]
        assert arm["passed"] and "qemu cortex-a76" in arm["ran_on"]
        assert arm["samples"] == 4 and arm["data"].startswith("the first 4 of")  # kept short: emulation is slow
        assert a["details"]["emulator"]["gates"] == "ARM kernels"
        host = a["numerics"]["outputs"]["logits"]["cosine"]
        assert abs(arm["outputs"]["logits"]["cosine"] - host) < 1e-3  # the same int8 math on other kernels
        vs = a["details"]["emulator"]["vs_host"]["logits"]  # ARM vs x86 outputs on the same 4 held-out inputs
        assert vs["samples"] == 4 and vs["cosine"] > 0.999
    assert "numerics_arm" not in by_target["ios"]  # CoreML has no aarch64 Linux runtime: said in its notes
    assert any("no aarch64 Linux runtime" in n for n in by_target["ios"]["notes"])
    report = (out / "report.md").read_text()
    assert report.count("ARM kernels (") == 2 and "ARM: pass" in report
    page = (out / "report.html").read_text()
    assert page.count("ARM kernels (") == 2 and page.count('ARM: <span class="pass">pass</span>') == 2


def test_profile_core_and_instruction_model_latency(emulators, tmp_path):
    """`--emulator qemu` takes the profile's core; `--latency emulate` then comes from the executed instructions."""
    import shutil

    from edgec.api import BuildOptions, build

    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler to build the instruction-count plugin (Debian package gcc; .ci/run installs it)")
    model = tmp_path / "few.onnx"
    onnx.save(few_convs(size=16), str(model))
    r = build(model, BuildOptions(profile="raspberry-pi-5", out_dir=tmp_path / "o", emulator="qemu", latency="emulate"))
    (a,) = r.result.artifacts
    pi5 = load_profile("raspberry-pi-5")
    assert a.artifact.precision == "fp32" and a.numerics_arm.passed
    assert a.artifact.details["emulator"]["core"] == pi5.hardware.cpu.emulate
    assert a.artifact.details["emulator"]["gates"] == "host and ARM kernels"
    vs = a.artifact.details["emulator"]["vs_host"]["logits"]
    assert vs["samples"] == 2 and vs["cosine"] > 0.99999 and vs["max_abs"] < 1e-4
    lat = a.latency
    d = lat.details
    assert lat.mode == "emulate" and "Cortex-A76 Software Optimization Guide" in d["method"]
    assert d["instructions"]["fmla"] > 0 and d["clock_ghz"] == pi5.hardware.cpu.clock_ghz
    # the model's arithmetic: cycles >= FMLA count / 2 pipes, plus the stalls on the simulated caches' DRAM
    # misses (the profile gives L2 and L3 sizes), ms = max(compute, memory) at 2.4 GHz on 4 threads
    assert d["cycles"] >= d["instructions"]["fmla"] / 2
    assert set(d["cache"]) == {"l1d", "l2", "llc"} and d["cache"]["l1d"]["accesses"] > 0
    assert d["stall_cycles"] >= 0 and d["throughput_ms"] <= lat.median_ms + 1e-4
    assert d["compute_ms"] == pytest.approx((d["cycles"] + d["stall_cycles"]) / 2.4e6 / 4, rel=1e-3, abs=5e-5)
    assert lat.median_ms == pytest.approx(max(d["compute_ms"], d["memory_ms"]), rel=1e-3, abs=5e-5)
    assert d["roofline_ms"] > 0 and "roofline estimate" in (tmp_path / "o/report.md").read_text()
    # .ort: per op too (ONNX Runtime's profiler marks the boundaries), the convs first by cycles
    assert d["ops_counted"] == 6 and {o["name"] for o in d["ops"]} == {"conv1", "dw", "pw", "gap", "flatten", "fc"}
    assert d["ops"][0]["op_type"].endswith("Conv") and d["ops"][0]["fmla"] > 0
    assert "| op | type | instructions | FMLA |" in (tmp_path / "o/report.md").read_text()
    page = (tmp_path / "o/report.html").read_text()
    assert "<th>SDOT/UDOT</th>" in page and f"<td>{d['ops'][0]['name']}</td>" in page


def _result(precision: str, host_ok: bool, arm_ok: bool) -> ArtifactResult:
    art = Artifact(target="android", profile="p", format="tflite", path=Path("m.tflite"), precision=precision)
    return ArtifactResult(artifact=art, final_path=Path("m.tflite"), sha256="", bytes=0,
                          numerics=NumericsResult("litert", {}, host_ok),
                          numerics_arm=NumericsResult("litert on qemu cortex-a76", {}, arm_ok))


def test_int8_is_gated_by_the_arm_kernels_float_by_both():
    assert _result("int8", host_ok=False, arm_ok=True).passed  # x86 int8 saturation does not fail the build
    assert not _result("int8", host_ok=True, arm_ok=False).passed  # the device's kernels do
    assert not _result("fp32", host_ok=True, arm_ok=False).passed
    assert not _result("fp32", host_ok=False, arm_ok=True).passed


def test_bad_emulator_values_are_explicit_errors(cli, tmp_path):
    model = tmp_path / "few.onnx"
    onnx.save(few_convs(size=16), str(model))
    for value, needle in (("qemu:max", "name a real core"), ("kvm", "qemu:CORE"), ("qemu:cortex-x9", "neoverse-n1")):
        r = cli.invoke(app, ["build", str(model), "--target", "android", "--emulator", value, "--out",
                             str(tmp_path / "o")])
        assert r.exit_code == 2, (value, r.output)
        assert needle in " ".join(r.output.split()), (value, r.output)
    bad = tmp_path / "p.yaml"
    bad.write_text("name: x\ntarget: android\nhardware:\n  cpu: {cores: 4, peak_gflops_fp32: 10, emulate: max}\n"
                   "  memory_bandwidth_gbps: 10\n")
    with pytest.raises(ConfigError, match="emulate"):
        load_profile(str(bad))


def test_doctor_and_setup_commands(emulators, cli):
    r = cli.invoke(app, ["emulator", "setup", "--core", "cortex-a76"])
    assert r.exit_code == 0 and "ARM emulator ready" in r.output and "cortex-a76" in r.output
    r = cli.invoke(app, ["doctor"])
    assert r.exit_code == 0 and "ARM emulator" in r.output


def test_junit_shows_the_arm_case_and_int8_gating():
    from edgec.package.junit import render

    host_bad = {"ran_on": "onnxruntime", "outputs": {"y": {"max_abs": 9.0, "cosine": 0.9}}, "passed": False,
                "message": "output 'y' cosine 0.9 < 0.99"}
    arm = {"ran_on": "onnxruntime on qemu cortex-a76", "outputs": {"y": {"max_abs": 0.1, "cosine": 0.999}},
           "passed": True}
    entry = {"target": "ort-mobile", "profile": "p", "precision": "int8", "numerics": host_bad,
             "numerics_arm": arm, "latency": None}
    xml = render({"model": {"path": "m.onnx"}, "artifacts": [entry]})
    assert 'name="numerics (ARM kernels)"' in xml and 'failures="0"' in xml  # x86 int8 miss shown, not failed
    xml = render({"model": {"path": "m.onnx"}, "artifacts": [{**entry, "precision": "fp32"}]})
    assert 'failures="1"' in xml  # a float artifact must pass on both
    xml = render({"model": {"path": "m.onnx"}, "artifacts": [{**entry, "numerics": arm,
                                                               "numerics_arm": {**host_bad, "ran_on": "arm"}}]})
    assert 'failures="1"' in xml


def test_html_report_shows_the_arm_verdict_beside_the_host_one():
    from edgec.package.html import render

    host_bad = {"ran_on": "onnxruntime", "outputs": {"y": {"max_abs": 9.0, "cosine": 0.9}}, "passed": False,
                "message": "output 'y' cosine 0.9 < 0.99", "thresholds": {"min_cosine": 0.99}}
    arm = {"ran_on": "onnxruntime on qemu cortex-a76", "samples": 4, "passed": True,
           "outputs": {"y": {"max_abs": 0.125, "cosine": 0.9991}}}
    entry = {"target": "ort-mobile", "profile": "p", "format": "ort", "path": "m.ort", "sha256": "ab" * 32,
             "bytes": 1000, "precision": "int8", "passed": True, "notes": [], "numerics": host_bad,
             "numerics_arm": arm, "latency": None,
             "details": {"emulator": {"seconds": 12.5, "gates": "ARM kernels",
                                      "vs_host": {"y": {"identical": False, "cosine": 0.91, "max_abs": 8.5}}}}}
    doc = {"passed": True, "edgec_version": "0", "errors": [], "versions": {},
           "model": {"path": "m.onnx", "opset": 13, "nodes": 1, "parameters": 1, "bytes": 1, "sha256": "cd" * 32}}
    page = render({**doc, "artifacts": [entry]})
    assert 'FAIL</span> cos 0.900000 (onnxruntime)<br>ARM: <span class="pass">pass</span> cos 0.999100' in page
    assert "ARM kernels (onnxruntime on qemu cortex-a76, 4 input(s), 12.5 s under emulation" in page
    assert "cos 0.9100000, max-abs 8.5" in page and "ort-mobile ARM: y" in page  # table row and numerics bar
    no_arm = render({**doc, "artifacts": [{k: v for k, v in entry.items() if k != "numerics_arm"}]})
    assert "ARM" not in no_arm


def test_memory_term_leaves_cache_resident_activations_out():
    """With the profile's last-level cache size, the instruction model's DRAM traffic is every weight once plus
    the activations of ops that do not fit the cache; without one, every byte the roofline moves."""
    from edgec.prepare import prepare
    from edgec.validate.emulated import _dram_mb
    from edgec.validate.estimate import estimate

    model = prepare(few_convs(), {}, "few.onnx").model
    pi5 = load_profile("raspberry-pi-5")
    assert pi5.hardware.cpu.llc_mb == 2
    est = estimate(model, pi5)
    weights = sum(int(np.prod(i.dims)) * 4 for i in model.graph.initializer) / 1e6
    assert _dram_mb(model, est, None) == pytest.approx(sum(o.mbytes for o in est.ops))
    assert _dram_mb(model, est, 2.0) == pytest.approx(weights)  # a 32x32 net's activations all fit 2 MB
    assert weights < _dram_mb(model, est, 1e-4) <= _dram_mb(model, est, None) + weights
