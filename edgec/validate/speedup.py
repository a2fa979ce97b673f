"""What the roofline estimator predicts a quantized build gains on the profile's device (manifest + report note)."""

from __future__ import annotations

from edgec.config.models import Profile
from edgec.quantize.stage import QuantResult
from edgec.validate.estimate import as_built, estimate


def predicted_speedup(quant: QuantResult, profile: Profile, artifact=None) -> dict | None:
    """What the roofline estimator (edgec.validate.estimate) predicts on the profile's device: fp32 graph vs
    this mode's graph. Activation Q/DQ between int8 ops are fused into the kernels (as TFLite's int8 kernels
    and ORT's QLinear* fusions run them) and their tensors move as int8; qdq_ms is what the Q/DQ that stay
    real ops cost (graph inputs/outputs, ops left float). With the artifact, the graph and compute precision
    it runs (validate.estimate.as_built: a CoreML program below iOS17 has float activations, or fp32
    arithmetic for emulated ones); the fp32 baseline is the float build, in the profile's compute precision."""
    if quant._float_model is None or quant._out_model is None:
        return None
    details = artifact.details if artifact is not None and artifact.format in ("coreml", "tflite") else {}
    key = (profile.name, details.get("compute_precision"), details.get("int8_activations"),
           details.get("int16_activations"))
    if key not in quant._estimates:
        base_program = profile.coreml.compute_precision if artifact is not None and artifact.format == "coreml" else None
        try:
            base = estimate(quant._float_model, profile, "fp32", program_precision=base_program)
            if quant.mode == "fp16":
                est = estimate(quant._float_model, profile, "fp16")
            else:
                model, program = as_built(quant._out_model, artifact)
                est = estimate(model, profile, "fp32", program_precision=program)
        except Exception as e:  # noqa: BLE001 - an estimate is a note, never a failed build
            quant._estimates[key] = {"profile": profile.name, "error": str(e)[:200]}
            return quant._estimates[key]
        qdq_ms = sum(o.ms for o in est.ops if o.op_type in ("QuantizeLinear", "DequantizeLinear")
                     and not o.fused)
        block = {"profile": profile.name, "unit": est.unit, "threads": est.threads,
                 "fp32_ms": round(base.total_ms, 4), "quantized_ms": round(est.total_ms, 4),
                 "speedup": round(base.total_ms / est.total_ms, 3) if est.total_ms else None,
                 "qdq_ms": round(qdq_ms, 4), "notes": est.notes}
        quant._estimates[key] = block
    return quant._estimates[key]


def speedup_note(quant: QuantResult, profile: Profile, artifact=None) -> str | None:
    b = predicted_speedup(quant, profile, artifact)
    if b is None or b.get("speedup") is None:
        return None
    text = (f"quantize: latency estimate on {b['profile']} ({b['unit']}, {b['threads']} thread(s)): "
            f"fp32 {b['fp32_ms']:.2f} ms, {quant.mode} {b['quantized_ms']:.2f} ms = {b['speedup']:.2f}x speedup")
    acts = artifact.details.get("int8_activations") if artifact is not None else None
    wide = artifact.details.get("int16_activations") if artifact is not None else None
    if wide == "kernels":
        text += (" (estimated as float arithmetic, the 16x8 kernels' best case: on a CPU LiteRT runs them as "
                 "reference kernels outside XNNPACK, many times slower; for an NPU delegate that takes 16x8)")
    elif wide == "float" or wide is None and quant.activations == "int16":
        text += " (int16 activations run float on 8-bit weights: float speed, 8-bit weight size)"
    elif acts == "emulated":  # float round/clip ops in an fp32 program: matching numbers, not speed
        text += (" (this CoreML program emulates int8 activations in fp32 arithmetic, off the Neural Engine; "
                 "for int8 speed target iOS17+ (the target's coreml_minimum_deployment_target))")
    elif acts == "float":
        text += " (float activations, 8-bit weights: below iOS17 CoreML has no int8 activation ops)"
    elif b.get("qdq_ms"):
        text += f" (Q/DQ between int8 ops fused; {b['qdq_ms']:.2f} ms of Q/DQ stay at float boundaries)"
    return text + " (a roofline prediction from the profile's peaks, not a device measurement; host int8 " \
                  "latency on x86 does not predict ARM)"
