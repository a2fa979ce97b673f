"""The ONNX side of a build, done once per profile: fix shapes, simplify, shared passes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import onnx

from edgec.config.models import Profile
from edgec.errors import ShapeError
from edgec.graph.dynamic import Ranges, describe as describe_ranges, split
from edgec.graph.fold import fold
from edgec.graph.limits import check_inferred, check_initializers, check_tensors
from edgec.graph.passes import PassRun, run_pipeline
from edgec.graph.shapes import fix_input_shapes
from edgec.graph.simplify import simplify
from edgec.graph.values import describe, fix_input_values


@dataclass
class PreparedGraph:
    model: onnx.ModelProto  # static shapes, simplified, shared passes applied
    shapes: dict[str, list[int]]
    precision: str = "fp32"
    notes: list[str] = field(default_factory=list)
    quant: Any = None  # edgec.quantize.stage.QuantResult when the profile quantizes (held-out samples, report)
    values: dict = field(default_factory=dict)  # inputs fixed to constants: {name: array}, fed to the original
    pipeline: list[PassRun] = field(default_factory=list)  # the ONNX stages that ran, in order (report)
    # input axes given as a range (graph.dynamic): `shapes` has them at their max; `dynamic`: the model keeps them
    # as dim_params (ORT runs them natively), else the backend decides (graph.generalize)
    ranges: Ranges = field(default_factory=dict)
    dynamic: bool = False


def profile_shapes(profile: Profile, cli_shapes: dict[str, list[int]]) -> dict[str, list[int]]:
    # a [min, max] dim becomes a (min, max) tuple, as --input-shape's MIN..MAX (hashable, told apart from a size)
    shapes = {name: [tuple(d) if isinstance(d, list) else d for d in spec.shape]
              for name, spec in profile.inputs.items() if spec.shape}
    shapes.update(cli_shapes)  # the command line wins over the profile
    return shapes


def quantize_key(profile: Profile, target_format: str = "ort") -> str:
    """Profiles with equal keys (and input shapes) share one prepared, quantized graph."""
    q = profile.quantize
    if q.mode == "none":
        return "none"
    from edgec.quantize.stage import onnx_fp16

    native = "" if q.mode != "fp16" or onnx_fp16(target_format) else f"native fp16 ({target_format})"
    if q.mode == "int8-dynamic":  # ORT gets MatMulInteger, the others int8 weights (stage.py): two graphs
        native = "ort dynamic" if target_format == "ort" else "int8 weights"
    return native + q.model_dump_json() + str(profile.validate_.numerics.precision) + str(
        {k: v.model_dump_json() for k, v in sorted(profile.inputs.items())}) + f"gate:{profile.validate_.data}"


def prepare(model: onnx.ModelProto, shapes: dict[str, list[int]], model_path: str,
            profile: Profile | None = None, target_format: str = "ort", values: dict | None = None) -> PreparedGraph:
    fixed, ranges = split(shapes)
    quantized = profile is not None and profile.quantize.mode != "none"
    # ORT runs dynamic dims natively: the graph keeps them (onnxsim and fold only fold what does not depend on them)
    symbolic = bool(ranges) and target_format == "ort" and not quantized
    prepared = _prepare_float(model, fixed, model_path, values or {},
                              dict(profile.inputs) if profile is not None else None, ranges, symbolic)
    if ranges and not symbolic and not quantized:
        _generalize(prepared, model, model_path, values or {}, profile)
    if ranges and quantized:
        prepared.notes.append(f"dynamic axes ({describe_ranges(ranges)}): fixed to their max in this quantized build "
                              f"(calibration and the reduced-precision checks run at one shape); build float to keep them dynamic")
    if profile is not None and profile.quantize.mode != "none":
        from edgec.quantize.gate_data import gate_on_validation_data
        from edgec.quantize.stage import quantize

        before = len(prepared.model.graph.node)
        prepared.model, prepared.quant = quantize(prepared.model, profile, target_format)
        after = len(prepared.model.graph.node)
        prepared.pipeline = prepared.pipeline + [PassRun(f"quantize ({profile.quantize.mode})", after - before,
                                                         before, after)]
        prepared.precision = prepared.quant.precision
        prepared.quant = gate_on_validation_data(prepared.quant, profile)  # the user's data gates, when given
        prepared.notes += prepared.quant.notes()
    return prepared


def _generalize(prepared: PreparedGraph, model: onnx.ModelProto, model_path: str, values: dict, profile) -> None:
    """The fixed-shape backends: the graph prepared at the max, rewritten to run every length of the ranges
    (graph.generalize: compared with the graph prepared at a second length); a ShapeError names the node that
    cannot follow the length. The backends read the ranges from the model's metadata (RANGES_KEY)."""
    import json

    from edgec.graph.dynamic import RANGES_KEY, alternate
    from edgec.graph.generalize import generalize
    from edgec.graph.shapes import dims_of

    ranges = prepared.ranges
    alt = alternate(prepared.shapes, ranges)
    if alt is None:
        return
    other = _prepare_float(model, alt, model_path, values, dict(profile.inputs) if profile is not None else None,
                           ranges, False)
    first = sorted(ranges)[0]
    lengths = (f"{first} {prepared.shapes[first]}", f"{first} {alt[first]}")
    hint = ("fix the length with --input-shape " + " ".join(f"{n}={','.join(map(str, prepared.shapes[n]))}"
                                                           for n in sorted(ranges)) + " (one size per build)")
    general, rewrites = generalize(prepared.model, other.model, lengths, model_path, hint)
    dims = {v.name: dims_of(v) for v in model.graph.input}  # the model's own names for the axes (one per length)
    general.metadata_props.add(key=RANGES_KEY, value=json.dumps(
        {n: {str(a): [*r, dims[n][a] if isinstance(dims[n][a], str) and dims[n][a] != "?" else f"{n}_{a}"]
             for a, r in axes.items()} for n, axes in sorted(ranges.items())}))
    prepared.model = general
    shown = "; ".join(rewrites[:4]) + (f"; and {len(rewrites) - 4} more" if len(rewrites) > 4 else "")
    prepared.notes.append(f"dynamic axes: one graph for every length ({len(rewrites)} length-dependent constant(s) "
                          f"rewritten: {shown or 'none'})")


def _prepare_float(model: onnx.ModelProto, shapes: dict[str, list[int]], model_path: str,
                   values: dict, inputs: dict | None = None, ranges: Ranges | None = None,
                   symbolic: bool = False) -> PreparedGraph:
    work = onnx.ModelProto()
    work.CopyFrom(model)
    constants = fix_input_values(work, values, model_path)
    ranges = {k: v for k, v in (ranges or {}).items() if k not in constants}
    fixed = fix_input_shapes(work, {k: v for k, v in shapes.items() if k not in constants}, model_path, ranges,
                             symbolic)
    check_initializers(work, model_path)
    check_inferred(work, model_path)  # before onnxsim folds constants or ONNX Runtime allocates anything
    nodes_before = len(work.graph.node)
    folded = fold(work)  # edgec's own: If on a known condition inlined, shape arithmetic folded, sorted
    after_fold = len(work.graph.node)
    try:
        simplified, simplify_note = simplify(work, fixed, model_path, inputs,
                                             dynamic=set(ranges) if symbolic else set())
    except Exception as e:  # simplify checks its result on ONNX Runtime: the first place the model really runs
        if not type(e).__module__.startswith("onnxruntime"):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ShapeError(
            f"{model_path}: ONNX Runtime cannot run the model with inputs {fixed}: {first}. The input shapes and "
            f"the model's weights disagree, or the model is invalid: check --input-shape or the profile's inputs, "
            f"or re-export the model."
        ) from None
    runs = [PassRun("fold", sum(folded.values()), nodes_before, after_fold),
            PassRun("onnxsim", after_fold - len(simplified.graph.node), after_fold, len(simplified.graph.node))]
    runs += run_pipeline(simplified)
    simplified = onnx.shape_inference.infer_shapes(simplified, strict_mode=False)
    check_tensors(simplified, model_path)
    applied = ", ".join([f"{k} x{v}" for k, v in folded.items() if v]
                        + [f"{r.name} x{r.rewrites}" for r in runs[2:] if r.rewrites]) or "none needed"
    by = "onnxsim and shared passes" if simplify_note.startswith("onnxsim:") else \
        "edgec's own folding and shared passes (onnxsim's result was not used: see below)"
    notes = [
        f"graph: {nodes_before} -> {len(simplified.graph.node)} nodes after {by} ({applied}); "
        f"inputs fixed to {fixed}",
        simplify_note,
    ]
    if ranges:
        notes.append(f"dynamic axes: {describe_ranges(ranges)}; fixed-shape checks at the max"
                     + ("; the graph keeps them as dynamic dims" if symbolic else ""))
    if constants:
        notes.append(f"input values fixed (no longer inputs of the artifact; validation feeds them to the original "
                     f"model): {describe(constants)}")
    return PreparedGraph(model=simplified, shapes=fixed, notes=notes, values=constants, pipeline=runs,
                         ranges=ranges, dynamic=symbolic)
