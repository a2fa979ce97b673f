"""Measure this machine for a `host` profile: compute throughput and memory bandwidth with ONNX Runtime itself.

`edgec profiles detect` calls `detect()` and writes the YAML. Every number comes from timing a one-op ONNX model
in ONNX Runtime (the runtime the host measurements use), so the roofline of the host profile describes what
that runtime reaches here, not a spec sheet. Emulate mode scales host measurements by device/host estimates, so
an honest host profile is what makes it work.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from edgec.validate.timing import time_runs

OPSET = 17


def _model(nodes, inputs, outputs, inits=()) -> bytes:
    g = helper.make_graph(nodes, "cal", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    return m.SerializeToString()


def _vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def _session(model: bytes, threads: int):
    from edgec.runtimes.host_ort import OrtRunner

    return OrtRunner(model, threads=threads, level="all")


def _median_ms(model: bytes, feeds: dict, threads: int, runs: int) -> float:
    """Median time of a run: CPU time for one thread (other work on the machine does not stretch it), else wall
    clock."""
    runner = _session(model, threads)
    clock = time.process_time if threads == 1 else None
    times = time_runs(lambda: runner.run(feeds), runs, warmup=max(2, runs // 5), clock=clock)
    return float(np.median(times))


def matmul_gflops(threads: int, n: int = 1024, runs: int = 15) -> float:
    rng = np.random.default_rng(0)
    b = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "b")
    model = _model([helper.make_node("MatMul", ["a", "b"], ["y"])], [_vi("a", TensorProto.FLOAT, [n, n])],
                   [_vi("y", TensorProto.FLOAT, [n, n])], [b])
    ms = _median_ms(model, {"a": rng.standard_normal((n, n)).astype(np.float32)}, threads, runs)
    return 2.0 * n**3 / (ms / 1e3) / 1e9


def matmul_int8_gops(threads: int, n: int = 1024, runs: int = 15) -> float:
    rng = np.random.default_rng(0)
    b = numpy_helper.from_array(rng.integers(-64, 64, (n, n)).astype(np.int8), "b")
    model = _model([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], [_vi("a", TensorProto.UINT8, [n, n])],
                   [_vi("y", TensorProto.INT32, [n, n])], [b])
    ms = _median_ms(model, {"a": rng.integers(0, 255, (n, n)).astype(np.uint8)}, threads, runs)
    return 2.0 * n**3 / (ms / 1e3) / 1e9


def conv_gflops(threads: int, c: int = 64, hw: int = 56, k: int = 3, group: int = 1, runs: int = 20) -> float:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((c, c // group, k, k)).astype(np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[k // 2] * 4, group=group)
    model = _model([node], [_vi("x", TensorProto.FLOAT, [1, c, hw, hw])], [_vi("y", TensorProto.FLOAT, [1, c, hw, hw])],
                   [w])
    ms = _median_ms(model, {"x": rng.standard_normal((1, c, hw, hw)).astype(np.float32)}, threads, runs)
    return 2.0 * c * (c // group) * k * k * hw * hw / (ms / 1e3) / 1e9


def depthwise_gflops(threads: int) -> float:
    """Depthwise 3x3 convs of mobile nets' shapes, geometric mean: runtimes have fast paths for some channel
    counts (multiples of the vector width) and slow ones for others (MobileNet 96@112, ShuffleNet 58@56)."""
    shapes = ((58, 56), (96, 112), (128, 56), (116, 28))
    rates = [conv_gflops(threads, c=c, hw=hw, group=c, runs=10) for c, hw in shapes]
    return float(np.exp(np.mean(np.log(rates))))


def bandwidth_gbps(threads: int, mb: int = 64, runs: int = 10) -> float:
    """Add of two large float tensors (far bigger than any cache): 2 reads + 1 write per element."""
    n = mb * 1024 * 1024 // 4
    model = _model([helper.make_node("Add", ["a", "b"], ["y"])],
                   [_vi("a", TensorProto.FLOAT, [n]), _vi("b", TensorProto.FLOAT, [n])], [_vi("y", TensorProto.FLOAT, [n])])
    a = np.ones(n, np.float32)
    ms = _median_ms(model, {"a": a, "b": a}, threads, runs)
    return 3 * n * 4 / (ms / 1e3) / 1e9


def op_overhead_us(threads: int, ops: int = 200, runs: int = 30) -> float:
    """A chain of tiny Adds: the per-op dispatch cost of the runtime."""
    nodes = [helper.make_node("Add", [f"t{i}", "one"], [f"t{i + 1}"]) for i in range(ops)]
    one = numpy_helper.from_array(np.ones(16, np.float32), "one")
    model = _model(nodes, [_vi("t0", TensorProto.FLOAT, [16])], [_vi(f"t{ops}", TensorProto.FLOAT, [16])], [one])
    # ORT_ENABLE_ALL would not fuse Adds; "basic" keeps the chain as it is
    ms = _median_ms(model, {"t0": np.zeros(16, np.float32)}, threads, runs)
    return ms * 1e3 / ops


def elementwise_gbps(threads: int, c: int = 64, hw: int = 56, runs: int = 50) -> float:
    """A Relu on an activation-sized tensor (stays in cache): effective bytes/s of one elementwise pass."""
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", TensorProto.FLOAT, [1, c, hw, hw])],
                   [_vi("y", TensorProto.FLOAT, [1, c, hw, hw])])
    ms = _median_ms(model, {"x": np.ones((1, c, hw, hw), np.float32)}, threads, runs)
    return 2 * c * hw * hw * 4 / (ms / 1e3) / 1e9


def maxpool_gflops(threads: int, c: int = 64, hw: int = 112, runs: int = 30) -> float:
    model = _model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
                   [_vi("x", TensorProto.FLOAT, [1, c, hw, hw])], [_vi("y", TensorProto.FLOAT, [1, c, hw // 2, hw // 2])])
    ms = _median_ms(model, {"x": np.ones((1, c, hw, hw), np.float32)}, threads, runs)
    return 9 * c * (hw // 2) ** 2 / (ms / 1e3) / 1e9


def lrn_gflops(threads: int, c: int = 64, hw: int = 56, size: int = 5, runs: int = 10) -> float:
    """LRN has a slow reference kernel in some runtimes (ORT: ~100x below peak); flops as opcost counts them."""
    model = _model([helper.make_node("LRN", ["x"], ["y"], size=size)], [_vi("x", TensorProto.FLOAT, [1, c, hw, hw])],
                   [_vi("y", TensorProto.FLOAT, [1, c, hw, hw])])
    ms = _median_ms(model, {"x": np.ones((1, c, hw, hw), np.float32)}, threads, runs)
    return (2.0 * size + 12) * c * hw * hw / (ms / 1e3) / 1e9


def measure(threads: int) -> dict[str, float]:
    """One round of every micro-benchmark."""
    return {
        "peak": matmul_gflops(threads), "int8": matmul_int8_gops(threads), "conv": conv_gflops(threads),
        "dw": depthwise_gflops(threads), "bw": bandwidth_gbps(threads),
        "ew": elementwise_gbps(threads), "pool": maxpool_gflops(threads), "oh": op_overhead_us(threads),
        "lrn": lrn_gflops(threads),
    }


def detect(threads: int | None = None, rounds: int = 3) -> dict:
    """Measure this machine; returns the host profile as a dict (YAML-ready) for `threads` (default all cores).

    Every micro-benchmark runs on one thread and is timed in CPU time, which other work on a shared machine does
    not stretch (wall-clock calibration on a busy 2-core box read a 3x3 conv at 6x the "peak" MatMul); compute
    peaks are that core's times the core count, bandwidth stays one core's (what one thread can pull). Each runs
    `rounds` times, interleaved, and the best round counts."""
    threads = threads or os.cpu_count() or 1
    samples = [measure(1) for _ in range(rounds)]
    m = {k: float(min(s[k] for s in samples) if k == "oh" else max(s[k] for s in samples)) for k in samples[0]}
    cores = os.cpu_count() or 1
    for k in ("peak", "int8", "conv", "dw", "pool", "lrn"):  # compute rates scale with cores; ratios stay
        m[k] *= cores
    return profile_from(m, threads)


def profile_from(m: dict[str, float], threads: int) -> dict:
    """The host profile (YAML-ready dict) from one set of micro-benchmark numbers (see measure())."""
    cores = os.cpu_count() or 1
    peak, int8, conv, dw, bw, ew, pool, oh, lrn = (m[k] for k in ("peak", "int8", "conv", "dw", "bw", "ew", "pool",
                                                                    "oh", "lrn"))
    eff = {
        "gemm": round(min(1.0, conv / peak), 3),
        "depthwise": round(min(1.0, dw / peak), 3),
        # elementwise/reduce/move ops on activations run from cache: their speed relative to DRAM bandwidth
        "elementwise": round(min(1.0, pool / peak), 3),
        "reduce": round(min(1.0, pool / peak), 3),
        "move": round(min(1.0, pool / peak), 3),
    }
    mem = _memory_gb()
    hardware = {
        "cpu": {"cores": cores, "big_cores": cores, "peak_gflops_fp32": round(peak, 1),
                "peak_gops_int8": round(int8, 1)},
        "memory_bandwidth_gbps": round(bw, 2),
        "estimate": {"efficiency": eff, "op_overhead_us": round(oh, 2),
                     "bandwidth_efficiency": round(min(1.5, ew / bw), 3),
                     "op_efficiency": {"LRN": round(min(1.0, lrn / peak), 4)}},
    }
    if mem:
        hardware["memory_gb"] = mem
    return {
        "name": "host",
        "target": "ort-mobile",
        "description": f"This machine ({platform.machine()}, {cores} cores), measured by `edgec profiles detect` "
                       f"with onnxruntime, {threads} threads",
        "hardware": hardware,
        "runtime": {"threads": threads},
        "validate": {"latency": {"mode": "host"}},
    }


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def to_yaml(profile: dict) -> str:
    import yaml

    head = ("# Written by `edgec profiles detect`: every number was measured on this machine with onnxruntime\n"
            "# (peak = 1024^3 MatMul, int8 = MatMulInteger, gemm efficiency = 3x3 conv / peak, bandwidth = 64 MB Add).\n")
    return head + yaml.safe_dump(profile, sort_keys=False)


def user_host_profile() -> Path:
    """Where `edgec profiles detect` writes by default and where emulate mode looks first."""
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "edgec" / "host.yaml"

