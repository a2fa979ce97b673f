"""measure_latency: host / estimate / emulate with the real ORT runner, interpreter fallback, budgets, timing."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.artifact import Artifact
from edgec.config.loader import load_profile
from edgec.validate import latency as lat
from edgec.validate import timing
from edgec.runtimes.host_ort import OrtRunner


@pytest.fixture(scope="module")
def conv_model():
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((32, 16, 3, 3)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
                           helper.make_node("Relu", ["c"], ["y"], name="relu")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 32, 32])], [w])
    return onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def _with(profile, **latency):
    spec = profile.validate_.latency.model_copy(update=latency)
    return profile.model_copy(update={"validate_": profile.validate_.model_copy(update={"latency": spec})})


def _artifact(tmp_path, model):
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    return Artifact("ort-mobile", "p", "ort", path, "fp32")


FEEDS = {"x": np.ones((1, 16, 32, 32), np.float32)}


def test_host_mode_measures_the_runner(tmp_path, conv_model):
    runner = OrtRunner(conv_model, threads=1)
    prof = _with(load_profile("host"), mode="host", runs=5, warmup=1)
    r = lat.measure_latency(runner, _artifact(tmp_path, conv_model), conv_model, prof, FEEDS, 1)
    assert r.mode == "host" and r.runs == 5 and 0 < r.min_ms <= r.median_ms <= r.p90_ms
    assert r.passed is None and "estimate" not in r.details


def test_estimate_mode_writes_the_table_next_to_the_artifact(tmp_path, conv_model):
    art = _artifact(tmp_path, conv_model)
    prof = _with(load_profile("raspberry-pi-5"), mode="estimate", budget_ms=1e-4)
    r = lat.measure_latency(None, art, conv_model, prof, FEEDS, 1)
    assert r.mode == "estimate" and r.runs == 0 and r.median_ms > 0
    table = tmp_path / r.details["table"]
    assert table.exists() and table in art.extra_files
    assert r.details["estimate"]["top_ops"][0]["name"] == "conv"
    assert r.passed is False and "budget of 0.0001 ms" in r.message and "conv (Conv)" in r.message


def test_emulate_scales_the_host_measurement(tmp_path, conv_model, monkeypatch):
    monkeypatch.setenv("EDGEC_HOST_PROFILE", "host")
    runner = OrtRunner(conv_model, threads=1)
    prof = _with(load_profile("raspberry-pi-5"), mode="emulate", runs=5, warmup=1)
    r = lat.measure_latency(runner, _artifact(tmp_path, conv_model), conv_model, prof, FEEDS, 1)
    d = r.details
    assert r.mode == "emulate" and r.runtime == runner.name
    assert d["scale"] == pytest.approx(d["device_estimate_ms"] / d["host_estimate_ms"], rel=1e-3)
    assert r.median_ms == pytest.approx(d["host_median_ms"] * d["scale"], rel=2e-3, abs=2e-4)  # both rounded
    assert "x" in d["method"] and "raspberry-pi-5" in d["method"] and d["host_profile"] == "host"
    # a faster device (same numbers, 4x everything) emulates 4x faster from the same kind of host run
    hw = prof.hardware
    fast = prof.model_copy(update={"hardware": hw.model_copy(update={
        "cpu": hw.cpu.model_copy(update={"peak_gflops_fp32": hw.cpu.peak_gflops_fp32 * 4}),
        "memory_bandwidth_gbps": hw.memory_bandwidth_gbps * 4,
        "estimate": hw.estimate.model_copy(update={"op_overhead_us": hw.estimate.op_overhead_us / 4})})})
    r4 = lat.measure_latency(runner, _artifact(tmp_path, conv_model), conv_model, fast, FEEDS, 1)
    assert r4.details["scale"] == pytest.approx(d["scale"] / 4, rel=2e-3, abs=1e-4)


def test_interpreter_is_never_a_latency_source(tmp_path, conv_model):
    class Interp:  # like the CoreML MIL interpreter on Linux
        name = "mil-interpreter (numpy)"
        latency_meaningful = False

        def run(self, feeds):
            raise AssertionError("must not be timed")

    for mode in ("host", "emulate"):
        r = lat.measure_latency(Interp(), _artifact(tmp_path, conv_model), conv_model,
                                _with(load_profile("iphone-15-pro"), mode=mode), FEEDS, 1)
        assert r.mode == "estimate" and "not a latency source" in r.message
        assert r.details["estimate"]["unit"] == "ane"


def test_off_and_time_budget():
    assert lat.measure_latency(None, None, None, _with(load_profile("host"), mode="off"), {}, 1) is None
    times = lat.time_runs(lambda: time.sleep(0.02), runs=1000, warmup=0, max_seconds=0.1)
    assert 3 <= len(times) < 20


def test_summary_flags_noise_and_budget_on_p90():
    r = lat.summarize([10, 10, 10, 10, 10, 10, 10, 10, 30, 30], "host", 1, 20, "p90", "rt")
    assert r.noisy and r.passed is False and "p90 latency" in r.message
    r = lat.summarize([10.0] * 10, "host", 1, 20, "median", "rt")
    assert not r.noisy and r.passed is True


class _Machine:
    """A runtime on a machine whose load comes and goes: every other run waits 3x as long for a core, while
    the CPU time it computes for stays 5 ms."""

    name = "fake runtime"

    def __init__(self, monkeypatch):
        self.wall, self.cpu, self.runs = 0.0, 0.0, 0
        machine = self

        class Time:  # the measurement reads these clocks, so the test does not depend on the real machine's load
            @staticmethod
            def perf_counter():
                return machine.wall

            @staticmethod
            def process_time():
                return machine.cpu

        monkeypatch.setattr(lat, "time", Time)
        monkeypatch.setattr(timing, "time", Time)

    def run(self, feeds):
        self.runs += 1
        self.cpu += 0.005
        self.wall += 0.005 * (3 if self.runs % 2 else 1)


def test_cpu_time_takes_the_machines_load_out(monkeypatch):
    result, load = lat.measure_cpu_time(_Machine(monkeypatch), {}, runs=8, warmup=0)
    assert result.median_ms == pytest.approx(5.0) and result.p90_ms == pytest.approx(5.0)
    assert load["wall_mean_ms"] == pytest.approx(10.0) and load["load_stretch"] == pytest.approx(2.0)


def test_cpu_time_of_a_real_run_is_steady_under_a_competing_process(tmp_path, conv_model):
    """A busy process on every core stretches the wall clock, not the CPU time of a one-thread run."""
    import os
    import subprocess
    import sys

    runner = OrtRunner(conv_model, threads=1)
    quiet, _ = lat.measure_cpu_time(runner, FEEDS, runs=15, warmup=2)
    spin = [sys.executable, "-c", "import time\nend = time.time() + 60\nwhile time.time() < end: pass"]
    hogs = [subprocess.Popen(spin) for _ in range(os.cpu_count() or 1)]
    try:
        busy, _ = lat.measure_cpu_time(runner, FEEDS, runs=15, warmup=2)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    # generous: cache sharing with the spinning processes costs a little CPU time; time-sharing costs none
    assert busy.median_ms == pytest.approx(quiet.median_ms, rel=0.5)


def test_emulate_names_its_host_profile_and_flags_disagreement(tmp_path, conv_model, monkeypatch):
    monkeypatch.setenv("EDGEC_HOST_PROFILE", "host")
    runner = OrtRunner(conv_model, threads=1)
    prof = _with(load_profile("raspberry-pi-5"), mode="emulate", runs=3, warmup=1)
    r = lat.measure_latency(runner, _artifact(tmp_path, conv_model), conv_model, prof, FEEDS, 1)
    d = r.details
    assert d["host_profile_source"] == "given: host" and d["load"]["load_stretch"] > 0 and d["host_threads"] == 1
    assert d["emulate_vs_estimate"] == pytest.approx(r.median_ms / d["device_estimate_ms"], rel=1e-2)
    flagged = any("disagree" in n for n in d.get("notes", []))
    assert flagged == (not 1 / 1.3 <= d["emulate_vs_estimate"] <= 1.3)


def test_emulate_int8_on_x86_times_the_fp32_graph(tmp_path, monkeypatch):
    import platform


    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("this test is about x86 hosts; on ARM hosts int8 kernels are timed directly")
    monkeypatch.setenv("EDGEC_HOST_PROFILE", "host")
    rng = np.random.default_rng(0)
    wq = numpy_helper.from_array(rng.integers(-127, 127, (32, 16, 3, 3)).astype(np.int8), "wq")
    inits = [wq, numpy_helper.from_array(np.array(0.01, np.float32), "ws"),
             numpy_helper.from_array(np.array(0.02, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"]),
             helper.make_node("Conv", ["xd", "w"], ["y"], pads=[1, 1, 1, 1])]
    g = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, 32])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 32, 32])], inits)
    model = onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))

    class Int8Runner:
        name = "litert (x86 int8 kernels)"

        def run(self, feeds):
            raise AssertionError("x86 int8 kernels must not be what emulate scales")

    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    art = Artifact("android", "pixel-8", "tflite", path, "int8")
    prof = _with(load_profile("pixel-8"), mode="emulate", runs=3, warmup=1)
    r = lat.measure_latency(Int8Runner(), art, model, prof, FEEDS, 1)
    assert r.details["host_int8_via_fp32"] and "fp32 form" in r.details["method"]
    assert any("x86 int8 kernels do not predict ARM" in n for n in r.details["notes"])
    assert r.median_ms > 0
    # the host estimate is of what was timed: the float graph (no Q/DQ, float weights), not int8 kernels
    from edgec.validate.estimate import estimate

    floated = lat._float_form(model)
    assert {n.op_type for n in floated.graph.node} == {"Conv"}
    host, _ = lat.host_profile(None, "ort")
    assert r.details["host_estimate_ms"] == pytest.approx(estimate(floated, host, threads=1).total_ms, rel=1e-3)


def test_float_form_dequantizes_weights_as_onnxruntime_does():
    from edgec.runtimes.host_ort import OrtRunner

    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array(rng.integers(-127, 127, (4, 3)).astype(np.int8), "wq"),
             numpy_helper.from_array(rng.uniform(0.01, 0.1, 4).astype(np.float32), "ws"),
             numpy_helper.from_array(rng.integers(-5, 5, 4).astype(np.int8), "wz")]
    g = helper.make_graph([helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
                           helper.make_node("Add", ["x", "w"], ["y"])], "dq",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 3])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    feeds = {"x": np.zeros((4, 3), np.float32)}
    want = OrtRunner(model.SerializeToString(), threads=1).run(feeds)["y"]
    floated = lat._float_form(model)
    assert [n.op_type for n in floated.graph.node] == ["Add"]
    np.testing.assert_allclose(OrtRunner(floated.SerializeToString(), threads=1).run(feeds)["y"], want, rtol=1e-6)


def test_report_says_when_no_budget_was_set(tmp_path, conv_model):
    from edgec.artifact import ArtifactResult
    from edgec.package.report import _latency_cell

    runner = OrtRunner(conv_model, threads=1)
    r = lat.measure_latency(runner, _artifact(tmp_path, conv_model), conv_model,
                            _with(load_profile("host"), mode="host", runs=3, warmup=0), FEEDS, 1)
    a = ArtifactResult(_artifact(tmp_path, conv_model), tmp_path / "m.onnx", "0", 1, latency=r)
    assert "no budget set" in _latency_cell(a)
    r.budget_ms = 1e9
    assert "no budget set" not in _latency_cell(a)
