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
