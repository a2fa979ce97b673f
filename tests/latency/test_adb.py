"""adb runner: no phone exists here, so this checks the exact commands it would issue and parses REAL recorded
benchmark_model output (tests/latency/data/README.md says where each recording comes from)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgec.artifact import Artifact
from edgec.config.loader import load_profile
from edgec.errors import DeviceError, UsageError
from edgec.validate.devices.adb import AdbDevice, parse_benchmark_output
from edgec.validate.devices.device import device_for

DATA = Path(__file__).parent / "data"


def test_parse_recorded_android_output():
    stats = parse_benchmark_output((DATA / "benchmark_model_android.txt").read_text(), "adb:X", 4)
    # the timed block (count=50), not the warm-up block (count=15)
    assert stats.runs == 50 and stats.min_ms == pytest.approx(32.641)
    assert stats.median_ms == pytest.approx(33.2094) and stats.p90_ms == pytest.approx(33.2094 + 1.2816 * 0.450)
    assert "peak memory 12.9 MB" in stats.method and "avg" in stats.method


def test_parse_recorded_info_prefixed_output():
    stats = parse_benchmark_output((DATA / "benchmark_model_xnnpack_info.txt").read_text(), "adb:X", 4)
    assert stats.runs == 74 and stats.median_ms == pytest.approx(13.5202) and stats.min_ms == pytest.approx(13.105)


def test_parse_garbage_is_a_device_error():
    with pytest.raises(DeviceError, match="no timing line"):
        parse_benchmark_output("ERROR: Could not open 'x.tflite'.\nAborted", "adb:X", 4)


def test_commands_and_end_to_end_with_recorded_output(tmp_path):
    binary = tmp_path / "benchmark_model"
    binary.write_bytes(b"\x7fELF")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"TFL3")
    issued = []

    def fake_adb(cmd):  # records the command; the benchmark call answers with the recorded phone output
        issued.append(cmd)
        return (DATA / "benchmark_model_android.txt").read_text() if any("--graph=" in c for c in cmd) else ""

    dev = AdbDevice("R5CT123", str(binary), runner=fake_adb)
    prof = load_profile("pixel-8")  # threads 4, xnnpack
    stats = dev.benchmark(Artifact("android", "pixel-8", "tflite", model, "fp32"), prof, {})
    assert [c[:3] for c in issued] == [["adb", "-s", "R5CT123"]] * 6
    assert issued[1][3:] == ["push", str(binary), "/data/local/tmp/edgec/benchmark_model"]
    assert issued[3][3:] == ["push", str(model), "/data/local/tmp/edgec/m.tflite"]
    bench = issued[4][4:]
    assert bench[0] == "/data/local/tmp/edgec/benchmark_model"
    assert "--graph=/data/local/tmp/edgec/m.tflite" in bench and "--num_threads=4" in bench
    assert "--use_xnnpack=true" in bench
    assert f"--num_runs={prof.validate_.latency.runs}" in bench and "--min_secs=0" in bench
    assert stats.runs == 50 and stats.threads == 4


def test_delegates_and_uri():
    dev = device_for("adb:emulator-5554?benchmark=/opt/bm", "tflite")
    assert dev.serial == "emulator-5554" and dev.benchmark_binary == "/opt/bm"
    gpu = dev.commands(Path("m.tflite"), 2, "gpu", 10, 2, max_seconds=5)[4]
    assert "--use_gpu=true" in gpu and "--max_secs=5" in gpu and "--num_threads=2" in gpu
    with pytest.raises(UsageError, match="Delegate"):
        dev.commands(Path("m.tflite"), 2, "hexagon-dsp", 10, 2)
    with pytest.raises(UsageError, match="tflite"):
        device_for("adb:X", "ort")
    with pytest.raises(UsageError, match="benchmark_model"):
        AdbDevice("X", None).benchmark(Artifact("android", "p", "tflite", Path("m.tflite"), "fp32"),
                                       load_profile("pixel-8"), {})
