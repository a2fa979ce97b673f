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
                 ref_outputs: list[dict], threads: int) -> NumericsResult | None:
    core = emulator_core(profile)
    if core is None:
        return None
    if artifact.format not in EMULATED_FORMATS:
        artifact.notes.append(f"emulator: {artifact.format} artifacts have no aarch64 Linux runtime, so only the "
                              f"android and ort-mobile artifacts ran under qemu {core}")
        return None
    from edgec.runtimes.emulator.runner import emulated_runner
    from edgec.validate.numerics import compare, thresholds

    spec = profile.validate_.numerics
    t0 = time.perf_counter()
    runner = emulated_runner(artifact.format, artifact.path, core)
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
        runner.close()
    artifact.details["emulator"] = {
        "core": core, "runtime": runner.name, "samples": result.samples,
        "seconds": round(time.perf_counter() - t0, 1),
        "gates": "ARM kernels" if artifact.precision.startswith("int8") else "host and ARM kernels",
    }
    return result
