"""The latency modes (the timing protocol itself is edgec.validate.timing).

`measure_latency` is the one entry point the build calls. Modes, always labelled in the result:
- host:     the artifact's own runtime on this machine (the Backend's runner)
- emulate:  the host measurement scaled to the device by the roofline: x (device estimate / host estimate)
- estimate: the roofline alone (edgec.validate.estimate); the per-op table is written next to the artifact
- device:   attached hardware (ssh:// Linux board, adb: Android phone, coreml on a Mac)
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from edgec.artifact import LatencyResult
from edgec.validate.timing import NOISY_SPREAD, _result, measure_host, summarize, time_runs  # noqa: F401

TOP_OPS = 10  # slowest ops kept in the manifest and shown in the report / budget message


# ---------------------------------------------------------------- the build's entry point


def measure_latency(runner, artifact, model, profile, feeds: dict, threads: int,
                    runner_for=None, table_dir: Path | None | str = "next-to-artifact") -> LatencyResult | None:
    """Latency of `artifact` for `profile` in the profile's mode (validate.latency.mode).

    runner: the Backend's runner for this artifact on this machine; model: the prepared ONNX graph the
    artifact was lowered from (static shapes; the estimator reads it); threads: host threads to measure with;
    runner_for(threads): another runner of the same artifact (emulate times a one-thread one).
    A missed budget sets passed=False with a message naming the number, the budget and the slowest ops.
    table_dir: where the per-op estimate table goes (default: next to the artifact); None: nowhere (`edgec
    validate` without --out leaves the build folder as it was).
    """
    spec = profile.validate_.latency
    mode = spec.mode
    if mode == "off":
        return None
    notes: list[str] = []
    if mode in ("host", "emulate") and not getattr(runner, "latency_meaningful", True):
        notes.append(f"{runner.name} is not a latency source (a reference interpreter, not the target's runtime): "
                     f"mode '{mode}' replaced by 'estimate'")
        mode = "estimate"
    if mode == "host":
        result = measure_host(runner, feeds, spec.runs, spec.warmup, threads, spec.budget_ms, spec.budget_on,
                              spec.time_budget_s)
        est = None
    elif mode == "estimate":
        est = _estimate_built(model, profile, artifact)
        result = _result("estimate", est.total_ms, est.total_ms, est.total_ms, 0, est.threads, spec.budget_ms,
                         spec.budget_on, f"roofline on {profile.name} ({est.unit})")
        result.spread = None
        result.details["method"] = ("roofline: per op max(work / (peak x efficiency), bytes / bandwidth) + per-op "
                                    f"overhead, from the '{profile.name}' hardware numbers; not a measurement")
    elif mode == "emulate":
        from edgec.validate.emulated import instruction_latency

        # with --emulator: instructions the ARM runtime executes x the core's throughput; else host time x ratio
        counted = instruction_latency(artifact, model, profile, feeds, _estimate_built(model, profile, artifact))
        result, est = counted if counted is not None else _emulate(runner, model, profile, artifact.precision,
                                                                     feeds, runner_for)
    elif mode == "device":
        result = _device(artifact, profile, feeds)
        est = None
    else:  # the config model admits no other value
        raise ValueError(mode)
    if est is None and result.passed is False:
        est = _estimate_built(model, profile, artifact)  # the slowest ops explain the miss
    if est is not None:
        result.details["estimate"] = est.summary(TOP_OPS)
        where = Path(artifact.path).parent if table_dir == "next-to-artifact" else table_dir
        if where is not None:
            table = Path(where) / f"{Path(artifact.path).name}.latency-ops.csv"
            est.write_table(table)
            if table not in artifact.extra_files:
                artifact.extra_files.append(table)
            result.details["table"] = table.name
    if notes:
        result.details["notes"] = notes + result.details.get("notes", [])
    if result.passed is False and est is not None:
        slow = ", ".join(f"{o.name} ({o.op_type}) {o.ms:.2f} ms" for o in est.top(3))
        result.message += f"; slowest ops (estimate on {profile.name}): {slow}"
    if notes:
        result.message = "; ".join(notes + ([result.message] if result.message else []))
    return result


def _estimate(model, profile, precision: str, threads: int | None = None, runtime: str | None = None):
    from edgec.validate.estimate import estimate

    return estimate(model, for_this_machine(profile, runtime), precision=precision, threads=threads)


def _estimate_built(model, profile, artifact):
    """The estimate of the graph and compute precision the artifact runs (a CoreML program fixes both)."""
    from edgec.validate.estimate import as_built, estimate

    runtime = runtime_of(artifact.format)
    model, program = as_built(model, artifact)
    return estimate(model, for_this_machine(profile, runtime), precision=artifact.precision,
                    program_precision=program)


def runtime_of(fmt: str | None) -> str | None:
    """The host runtime (costfit.RUNTIMES) an artifact format runs in here; None: no fitted coefficients."""
    return {"tflite": "litert", "ort": "ort-extended"}.get(fmt or "")


def for_this_machine(profile, runtime: str | None = None):
    """A profile whose hardware is 'this machine' (hardware.calibrated) with the calibrated numbers in place of
    the YAML's fallback ones (the estimate coefficients fitted in `runtime`, where there are)."""
    if not profile.hardware.calibrated:
        return profile
    host, _ = host_profile(profile.validate_.latency, runtime)
    hardware = host.hardware.model_copy(update={"calibrated": False})
    return profile.model_copy(update={"hardware": hardware})


def host_profile(spec=None, runtime: str | None = None):
    """The profile describing this machine and where it came from: validate.latency.host_profile,
    $EDGEC_HOST_PROFILE, the file `edgec profiles detect` wrote, else this machine's cached calibration
    (measured now on first use), with the roofline coefficients fitted in `runtime` ('ort', 'litert'; None: the
    common ones). Returns (profile, source)."""
    from edgec.config.loader import load_profile
    from edgec.validate.hostcal import user_host_profile

    for cand in (getattr(spec, "host_profile", None), os.environ.get("EDGEC_HOST_PROFILE")):
        if cand:
            return load_profile(cand), f"given: {cand}"
    user = user_host_profile()
    if user.exists():
        return load_profile(str(user)), f"written by `edgec profiles detect` to {user}"
    entry = calibrated_host()
    path = entry.profile_for(runtime)
    fitted = f"; coefficients fitted in {runtime}" if path != entry.profile_path else ""
    return load_profile(str(path)), entry.describe() + fitted


def calibrated_host():
    from edgec.validate.hostcache import calibrated

    return calibrated()


def measure_cpu_time(runner, feeds: dict, runs: int, warmup: int, max_seconds: float | None = None):
    """Host timing that the machine's load does not move: the process's CPU time per run of a one-thread runner.

    On a shared machine other processes stretch the wall-clock time of a run (the runtime waits for a core) but
    not the CPU time it spends computing. Returns (LatencyResult of CPU ms, how much the load stretched the wall
    clock: mean wall / mean CPU time)."""
    t0 = time.perf_counter()
    cpu = time_runs(lambda: runner.run(feeds), runs, warmup, max_seconds, clock=time.process_time)
    wall = (time.perf_counter() - t0) * 1000.0 / (len(cpu) + warmup)
    result = summarize(cpu, "host", 1, None, "median", runner.name)
    stretch = wall / float(np.mean(cpu)) if np.mean(cpu) > 0 else 1.0
    return result, {"wall_mean_ms": round(wall, 4), "load_stretch": round(stretch, 3)}


def _float_form(model):
    """The float form of a QDQ graph (activations float, 8-bit weights dequantized once): what the host times
    for int8 on x86, and so also what the host estimate must cost (not int8 kernels it did not run)."""
    import copy

    from edgec.graph.passes import drop_activation_qdq

    floated = copy.deepcopy(model)
    drop_activation_qdq(floated)
    _dequantize_weights(floated)
    return floated


def _dequantize_weights(model) -> None:
    """Constant weights' DequantizeLinear become float initializers: the fp32 graph, as a float build has it.
    ONNX Runtime keeps a DQ of a constant unfolded (for its QDQ fusions) and would dequantize every weight on
    every run, a cost neither the fp32 build nor the int8 device kernels pay."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    for node in list(graph.node):
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits or any(
                a.name == "block_size" for a in node.attribute) or not all(n in inits for n in node.input[1:] if n):
            continue
        x = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
        scale = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        zp = (numpy_helper.to_array(inits[node.input[2]]).astype(np.float32) if len(node.input) > 2 and node.input[2]
              else np.zeros_like(scale))
        if scale.ndim == 1 and scale.size > 1:  # per-axis: along the node's axis
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1) % x.ndim
            shape = [1] * x.ndim
            shape[axis] = scale.size
            scale, zp = scale.reshape(shape), zp.reshape(shape)
        graph.initializer.append(numpy_helper.from_array(((x - zp) * scale).astype(np.float32), node.output[0]))
        graph.node.remove(node)


def _host_fp32_runner(floated, threads: int = 1):
    """ONNX Runtime on the float form of a QDQ graph (see _float_form)."""
    from edgec.runtimes.host_ort import OrtRunner

    return OrtRunner(floated.SerializeToString(), threads=threads, level="all")


def _emulate(runner, model, profile, precision: str, feeds: dict, runner_for=None):
    """CPU time of a one-thread run here x (device estimate / one-thread host estimate), with the calibrated host.

    One thread and CPU time, because that is what other work on the machine does not move (a busy 2-core CI box
    put the same file's wall-clock emulation at 34, 26 and 19 ms in three runs). int8 on an x86 host: neither
    runtime's x86 int8 kernels are the ARM ones a device runs (LiteRT's x86 int8 is slower than its fp32), so the
    host's fp32 time of the same graph is scaled by device int8 / host fp32."""
    import platform

    spec = profile.validate_.latency
    via_fp32 = precision == "int8" and platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    floated = _float_form(model) if via_fp32 else None
    timed = _host_fp32_runner(floated) if via_fp32 else (runner_for(1) if runner_for else runner)
    # the host estimate with the coefficients of the runtime that was timed
    host, source = host_profile(spec, _timed_runtime(timed.name))
    measured, load = measure_cpu_time(timed, feeds, spec.runs, spec.warmup, spec.time_budget_s)
    # the host estimate of exactly what was timed: the float form for int8 via fp32
    est_host = _estimate(floated if via_fp32 else model, host, "fp32" if via_fp32 else precision, threads=1)
    est_dev = _estimate(model, profile, precision)
    scale = est_dev.total_ms / est_host.total_ms if est_host.total_ms > 0 else 1.0
    result = _result("emulate", measured.median_ms * scale, measured.p90_ms * scale, measured.min_ms * scale,
                     measured.runs, est_dev.threads, spec.budget_ms, spec.budget_on, runner.name)
    result.spread, result.noisy = measured.spread, measured.noisy
    what = f"{timed.name} on the fp32 form of this int8 graph" if via_fp32 else timed.name
    agree = result.median_ms / est_dev.total_ms if est_dev.total_ms > 0 else 1.0
    result.details.update({
        "host_median_ms": measured.median_ms, "host_p90_ms": measured.p90_ms, "host_min_ms": measured.min_ms,
        "host_threads": 1, "host_profile": host.name, "host_profile_source": source,
        "scale": round(scale, 4), "host_estimate_ms": round(est_host.total_ms, 4),
        "device_estimate_ms": round(est_dev.total_ms, 4), "device_compute_share": round(est_dev.compute_share, 4),
        "emulate_vs_estimate": round(agree, 3), "load": load, "host_int8_via_fp32": via_fp32,
        "method": (f"{what} here, 1 thread: median {measured.median_ms:.2f} ms of CPU time (wall clock "
                   f"{load['wall_mean_ms']:.2f} ms: the machine's load stretched it x{load['load_stretch']:.2f}), "
                   f"x {scale:.3f} = roofline on {profile.name} ({est_dev.total_ms:.2f} ms, {est_dev.threads} threads, "
                   f"{est_dev.compute_share:.0%} compute-bound) / roofline on {host.name}, 1 thread "
                   f"({est_host.total_ms:.2f} ms); host profile {source}"),
    })
    notes = []
    if via_fp32:
        notes.append("int8 on an x86 host: x86 int8 kernels do not predict ARM ones, so the host's fp32 time of "
                     "the same graph was scaled by the device's int8 estimate over the host's fp32 estimate")
    if not 1 / 1.3 <= agree <= 1.3:
        notes.append(f"emulate and the roofline estimate disagree by {agree:.2f}x (> 30%): one of the host "
                     f"or device numbers is off for this model")
    if notes:
        result.details["notes"] = notes
    return result, est_dev


def _timed_runtime(name: str) -> str:
    """costfit's runtime for a runner: LiteRT, an .ort artifact (level 'extended', no NCHWc), else ORT on ONNX."""
    if name.startswith("litert"):
        return "litert"
    return "ort-extended" if "ORT format" in name else "ort"


def _device(artifact, profile, feeds: dict) -> LatencyResult:
    from edgec.validate.devices.device import device_for

    spec = profile.validate_.latency
    dev = device_for(spec.device, artifact.format)
    stats = dev.benchmark(artifact, profile, feeds)
    if stats.times_ms:
        result = summarize(stats.times_ms, "device", stats.threads, spec.budget_ms, spec.budget_on, stats.runtime)
    else:  # tools that only print aggregates (benchmark_model): median from avg, p90 from avg + 1.28 std
        result = _result("device", stats.median_ms, stats.p90_ms, stats.min_ms, stats.runs, stats.threads,
                         spec.budget_ms, spec.budget_on, stats.runtime)
    result.details.update({"device": dev.describe(), "method": stats.method})
    if stats.remote:  # proof of where the timing ran (the board's own pid/host/workdir)
        result.details["remote"] = stats.remote
    return result
