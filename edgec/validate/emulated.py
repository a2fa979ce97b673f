"""--emulator qemu[:CORE]: an artifact's numerics again, with the real aarch64 runtime under QEMU user-mode
(edgec.runtimes.emulator), on the first few of the same inputs the host run used.

The host run uses x86 kernels; a phone runs ARM ones (NEON/SDOT in XNNPACK and MLAS). Float kernels agree to
~1e-7 either way, but int8 kernels saturate and round differently, so for int8 the ARM-kernel verdict gates
(ArtifactResult.passed)."""

from __future__ import annotations

import time

import onnx

from edgec.artifact import Artifact, NumericsResult
from edgec.config.models import Profile

EMULATED_FORMATS = ("tflite", "ort")  # runtimes with aarch64 Linux wheels; CoreML has none


def emulator_core(profile: Profile) -> str | None:
    """The QEMU core to run on: CORE of qemu:CORE, else the profile's hardware.cpu.emulate, else cortex-a76."""
    spec = profile.validate_.numerics.emulator
    if not spec:
        return None
    from edgec.runtimes.emulator.cores import DEFAULT_CORE, check_core

    core = spec.partition(":")[2] or profile.hardware.cpu.emulate or DEFAULT_CORE
    check_core(core, f"--emulator / profile {profile.name} validate.numerics.emulator")
    return core


def arm_numerics(artifact: Artifact, prepared, profile: Profile, original: onnx.ModelProto, feeds: list[dict],
                 ref_outputs: list[dict], threads: int, host_outputs: list[dict] | None = None) -> NumericsResult | None:
    """host_outputs: the host run's outputs on `feeds` (float builds; a quantized build's are in its cache)."""
    core = emulator_core(profile)
    if core is None:
        return None
    if artifact.format not in EMULATED_FORMATS:
        artifact.notes.append(f"emulator: {artifact.format} artifacts have no aarch64 Linux runtime, so only the "
                              f"android and ort-mobile artifacts ran under qemu {core}")
        return None
    from edgec.runtimes.emulator.runner import emulated_runner
    from edgec.runtimes.numerics import compare, thresholds

    spec = profile.validate_.numerics
    t0 = time.perf_counter()
    runner = _Recorder(emulated_runner(artifact.format, artifact.path, core))
    try:
        if prepared.quant is not None:
            from edgec.quantize.accuracy import evaluate

            result = evaluate(prepared.quant, original, runner, spec, threads, limit=spec.emulator_samples)
        else:
            gates = thresholds(spec, artifact.precision)
            actual = [runner.run(f) for f in feeds[:spec.emulator_samples]]
            result = compare(ref_outputs[:len(actual)], actual, runner.name, gates["min_cosine"], gates["max_abs"],
                             gates["min_delta_cosine"])
    finally:
        runner.runner.close()
    if prepared.quant is not None:
        from edgec.quantize.accuracy import OUTPUTS_KEY

        host_outputs = prepared.quant.reference_cache.get(OUTPUTS_KEY, {}).get(artifact.target)
    artifact.details["emulator"] = {
        "core": core, "runtime": runner.name, "samples": result.samples,
        "seconds": round(time.perf_counter() - t0, 1),
        "gates": "ARM kernels" if artifact.precision.startswith("int8") else "host and ARM kernels",
        "vs_host": _agreement(host_outputs or [], runner.outputs),
    }
    return result


class _Recorder:
    """Keeps the outputs a runner returned, for the ARM-vs-x86 comparison on the same inputs."""

    def __init__(self, runner):
        self.runner, self.name, self.outputs = runner, runner.name, []

    def run(self, feeds):
        out = self.runner.run(feeds)
        self.outputs.append(out)
        return out


def _agreement(host: list[dict], arm: list[dict]) -> dict:
    """Per output, ARM-kernel vs host-kernel outputs on the same inputs: cosine, max-abs, bit-identical."""
    import numpy as np

    out = {}
    pairs = list(zip(host, arm))
    for name in (arm[0] if arm else {}):
        if not pairs or any(name not in h for h, _ in pairs):
            continue
        h = np.concatenate([np.ravel(p[0][name]).astype(np.float64) for p in pairs])
        a = np.concatenate([np.ravel(p[1][name]).astype(np.float64) for p in pairs])
        denom = np.linalg.norm(h) * np.linalg.norm(a)
        out[name] = {"cosine": float(h @ a / denom) if denom > 0 else float(np.array_equal(h, a)),
                     "max_abs": float(np.abs(h - a).max()) if h.size else 0.0,
                     "identical": bool(np.array_equal(h, a)), "samples": len(pairs)}
    return out


def instruction_latency(artifact: Artifact, model: onnx.ModelProto, profile: Profile, feeds: dict, est):
    """--latency emulate with --emulator: (LatencyResult, roofline estimate), or None where the instruction model
    does not apply (no emulator, a CoreML artifact, a core without a throughput table).

    ms = max(cycles / clock / threads, bytes moved / achievable bandwidth): cycles from the executed instructions
    by class and the core's throughput table (cpu_model.py), the hottest blocks at
    llvm-mca's pipeline simulation where a suitable LLVM is installed (mca.py), plus, where the profile gives the cache sizes, the
    stalls on DRAM misses of the simulated caches; bytes from those misses, else the roofline's per-op traffic."""
    core = emulator_core(profile)
    if core is None or artifact.format not in EMULATED_FORMATS:
        return None
    from edgec.runtimes.emulator import cpu_model, mca
    from edgec.runtimes.emulator.counts import count_instructions
    from edgec.runtimes.emulator.cpu_model import TABLES, cycles
    from edgec.validate.timing import _result

    if core not in TABLES:
        artifact.notes.append(f"emulator: no throughput table for {core} (have {', '.join(TABLES)}): latency "
                              f"'emulate' used the host run x roofline ratio instead")
        return None
    spec, cpu = profile.validate_.latency, profile.hardware.cpu
    t0 = time.perf_counter()
    caches = cpu_model.hierarchy(core, cpu.l2_kb, cpu.llc_mb)  # None: throughput bound only
    llvm = mca.find_llvm(core)
    if llvm is None:
        artifact.notes.append(f"emulator: {mca.missing_note(core)}; the hot loops were costed at the throughput "
                              f"table instead of llvm-mca's pipeline simulation")
    counts = count_instructions(artifact.format, artifact.path, core, [feeds], caches=caches, blocks=llvm is not None)
    cyc, bound = cycles(counts.per_invoke, core)
    peak_cyc, peak_bound = cyc, bound  # the throughput bound (the model before the pipeline simulation)
    pipe = None
    if llvm is not None and counts.blocks:
        from edgec.runtimes.emulator.setup import emulator_root

        pipe = mca.pipeline_cycles(counts.blocks, counts.per_invoke, core, llvm, emulator_root() / "mca")
        cyc, bound = pipe.cycles, "pipeline"
    # no clock in the profile: the fp32 peak is cores x clock x 2 FMA pipes x 4 lanes x 2 flops
    clock = cpu.clock_ghz or cpu.peak_gflops_fp32 / ((cpu.big_cores or cpu.cores) * 16)
    parallel = min(profile.runtime.threads, cpu.big_cores or cpu.cores)
    eff = profile.hardware.estimate.bandwidth_efficiency
    bw = profile.hardware.memory_bandwidth_gbps * eff
    # the throughput bound alone, memory term from the roofline's traffic (the model before the cache simulation)
    dram_mb = _dram_mb(model, est, cpu.llc_mb)
    throughput_ms = max(peak_cyc / (clock * 1e6) / parallel, dram_mb / bw)
    stall = cpu_model.stall_cycles(counts.cache, core, clock) if counts.cache else 0.0
    if counts.cache:  # DRAM traffic as the simulated last level saw it
        dram_mb = cpu_model.dram_bytes(counts.cache) / 1e6
    compute_ms = (cyc + stall) / (clock * 1e6) / parallel
    memory_ms = dram_mb / bw
    peak_stall_ms = max((peak_cyc + stall) / (clock * 1e6) / parallel, memory_ms)  # before the pipeline simulation
    total = max(compute_ms, memory_ms)
    result = _result("emulate", total, total, total, counts.invokes, parallel, spec.budget_ms, spec.budget_on,
                     f"instruction model on {core}")
    result.spread = None
    result.details.update({
        "method": (f"instructions the aarch64 {artifact.format} runtime executed on qemu {core} (one thread, "
                   f"{counts.total:,} per invoke) x the {TABLES[core].source} throughputs = {peak_cyc:,.0f} cycles "
                   f"({peak_bound}-bound){_pipeline_text(pipe)}, at {clock:g} GHz on {parallel} thread(s) = {compute_ms:.3f} ms; memory "
                   f"{memory_ms:.3f} ms ({dram_mb:.1f} MB from DRAM at {eff:.0%} of "
                   f"{profile.hardware.memory_bandwidth_gbps:g} GB/s); roofline estimate {est.total_ms:.3f} ms"),
        "instructions": counts.per_invoke, "core": core, "cycles": round(cyc), "bound": bound, "clock_ghz": clock,
        "compute_ms": round(compute_ms, 4), "memory_ms": round(memory_ms, 4), "roofline_ms": round(est.total_ms, 4),
        "emulated_s": round(time.perf_counter() - t0, 1), "peak_cycles": round(peak_cyc),
        "peak_stall_ms": round(peak_stall_ms, 4),
    })
    if pipe is not None:
        result.details["pipeline"] = {"model": pipe.model, "blocks": pipe.blocks, "coverage": round(pipe.coverage, 4),
                                      "simulated_cycles": round(pipe.simulated_cycles),
                                      "rest_cycles": round(pipe.rest_cycles), "hottest": pipe.hottest}
    if counts.cache:
        result.details["method"] += (f"; + {stall:,.0f} stall cycles on DRAM misses of the simulated "
                                     f"{'/'.join(_size(b) for b, _ in caches)} caches ({cpu_model.CACHES[core].source})")
        names = ("l1d", "l2", "llc") if len(counts.cache) == 3 else ("l1d", "llc")
        result.details.update({"cache": dict(zip(names, counts.cache)),
                               "stall_cycles": round(stall), "throughput_ms": round(throughput_ms, 4)})
    if artifact.format == "ort":
        result.details.update(_per_op(artifact, core, feeds, clock, parallel, counts.total))
    return result, est


def _pipeline_text(pipe) -> str:
    if pipe is None:
        return ""
    return (f"; with the hottest {pipe.blocks} translated blocks ({pipe.coverage:.1%} of the instructions) at "
            f"llvm-mca's cycles per iteration ({pipe.model}) and the rest at the table: {pipe.cycles:,.0f} cycles")


def _size(nbytes: int) -> str:
    return f"{nbytes >> 20} MB" if nbytes >= 1 << 20 else f"{nbytes >> 10} KB"


def _dram_mb(model: onnx.ModelProto, est, llc_mb: float | None) -> float:
    """MB an invoke moves through DRAM: every weight once, and the activations of the ops whose activations do
    not fit the last-level cache (an op's inputs and outputs that fit stay on chip between the producing and the
    consuming op). Without a cache size in the profile: every byte the roofline moves."""
    if not llc_mb:
        return sum(o.mbytes for o in est.ops)
    sizes = {i.name: _nbytes(i) for i in model.graph.initializer}
    moved = sum(sizes.values()) / 1e6
    for n in model.graph.node:  # an int8 weight reaches its conv through a DequantizeLinear: still a weight
        if n.op_type == "DequantizeLinear" and n.input and n.input[0] in sizes:
            sizes[n.output[0]] = sizes[n.input[0]]
    weights = {n.name: sum(sizes.get(x, 0) for x in n.input) / 1e6 for n in model.graph.node}
    for o in est.ops:
        acts = max(o.mbytes - weights.get(o.name, 0.0), 0.0)
        if acts > llc_mb:
            moved += acts
    return moved


def _nbytes(t: onnx.TensorProto) -> int:
    import numpy as np

    n = int(np.prod(t.dims)) if t.dims else 1
    return n * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize


OPS_SHOWN = 12


def _per_op(artifact: Artifact, core: str, feeds: dict, clock: float, parallel: int, total: int) -> dict:
    """Instructions and cycles per op (.ort: ONNX Runtime's profiler marks the op boundaries), from a second,
    profiled invoke: the profiler's own bookkeeping stays out of the totals above."""
    from edgec.runtimes.emulator.counts import count_instructions
    from edgec.runtimes.emulator.cpu_model import cycles

    counts = count_instructions(artifact.format, artifact.path, core, [feeds], per_op=True)
    if not counts.ops:
        artifact.notes.append("emulator: ONNX Runtime's profiler trace could not be matched to the op boundaries "
                              "the counting plugin saw, so there are no per-op instruction counts")
        return {}
    rows = []
    for op in counts.ops:
        cyc, bound = cycles(op.per_invoke, core)
        rows.append({"name": op.name, "op_type": op.op_type, "instructions": op.total, "cycles": round(cyc),
                     "bound": bound, "ms": round(cyc / (clock * 1e6) / parallel, 4),
                     "fmla": op.per_invoke["fmla"], "sdot_udot": op.per_invoke["sdot_udot"]})
    in_ops = sum(r["instructions"] for r in rows)
    return {"ops": sorted(rows, key=lambda r: -r["cycles"])[:OPS_SHOWN], "ops_counted": len(rows),
            "ops_note": (f"per op: {len(rows)} ops from a profiled invoke ({in_ops:,} instructions inside ops; the "
                         f"unprofiled invoke {total:,} in all), the {min(OPS_SHOWN, len(rows))} with the most cycles")}
