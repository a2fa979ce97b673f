"""The ONNX side of a build, done once per profile: fix shapes, simplify, shared passes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import onnx

from edgec.config.models import Profile
from edgec.errors import ShapeError
from edgec.graph.limits import check_inferred, check_initializers, check_tensors
from edgec.graph.passes import run_passes
from edgec.graph.shapes import fix_input_shapes
from edgec.graph.simplify import simplify


@dataclass
class PreparedGraph:
    model: onnx.ModelProto  # static shapes, simplified, shared passes applied
    shapes: dict[str, list[int]]
    precision: str = "fp32"
    notes: list[str] = field(default_factory=list)
    quant: Any = None  # edgec.quantize.stage.QuantResult when the profile quantizes (held-out samples, report)


def profile_shapes(profile: Profile, cli_shapes: dict[str, list[int]]) -> dict[str, list[int]]:
    shapes = {name: list(spec.shape) for name, spec in profile.inputs.items() if spec.shape}
    shapes.update(cli_shapes)  # the command line wins over the profile
    return shapes


def quantize_key(profile: Profile, target_format: str = "ort") -> str:
    """Profiles with equal keys (and input shapes) share one prepared, quantized graph."""
    q = profile.quantize
    if q.mode == "none":
        return "none"
    from edgec.quantize.stage import onnx_fp16

    native = "" if q.mode != "fp16" or onnx_fp16(target_format) else f"native fp16 ({target_format})"
    return native + q.model_dump_json() + str(profile.validate_.numerics.precision) + str(
        {k: v.model_dump_json() for k, v in sorted(profile.inputs.items())})


def prepare(model: onnx.ModelProto, shapes: dict[str, list[int]], model_path: str,
            profile: Profile | None = None, target_format: str = "ort") -> PreparedGraph:
    prepared = _prepare_float(model, shapes, model_path)
    if profile is not None and profile.quantize.mode != "none":
        from edgec.quantize.stage import quantize

        prepared.model, prepared.quant = quantize(prepared.model, profile, target_format)
        prepared.precision = prepared.quant.precision
        prepared.notes += prepared.quant.notes()
    return prepared


def _prepare_float(model: onnx.ModelProto, shapes: dict[str, list[int]], model_path: str) -> PreparedGraph:
    work = onnx.ModelProto()
    work.CopyFrom(model)
    fixed = fix_input_shapes(work, shapes, model_path)
    check_initializers(work, model_path)
    check_inferred(work, model_path)  # before onnxsim folds constants or ONNX Runtime allocates anything
    nodes_before = len(work.graph.node)
    try:
        simplified, simplify_note = simplify(work, fixed, model_path)
    except Exception as e:  # simplify checks its result on ONNX Runtime: the first place the model really runs
        if not type(e).__module__.startswith("onnxruntime"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ShapeError(
            f"{model_path}: ONNX Runtime cannot run the model with inputs {fixed}: {first}. The input shapes and "
            f"the model's weights disagree, or the model is invalid: check --input-shape or the profile's inputs, "
            f"or re-export the model."
        ) from None
    rewrites = run_passes(simplified)
    simplified = onnx.shape_inference.infer_shapes(simplified, strict_mode=False)
    check_tensors(simplified, model_path)
    applied = ", ".join(f"{k} x{v}" for k, v in rewrites.items() if v) or "none needed"
    notes = [
        f"graph: {nodes_before} -> {len(simplified.graph.node)} nodes after onnxsim and shared passes ({applied}); "
        f"inputs fixed to {fixed}",
        simplify_note,
    ]
    return PreparedGraph(model=simplified, shapes=fixed, notes=notes)
