"""The real aarch64 LiteRT / ONNX Runtime under qemu-aarch64: setup, numerics against the x86 host run, and the
core/cpuinfo pairing. Tiny models only: fp32 runs ~400x slower under emulation."""

from __future__ import annotations

import os
import time

import numpy as np
import onnx
import pytest

from edgec.errors import DeviceError
from edgec.runtimes.emulator import setup
from edgec.runtimes.emulator.cores import CORES
from edgec.runtimes.emulator.runner import (
    EmulatedLiteRTRunner,
    EmulatedOrtRunner,
    GuestSession,
)
from edgec.runtimes.host_litert import LiteRTRunner
from edgec.runtimes.host_ort import OrtRunner
from tests.emulator.models import feeds, relu

FORMATS = {"android": (LiteRTRunner, EmulatedLiteRTRunner), "ort-mobile": (OrtRunner, EmulatedOrtRunner)}


def _host(target, path):
    return LiteRTRunner(path) if target == "android" else OrtRunner(path, level="disable")


def _emulated(target, path, core):
    return FORMATS[target][1](path, core)


def _cos(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_setup_is_idempotent_and_fast_the_second_time(emulators):
    t0 = time.perf_counter()
    again = setup.ensure("cortex-a76")
    assert time.perf_counter() - t0 < 2.0  # a ready emulator is a few stat calls, no subprocess
    assert again == emulators["cortex-a76"]
    assert (again.prefix / "usr/bin/python3").exists() and again.site.is_dir()
    # the site mirrors the installed runtime releases, so the ARM run and the host run are the same versions
    from importlib import metadata

    assert all(metadata.version(d) in again.site.name for d in setup.WHEELS)


def test_cpuinfo_describes_the_emulated_core(emulators):
    for core, emu in emulators.items():
        text = (emu.prefix / "proc/cpuinfo").read_text()
        assert f"CPU part\t: {CORES[core].part:#05x}" in text
        feats = text.split("Features\t: ")[1].split("\n")[0].split()
        assert {"fp", "asimd"} <= set(feats)
        # the dot product (SDOT/UDOT) is Armv8.2's: A76 and N1 have it, A72 does not (QEMU's AT_HWCAP says so)
        assert ("asimddp" in feats) == (core != "cortex-a72")


def test_missing_tools_name_the_apt_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(DeviceError, match="qemu-user"):
        setup.ensure("cortex-a76")
    # qemu present but no mmdebstrap, on a machine whose cache has no rootfs yet
    import shutil

    qemu = shutil.which("qemu-aarch64", path=os.defpath + ":/usr/bin") or "/usr/bin/qemu-aarch64"
    (tmp_path / "bin").mkdir()
    os.symlink(qemu, tmp_path / "bin/qemu-aarch64")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("EDGEC_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DeviceError, match="apt-get install mmdebstrap"):
        setup.ensure("cortex-a76")


def test_unknown_core_and_max_are_refused():
    from edgec.errors import UsageError

    with pytest.raises(UsageError, match="max"):
        setup.ensure("max")
    with pytest.raises(UsageError, match="cortex-a76"):
        setup.ensure("cortex-x9")


@pytest.mark.parametrize("target", ["android", "ort-mobile"])
def test_fp32_matches_the_x86_run(emulators, tiny_artifacts, target):
    path = tiny_artifacts[(target, "fp32")]
    fs = feeds(2)
    host = [_host(target, path).run(f) for f in fs]
    runner = _emulated(target, path, "cortex-a76")
    arm = [runner.run(f) for f in fs]
    assert runner.close() == 0
    for h, a in zip(host, arm):
        assert set(h) == set(a) == {"logits"}
        rel = np.abs(h["logits"] - a["logits"]).max() / np.abs(h["logits"]).max()
        assert rel < 1e-5, rel  # same math, other FMA order: ~1e-7 measured
    # two inputs give different outputs (the guest really ran each feed)
    assert not np.array_equal(arm[0]["logits"], arm[1]["logits"])


@pytest.mark.parametrize("target", ["android", "ort-mobile"])
def test_int8_is_identical_across_arm_cores_and_close_to_x86(emulators, tiny_artifacts, target):
    path = tiny_artifacts[(target, "int8")]
    fs = feeds(2)
    host = [_host(target, path).run(f) for f in fs]
    per_core = {}
    for core in ("cortex-a72", "neoverse-n1"):  # no dot product vs SDOT kernels
        runner = _emulated(target, path, core)
        per_core[core] = [runner.run(f)["logits"] for f in fs]
        runner.close()
    for a72, n1, h in zip(per_core["cortex-a72"], per_core["neoverse-n1"], host):
        np.testing.assert_array_equal(a72, n1)  # integer kernels: exact whatever the instructions
        assert _cos(a72, h["logits"]) > 0.999


def test_cpuinfo_of_another_core_dies_of_sigill(emulators, tiny_artifacts, tmp_path):
    """A Neoverse-N1 /proc/cpuinfo under -cpu cortex-a72 makes the runtime pick SDOT kernels the A72 lacks."""
    a72, n1 = emulators["cortex-a72"], emulators["neoverse-n1"]
    wrong = tmp_path / "prefix"
    setup.write_prefix(wrong, a72.rootfs, (n1.prefix / "proc/cpuinfo").read_text())
    bad = setup.Emulator(a72.qemu, a72.rootfs, a72.site, wrong, "cortex-a72")
    path = tiny_artifacts[("ort-mobile", "int8")]
    session = GuestSession(bad, "ort", path)
    with pytest.raises(DeviceError, match="SIGILL"):
        session.run(feeds(1)[0])
    # (the matching file runs this same artifact on cortex-a72: test_int8_is_identical_across_arm_cores...)


def test_a_hung_run_is_stopped_with_a_clear_error(emulators, tiny_artifacts):
    session = GuestSession(emulators["cortex-a76"], "ort", tiny_artifacts[("ort-mobile", "fp32")],
                           run_timeout_s=0.01)
    with pytest.raises(DeviceError, match="longer than"):
        session.run(feeds(1)[0])
    assert session.proc.poll() is not None  # killed, not left running


def test_an_unloadable_model_is_a_device_error(emulators, tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 4)
    with pytest.raises(DeviceError, match="junk.tflite.*failed starting the runtime"):
        GuestSession(emulators["cortex-a76"], "tflite", junk)


def test_instruction_counts_by_class_are_exact_and_repeatable(emulators, tiny_artifacts):
    import shutil

    from edgec.runtimes.emulator.counts import count_instructions, plugin_path

    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler to build the instruction-count plugin (Debian package gcc; .ci/run installs it)")
    assert plugin_path().exists()  # built with gcc into the cache on first use
    fs = feeds(2)
    fp32 = count_instructions("tflite", tiny_artifacts[("android", "fp32")], "cortex-a76", fs)
    # the cache simulation watches the loads and stores without changing what executes
    pi5 = [(65536, 4), (524288, 8), (2097152, 16)]
    again = count_instructions("tflite", tiny_artifacts[("android", "fp32")], "cortex-a76", fs, caches=pi5)
    assert fp32.invokes == 2 and fp32.per_invoke == again.per_invoke  # exact: no dependence on the host's load
    assert fp32.cache is None  # no cache= argument: the plugin registers no memory callback
    third = count_instructions("tflite", tiny_artifacts[("android", "fp32")], "cortex-a76", fs, caches=pi5)
    assert again.cache == third.cache and again.cache[0]["accesses"] > 0  # the simulated misses are exact too
    # the net's multiply-adds: conv 16x27x16x16 + depthwise 16x9x16x16 + 1x1 32x16x16x16 + fc 32x10 = 278,848;
    # XNNPACK runs them as 4-lane fp32 FMLA, so about a quarter as many FMLA (padding lanes and tails add a few %)
    macs = 16 * 27 * 256 + 16 * 9 * 256 + 32 * 16 * 256 + 320
    assert macs / 4 <= fp32.per_invoke["fmla"] < 1.15 * macs / 4, fp32.per_invoke
    assert fp32.per_invoke["sdot_udot"] == 0
    # int8: SDOT (4 lanes x 4 int8 products each) on the dot-product core, widening multiply-adds on the A72
    n1 = count_instructions("ort", tiny_artifacts[("ort-mobile", "int8")], "neoverse-n1", fs[:1])
    a72 = count_instructions("ort", tiny_artifacts[("ort-mobile", "int8")], "cortex-a72", fs[:1])
    depthwise = 16 * 9 * 256  # MLAS runs int8 depthwise with widening multiply-adds, not SDOT
    stem = 16 * 27 * 256  # the conv reading the model input stays float (quantize.float_input_layers): FMLA
    assert (macs - depthwise - stem) / 16 <= n1.per_invoke["sdot_udot"] < 1.5 * macs / 16, n1.per_invoke
    assert a72.per_invoke["sdot_udot"] == 0 and a72.per_invoke["int_mac"] > n1.per_invoke["int_mac"]
    assert stem / 4 <= n1.per_invoke["fmla"] < 1.15 * stem / 4, n1.per_invoke
    assert n1.per_invoke["load"] > 0 and n1.per_invoke["branch"] > 0


def test_per_op_counts_from_ort_profiler_boundaries(emulators, tiny_artifacts):
    """.ort: ONNX Runtime's profiler reads the clock around every op (a syscall under QEMU 7.2); the plugin's
    readings matched to the trace split the invoke by op: exact, repeatable, and the convs hold the FMLAs."""
    import shutil

    from edgec.runtimes.emulator.counts import count_instructions

    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler to build the instruction-count plugin (Debian package gcc; .ci/run installs it)")
    path = tiny_artifacts[("ort-mobile", "fp32")]
    fs = feeds(1)
    plain = count_instructions("ort", path, "cortex-a76", fs)
    by_op = count_instructions("ort", path, "cortex-a76", fs, per_op=True)
    again = count_instructions("ort", path, "cortex-a76", fs, per_op=True)
    assert plain.ops is None and by_op.ops is not None
    # the kernels' work is exact; the profiler's bookkeeping inside an op's bracket (it formats the times it
    # read, and a loaded host makes them longer numbers) varies by scalar instructions from run to run: bounded
    # per op at 0.1% plus 10,000 instructions (a few microseconds of the device's time), whatever the host's load
    vec = ("fmla", "fmul", "sdot_udot", "int_mac")
    assert [(o.name, [o.per_invoke[c] for c in vec]) for o in by_op.ops] == [
        (o.name, [o.per_invoke[c] for c in vec]) for o in again.ops]
    assert all(abs(a.total - b.total) <= 1e-3 * a.total + 10_000 for a, b in zip(by_op.ops, again.ops)), [
        (a.name, a.total, b.total) for a, b in zip(by_op.ops, again.ops)]
    assert [o.name for o in by_op.ops] == ["conv1", "dw", "pw", "gap", "flatten", "fc"]  # few_convs' nodes
    # every FMLA of the invoke is inside some op, and the profiler itself executes none
    assert sum(o.per_invoke["fmla"] for o in by_op.ops) == plain.per_invoke["fmla"]
    convs = [o for o in by_op.ops if "Conv" in o.op_type]
    assert sum(o.per_invoke["fmla"] for o in convs) > 0.95 * plain.per_invoke["fmla"]
    assert all(o.total > 0 for o in by_op.ops)


def test_op_boundaries_are_matched_by_time_or_not_at_all():
    from edgec.runtimes.emulator.counts import CLASSES, ops_from_marks

    def mark(t_us, n):
        return [0, int(t_us * 1000), *([0] * (len(CLASSES) - 1)), n]  # counts in the last class

    # clock readings (host µs; emulated ops take ms): run start, op a [1000, 4000], a stray read, op b
    # [4500, 14500], run end; the trace's times count from the profiler's own start
    marks = [mark(50_000, 0), mark(51_000, 10), mark(54_000, 40), mark(54_200, 41), mark(54_500, 45),
             mark(64_500, 145), mark(65_000, 150)]
    events = [{"name": "a", "op_type": "Conv", "ts": 21_000.0, "dur": 3_000.0},
              {"name": "b", "op_type": "Relu", "ts": 24_500.0, "dur": 10_000.0}]
    ops = ops_from_marks(marks, events)
    assert [(o.name, o.per_invoke[CLASSES[-1]]) for o in ops] == [("a", 30), ("b", 100)]
    wrong = [{**events[0]}, {**events[1], "dur": 6_000.0}]  # no readings 6 ms apart there: no per-op claim
    assert ops_from_marks(marks, wrong) is None and ops_from_marks([], events) is None


def test_wheels_of_old_runtime_versions_are_removed_unless_recently_used(tmp_path):
    """A new site-<versions> folder (the runtimes were upgraded) removes the ~160 MB folders of versions no edgec
    used for a day; one another virtualenv used recently stays (a guest may be importing from it)."""
    import os

    now = time.time()
    keep, old, recent, unstamped = (tmp_path / f"site-{n}" for n in ("new", "old", "recent", "unstamped"))
    for d in (keep, old, recent, unstamped):
        (d / "numpy").mkdir(parents=True)
    (old / ".last-used").touch()
    os.utime(old / ".last-used", (now - 2 * setup.STALE_AFTER_S,) * 2)
    (recent / ".last-used").touch()
    os.utime(unstamped, (now - 2 * setup.STALE_AFTER_S,) * 2)  # an older edgec's folder: its own mtime counts
    (tmp_path / "rootfs-bookworm-arm64").mkdir()
    removed = setup.remove_stale_sites(tmp_path, keep=keep, now=now)
    assert sorted(p.name for p in removed) == ["site-old", "site-unstamped"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rootfs-bookworm-arm64", "site-new", "site-recent"]


def test_using_the_emulator_marks_its_wheels_used(emulators):
    stamp = emulators["cortex-a76"].site / ".last-used"
    os_time = time.time()
    setup.ensure("cortex-a76")
    assert stamp.stat().st_mtime >= os_time - 1


def test_plugin_builds_of_other_sources_are_removed_after_a_day(tmp_path):
    import os

    from edgec.runtimes.emulator.counts import _remove_old_plugins

    now = time.time()
    current, old, recent = (tmp_path / f"insn_classes-{h}.so" for h in ("cur", "old", "recent"))
    for f in (current, old, recent):
        f.write_bytes(b"so")
    os.utime(old, (now - 2 * setup.STALE_AFTER_S,) * 2)
    os.utime(current, (now - 2 * setup.STALE_AFTER_S,) * 2)  # the one in use is never removed
    _remove_old_plugins(current)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["insn_classes-cur.so", "insn_classes-recent.so"]


def test_simulated_caches_count_a_streaming_kernel_line_by_line(emulators, tmp_path):
    """A Relu over 2 MB in / 2 MB out (a Raspberry Pi 5's A76 hierarchy: 64 KB L1D, 512 KB L2, 2 MB L3): every
    64-byte line of the input misses every level once per invoke and the output's lines miss as stores."""
    import shutil

    from edgec.runtimes.emulator.counts import count_instructions
    from edgec.runtimes.emulator.cpu_model import dram_bytes, hierarchy, stall_cycles

    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler to build the instruction-count plugin (Debian package gcc; .ci/run installs it)")
    n = 1 << 19  # floats: 2 MB in and 2 MB out stream through the 2 MB L3 (LRU): every line misses everywhere
    path = tmp_path / "relu.onnx"
    onnx.save(relu(n), str(path))
    caches = hierarchy("cortex-a76", 512, 2)
    assert caches == [(65536, 4), (524288, 8), (2097152, 16)]
    fs = [{"x": np.random.default_rng(0).standard_normal((1, n)).astype(np.float32)}]
    # one run: the counts' exactness across runs is tested above through LiteRT (ONNX Runtime's own path now
    # and then differs by ~1e-5 of its instructions between runs, and its misses then by < 1 %)
    a = count_instructions("ort", path, "cortex-a76", fs, caches=caches)
    lines = n * 4 // 64
    l1, l2, l3 = a.cache
    for level in (l1, l2, l3):
        assert lines <= level["load_misses"] < 1.05 * lines, a.cache  # the input, once per line
        assert lines <= level["store_misses"] < 1.05 * lines, a.cache  # the output (write-allocate)
    assert l1["accesses"] > 8 * lines  # 16-byte vector loads and stores: several per line, hits after the first
    assert l2["accesses"] == l1["load_misses"] + l1["store_misses"]  # the L2 sees exactly the L1's misses
    assert 0.9 * lines <= l3["writebacks"] <= 1.05 * lines  # the previous invoke's output, evicted dirty
    assert dram_bytes(a.cache) == 64 * (l3["load_misses"] + l3["store_misses"] + l3["writebacks"])
    # only DRAM misses stall: (100 ns x 2.4 GHz - the 128/4 ROB window) per load miss, 22 in flight (A76 TRM)
    assert stall_cycles(a.cache, "cortex-a76", 2.4) == pytest.approx(l3["load_misses"] * (240 - 32) / 22)


def test_cache_hierarchy_per_core_and_profile():
    """The simulated levels come from the core (L1D, ways) and the profile (L2 and last-level sizes); an A72's
    shared L2 is its last level; without the sizes, or for a core without a table, nothing is simulated."""
    from edgec.config.loader import load_profile
    from edgec.runtimes.emulator.cpu_model import hierarchy

    assert hierarchy("cortex-a72", None, 1) == [(32768, 2), (1048576, 16)]
    assert hierarchy("cortex-a76", 256, 2) == [(65536, 4), (262144, 8), (2097152, 16)]
    assert hierarchy("cortex-a76", None, 2) is None and hierarchy("cortex-a76", 512, None) is None
    assert hierarchy("cortex-a53", 128, 1) is None
    for name, levels in (("raspberry-pi-5", 3), ("raspberry-pi-4", 2), ("pixel-4", 3)):
        cpu = load_profile(name).hardware.cpu
        assert len(hierarchy(cpu.emulate, cpu.l2_kb, cpu.llc_mb)) == levels, name
