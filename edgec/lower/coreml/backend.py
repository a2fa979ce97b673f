"""CoreML backend: ONNX -> MIL Program (our registry) -> ct.convert(mlprogram) -> deterministic .mlpackage."""

from __future__ import annotations

import contextlib
import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from edgec import __version__
from edgec.artifact import Artifact, LowerContext
from edgec.errors import LoweringError, UnsupportedOp
from edgec.graph.passes import only_16_bit_activations, without_activation_qdq
from edgec.graph.unroll import unroll_control_flow, with_reasons
from edgec.graph.view import constants
from edgec.lower.coreml import compress, features
from edgec.lower.coreml.build import NameMap, build_program, find_problems, fresh_builder_names, real_inputs
from edgec.graph.dynamic import model_ranges
from edgec.lower.coreml.flexible import dynamic_note, flexible_inputs, flexible_program
from edgec.lower.coreml.fp16 import FP16_MAX, HEADROOM, Fp32Keeper, RangeReport, find_hot, fp32_ops, mil_hot
from edgec.lower.coreml.package import save_deterministic, set_metadata
from edgec.lower.coreml.registry import READ_ONLY_DTYPE, REGISTRY, GraphView

_MLPROGRAM_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18", "macOS12", "macOS13", "macOS14", "macOS15",
                      "watchOS8", "watchOS9", "watchOS10", "watchOS11", "tvOS15", "tvOS16", "tvOS17", "tvOS18")


def deployment_target(name: str):
    import coremltools as ct

    if name not in _MLPROGRAM_TARGETS or not hasattr(ct.target, name):
        raise LoweringError(
            f"coreml_minimum_deployment_target '{name}' is not an ML Program target this coremltools knows; "
            f"use one of {', '.join(t for t in _MLPROGRAM_TARGETS if hasattr(ct.target, t))}."
        )
    return getattr(ct.target, name)


def compute_precision(ctx: LowerContext, model: onnx.ModelProto | None = None) -> tuple[str, str]:
    """(fp16 | fp32, where that choice came from).

    ctx.precision "fp32" only means "the ONNX graph was not quantized", so it does not force FLOAT32 compute:
    an fp16 request from the quantize stage wins, then the profile's coreml.compute_precision, then fp32 for
    emulated int8 activations (see int8_activations), then the target's coreml_compute_precision (fp16 for ios).
    """
    if ctx.precision == "fp16":
        return "fp16", "the profile's quantize.mode fp16"
    if ctx.profile.coreml.compute_precision:
        return ctx.profile.coreml.compute_precision, f"profile '{ctx.profile.name}' coreml.compute_precision"
    if model is not None and int8_activations(model, ctx) == "emulated":
        return "fp32", (f"int8 activations emulated as float arithmetic on "
                        f"{ctx.target.coreml_minimum_deployment_target} keep their rounding only in fp32")
    return ctx.target.coreml_compute_precision, f"target '{ctx.target.name}' coreml_compute_precision"


def int8_activations(model: onnx.ModelProto, ctx: LowerContext) -> str | None:
    """How the program runs the graph's activation Q/DQ (int8 mode; int8-weights graphs have none): None without
    them, "native" on iOS17+ (MIL quantize/dequantize, which the Neural Engine runs as int8 on A17 Pro / M4
    onwards, in an fp16 program), and below iOS17, which has no int8 activation ops, "float" by default (the
    Q/DQ pairs are dropped: float activations, 8-bit weights, an fp16 program on the Neural Engine) or
    "emulated" with the profile's coreml.emulate_int8_activations (ops/quant.py's round/clip arithmetic).

    Emulation matches the ORT/TFLite int8 artifacts but needs fp32: in fp16 the value being rounded already
    carries fp16's error (up to ~0.1 of an int8 step near the top of the range), which moves a few percent of
    activations to the neighbouring step, layer after layer (torch mobilenet_v2, bench/quantize.py, 100 held-out
    images: cosine vs ONNX Runtime on the same QDQ graph 0.973, top-1 0.47 in fp16; 0.995 / 0.89 in fp32). An
    fp32 program cannot use the Neural Engine and its ~20 MIL ops per Q/DQ pair make it slower than the float
    model, hence not the default."""
    import coremltools as ct

    consts = constants(model)
    if not any(n.op_type == "QuantizeLinear" and n.input[0] not in consts for n in model.graph.node):
        return None
    # MIL has no 16-bit quantize (quantize.activations: int16): float activations on every iOS
    if not only_16_bit_activations(model) and deployment_target(ctx.target.coreml_minimum_deployment_target) >= ct.target.iOS17:
        return "native"  # the same test ops/quant.py's _native makes
    return "emulated" if ctx.profile.coreml.emulate_int8_activations else "float"


def _describe(onnx_name: str, graph: GraphView, kind: str) -> str:
    elem, shape = graph.types.get(onnx_name, (0, None))
    dtype = onnx.TensorProto.DataType.Name(elem).lower() if elem else "?"
    return f"ONNX {kind} '{onnx_name}': {dtype}{list(shape) if shape is not None else ''}"


@dataclass
class _Plan:
    """CoreMLBackend._plan's decisions: the graph to build (activation Q/DQ dropped below iOS17), its view, the
    deployment target, compute precision and where it came from, compression, I/O features, early notes."""

    model: onnx.ModelProto
    graph: GraphView
    target_name: str
    target: Any
    activations: str | None
    precision: str
    precision_from: str
    compression: Any
    in_shapes: dict
    images: dict
    classifier: Any
    notes: list[str]


def _build_and_convert(model: onnx.ModelProto, ctx: LowerContext, plan: _Plan, ranges: RangeReport, probe: list):
    """The MIL program and the converted MLModel (coremltools' progress bars kept for its error messages), and the
    fp16 overflow guard level that made it match ONNX Runtime on the probe feeds: fp32 for the hot vars, then also
    everything downstream of them, then every op (plan.precision becomes fp32)."""
    stderr = io.StringIO()
    post = {k: v.post_scale for k, v in plan.images.items() if v.post_scale}
    guard = "hot"
    try:
        while True:
            with fresh_builder_names(), contextlib.redirect_stderr(stderr):
                # a fresh program per attempt: ct.convert rewrites the one it is given
                vector = {plan.classifier.output} if plan.classifier else set()
                if model_ranges(model):  # dynamic lengths: symbolic axes, no baked length (lower.coreml.flexible)
                    program, name_map = flexible_program(model, lambda m, sym: _fresh_build(
                        m, plan.target, plan.graph if m is model else None, post, vector, sym), plan.target_name)
                else:
                    program, name_map = build_program(model, plan.target, plan.graph, post, vector)
                hot_vars = {name_map.tensors[t] for t in ranges.hot if t in name_map.tensors}
                if probe:  # intermediates the ONNX probe cannot see (names of this program, before conversion)
                    hot_vars |= mil_hot(program, name_map, probe, post)
                keeper = Fp32Keeper(hot_vars, downstream=guard == "downstream")
                mlmodel = _convert(program, name_map, plan.target, plan.precision, keeper, plan.in_shapes,
                                   plan.images, plan.classifier, model_ranges(model))
            if plan.precision != "fp16" or not hot_vars or _matches(mlmodel, name_map, model, probe, ctx):
                return mlmodel, name_map, guard
            if guard == "hot":
                guard = "downstream"
            else:  # values this large amplify fp16's rounding anywhere upstream too: fp32 throughout
                guard, plan.precision = "all", "fp32"
                plan.precision_from = ("the fp16 overflow guard: with fp32 only where values exceed fp16 (and "
                                       f"downstream), outputs still differ from ONNX Runtime on {_probed_on(model, ctx)}")
    except Exception as e:  # coremltools raises ValueError/AssertionError/NotImplementedError alike
        tail = " ".join(line for line in stderr.getvalue().splitlines()[-5:] if "pipeline" not in line)
        raise LoweringError(f"coremltools could not convert '{ctx.model_name}' for {plan.target_name}: "
                            f"{type(e).__name__}: {e} {tail}") from None


def _fresh_build(model, target, graph, post, vector, symbolic: bool):
    """build_program with its own op-name counter: builds of one graph name every op alike."""
    with fresh_builder_names():
        return build_program(model, target, graph, post, vector, symbolic)


def _matches(mlmodel, name_map: NameMap, model: onnx.ModelProto, probe: list, ctx: LowerContext) -> bool:
    """The converted fp16 program, run by the MIL interpreter on the probe feeds, passes the profile's fp16 numerics
    gates against ONNX Runtime (what validation will check). True where it cannot run here (nothing to learn)."""
    import tempfile
    from pathlib import Path

    from edgec.runtimes.coreml import CoreMLRunner
    from edgec.runtimes.host_ort import OrtRunner
    from edgec.runtimes.numerics import compare, thresholds

    try:
        from edgec.runtimes.mil_interp import MilInterpreterRunner

        with tempfile.TemporaryDirectory(prefix="edgec-fp16-") as tmp:
            path = Path(tmp) / "probe.mlpackage"
            mlmodel.save(str(path))
            runner = CoreMLRunner(path, name_map, inner=MilInterpreterRunner(path))
            actual = [runner.run(f) for f in probe]
    except Exception:  # noqa: BLE001  (an op the interpreter lacks: validation reports it later)
        return True
    reference = OrtRunner(model, threads=1).run
    gates = thresholds(ctx.profile.validate_.numerics, "fp16")
    result = compare([reference(f) for f in probe], actual, "mil-interpreter", gates["min_cosine"] or 0.0,
                     gates["max_abs"], gates["min_delta_cosine"])
    return result.passed


def _descriptions(ctx: LowerContext, graph: GraphView, name_map, classifier) -> dict[str, str]:
    """Xcode's feature descriptions: ONNX name, dtype and shape, unless the profile gives its own."""
    descriptions = {mil: _describe(o, graph, "input") for o, mil in name_map.inputs.items()}
    descriptions.update({mil: _describe(o, graph, "output") for o, mil in name_map.outputs.items()})
    for onnx_name, text in ctx.profile.descriptions.items():
        descriptions[{**name_map.inputs, **name_map.outputs}[onnx_name]] = text
    if name_map.classifier:
        descriptions[name_map.classifier["label_output"]] = (
            f"most likely class label (of {len(classifier.labels)}, from {ctx.profile.coreml.labels})")
    return descriptions


def _user_metadata(ctx: LowerContext, precision: str, name_map) -> dict[str, str]:
    return {
        "edgec.version": __version__,
        "edgec.source_sha256": ctx.source_sha256,
        "edgec.profile": ctx.profile.name,
        "edgec.target": ctx.target.name,
        "edgec.compute_precision": precision,
        "edgec.name_map": _json(name_map.to_json()),
    }


def _probed_on(model: onnx.ModelProto, ctx: LowerContext) -> str:
    """What the fp16 range probe ran on (CoreMLBackend._probe_feeds), for the notes."""
    if ctx.profile.validate_.data and not model_ranges(model):
        return f"the validation data ({ctx.profile.validate_.data})"
    return "the seeded inputs"


def _notes(ctx: LowerContext, plan: _Plan, name_map, ranges: RangeReport, kept: list, weights: tuple,
           convert_s: float, guard: str = "hot") -> list[str]:
    """The report's notes on what the build made (weights: float bytes, file bytes, compression seconds)."""
    import coremltools as ct

    float_weight_bytes, weight_bytes, compress_s = weights
    compression, precision, classifier = plan.compression, plan.precision, plan.classifier
    notes = []
    if compression.mode != "none":
        notes.append(f"weights compressed: {compress.describe(compression)} (tensors of at least "
                     f"{compression.weight_threshold} elements): {float_weight_bytes / 1e6:.2f} MB of "
                     f"{precision} weights -> {weight_bytes / 1e6:.2f} MB in {compress_s:.1f} s")
    for o, spec in plan.images.items():
        notes.append(f"input '{o}' is a CoreML {spec.color} image: pixels * {spec.scale:.6g} + "
                     f"[{', '.join(f'{v:.6g}' for v in spec.bias)}]"
                     + (f", then * [{', '.join(f'{v:.6g}' for v in spec.post_scale)}] per channel"
                        if spec.post_scale else ""))
    if classifier:
        notes.append(f"CoreML classifier: output '{classifier.output}' -> {{label: score}} feature "
                     f"'{name_map.outputs[classifier.output]}' and label feature '{name_map.classifier['label_output']}' "
                     f"({len(classifier.labels)} labels from {ctx.profile.coreml.labels})")
    notes.append(f"CoreML ML Program for {plan.target_name}, {precision} compute ({plan.precision_from}), "
                 f"coremltools {ct.__version__}; lowered and converted in {convert_s:.1f} s")
    if guard != "hot":
        notes.append(f"fp16 overflow guard: fp32 kept only where values exceed fp16 did not match ONNX Runtime on "
                     f"{_probed_on(plan.model, ctx)}, so {'every op downstream of them' if guard == 'downstream' else 'every op'} "
                     f"runs in fp32 too")
    wide = sorted({onnx.TensorProto.DataType.Name(e).lower() for e, _ in plan.graph.types.values()
                   if e in READ_ONLY_DTYPE or e == onnx.TensorProto.DOUBLE})
    if wide:
        notes.append(f"CoreML has no {', '.join(wide)}: those tensors are carried and computed as float32 / int32 "
                     f"(float64 loses precision beyond float32's 24-bit mantissa)")
    renamed = {o: m for o, m in {**name_map.inputs, **name_map.outputs}.items() if o != m}
    if renamed:
        notes.append("CoreML feature names differ from ONNX: " + ", ".join(f"'{o}' -> '{m}'" for o, m in renamed.items()))
    if precision == "fp16":
        if ranges.hot:
            worst = max(ranges.hot, key=ranges.hot.get)
            notes.append(
                f"fp16 overflow guard: {len(ranges.hot)} of {ranges.checked} tensors exceed "
                f"{FP16_MAX / HEADROOM:g} (fp16 max / {HEADROOM:g}) on {_probed_on(plan.model, ctx)} (largest |x| = "
                f"{ranges.hot[worst]:.3g} at '{worst}'); {len(kept)} ops touching them are kept in fp32"
            )
        else:
            notes.append(f"fp16 overflow guard: all {ranges.checked} float tensors stay within "
                         f"{FP16_MAX / HEADROOM:g} on {_probed_on(plan.model, ctx)}; every op runs in fp16")
    return notes


class CoreMLBackend:
    format = "coreml"

    def __init__(self) -> None:
        import edgec.lower.coreml.ops  # noqa: F401  (fills the registry)

    def unsupported(self, model: onnx.ModelProto) -> list[tuple[str, str, str]]:
        model, refused = unroll_control_flow(model)  # small Scan / constant Loop: copies of the body
        return with_reasons(find_problems(model), refused)

    def supported_ops(self, target=None) -> dict[str, str]:
        return {op: rule.note for op, rule in sorted(REGISTRY.items()) if not rule.flags.get("internal")}

    def as_built(self, model: onnx.ModelProto, artifact: Artifact) -> tuple[onnx.ModelProto, str | None]:
        """(graph, compute precision) the program runs: below iOS17 lower() dropped the activation Q/DQ."""
        if artifact.details.get("int8_activations") == "float":
            model, _ = without_activation_qdq(model)
        return model, artifact.details.get("compute_precision")

    def lower(self, model: onnx.ModelProto, ctx: LowerContext) -> Artifact:
        import coremltools as ct

        plan = self._plan(model, ctx)  # every profile mistake fails here, before the slow part
        model, graph = plan.model, plan.graph
        probe = self._probe_feeds(model, ctx) if plan.precision == "fp16" else []
        ranges = find_hot(model, probe) if probe else RangeReport()
        t0 = time.perf_counter()
        mlmodel, name_map, guard = _build_and_convert(model, ctx, plan, ranges, probe)
        convert_s = time.perf_counter() - t0
        float_weight_bytes = compress.const_bytes(mlmodel)
        t0 = time.perf_counter()
        mlmodel = compress.compress(mlmodel, plan.compression, ctx.profile.name)
        compress_s = time.perf_counter() - t0
        set_metadata(mlmodel, dict(ctx.profile.metadata), _descriptions(ctx, graph, name_map, plan.classifier),
                     _user_metadata(ctx, plan.precision, name_map))
        path = ctx.staging_dir / f"{ctx.model_name}{ctx.target.extension}"
        try:
            save_deterministic(mlmodel, path)
        except OSError as e:
            raise LoweringError(f"Cannot write {path}: {e}") from None

        kept = fp32_ops(mlmodel.get_spec()) if plan.precision == "fp16" else []
        weight_bytes = compress.weight_file_bytes(path)
        notes = plan.notes + _notes(ctx, plan, name_map, ranges, kept, (float_weight_bytes, weight_bytes, compress_s),
                                    convert_s, guard)
        dyn = model_ranges(model)
        notes += [dynamic_note(dyn)] if dyn else []
        return Artifact(
            target=ctx.target.name,
            profile=ctx.profile.name,
            format=self.format,
            path=path,
            # a QDQ graph from the quantize stage says what it is (int8, int8-weights); else compute / weights
            precision=ctx.precision if ctx.precision.startswith("int8") else compress.artifact_precision(
                plan.precision, plan.compression),
            notes=notes,
            details={
                "name_map": name_map.to_json(),
                "deployment_target": plan.target_name,
                "compute_precision": plan.precision,
                "int8_activations": plan.activations,
                "weight_compression": plan.compression.model_dump() if plan.compression.mode != "none" else None,
                "float_weight_bytes": float_weight_bytes,
                "weight_file_bytes": weight_bytes,
                "fp32_kept_ops": kept,
                "fp16_guard": guard,
                "fp16_overflow_tensors": {k: (v if np.isfinite(v) else "inf") for k, v in ranges.hot.items()},
                "coremltools": ct.__version__,
                "compute_units": ctx.profile.runtime.compute_units or "all",
                **({"dynamic_axes": {n: {str(a): [lo, hi] for a, (lo, hi, _) in ax.items()} for n, ax in dyn.items()}}
                   if dyn else {}),
            },
        )

    @staticmethod
    def _plan(model: onnx.ModelProto, ctx: LowerContext) -> "_Plan":
        """What the program will be, decided and checked before anything slow runs."""
        target_name = ctx.target.coreml_minimum_deployment_target
        notes: list[str] = []
        model, refused = unroll_control_flow(model)
        activations = int8_activations(model, ctx)
        if activations == "float":
            wide = only_16_bit_activations(model)
            model, pairs = without_activation_qdq(model)
            notes.append(f"int8: CoreML has no 16-bit activation ops (quantize.activations: int16), so activations "
                         f"stay float ({pairs} Q/DQ pairs dropped) and the weights 8-bit" if wide else
                         f"int8: {target_name} has no int8 activation ops, so activations stay float ({pairs} Q/DQ "
                         f"pairs dropped) and the weights 8-bit; its numbers are closer to fp32 than the ORT/TFLite "
                         f"int8 artifacts. For int8 activations set the target's coreml_minimum_deployment_target "
                         f"to iOS17 (or the profile's coreml.emulate_int8_activations to match them, at float cost)")
        graph = GraphView(model)
        problems = with_reasons(find_problems(model, graph), refused)
        if problems:
            raise UnsupportedOp(ctx.target.name, problems)
        precision, precision_from = compute_precision(ctx, model)
        compression = ctx.profile.coreml.compression
        compress.check(compression, target_name, ctx.profile.name)
        # profile mistakes (image inputs, labels, descriptions)
        in_shapes = {v.name: list(graph.types[v.name][1] or []) for v in real_inputs(model)}
        out_shapes = {o.name: list(graph.types[o.name][1] or []) for o in model.graph.output}
        images = features.image_specs(ctx.profile, in_shapes)
        classifier = features.classifier_spec(ctx.profile, out_shapes)
        _check_descriptions(ctx, set(in_shapes) | set(out_shapes))
        return _Plan(model, graph, target_name, deployment_target(target_name), activations, precision,
                     precision_from, compression, in_shapes, images, classifier, notes)

    def runner(self, artifact: Artifact, threads: int):
        from edgec.runtimes.coreml import CoreMLRunner, name_map_of

        raw = artifact.details.get("name_map")
        name_map = NameMap.from_json(raw) if raw else name_map_of(artifact.path)
        return CoreMLRunner(artifact.path, name_map, artifact.details.get("compute_units", "all"))

    @staticmethod
    def _probe_feeds(model: onnx.ModelProto, ctx: LowerContext) -> list[dict[str, np.ndarray]]:
        """The inputs validation uses: the validation folder's files (--validation-data), else seeded random ones
        (profile's seed and sample count)."""
        from edgec.graph.inputs import input_domains, input_specs, random_inputs

        spec = ctx.profile.validate_.numerics
        if ctx.profile.validate_.data and not model_ranges(model):  # its files are at one length
            from edgec.quantize.calibration import validation_samples

            return validation_samples(ctx.profile.validate_.data, input_specs(model), dict(ctx.profile.inputs),
                                      spec.samples)[0]
        return random_inputs(input_specs(model), seed=spec.seed, samples=max(spec.samples, 2),
                             domains=input_domains(model, dict(ctx.profile.inputs)))


def _convert(program, name_map: NameMap, target, precision: str, keeper: Fp32Keeper, in_shapes: dict,
             images: dict[str, features.ImageSpec], classifier: features.ClassifierSpec | None,
             ranges: dict | None = None):
    """ct.convert with the compute precision, image inputs and classifier; records the last two in name_map."""
    import coremltools as ct

    cp = ct.transform.FP16ComputePrecision(op_selector=keeper) if precision == "fp16" else ct.precision.FLOAT32
    inputs = [features.ct_image_type(ct, name_map.inputs[o], in_shapes[o], spec) for o, spec in images.items()]
    inputs += flexible_inputs(ct, ranges or {}, name_map, in_shapes, set(images))
    classify = None
    if classifier:
        classify = ct.ClassifierConfig(classifier.labels,
                                       predicted_probabilities_output=name_map.outputs[classifier.output])
    mlmodel = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=target, compute_precision=cp,
                         inputs=inputs or None, classifier_config=classify)
    if classifier:  # the score vector became a {label: score} dictionary feature
        desc = mlmodel.get_spec().description
        name_map.outputs[classifier.output] = desc.predictedProbabilitiesName
        name_map.classifier = {**classifier.to_json(), "label_output": desc.predictedFeatureName}
    name_map.images = {o: spec.to_json() for o, spec in images.items()}
    return mlmodel


def _check_descriptions(ctx: LowerContext, features_: set[str]) -> None:
    from edgec.errors import ConfigError

    unknown = sorted(set(ctx.profile.descriptions) - features_)
    if unknown:
        raise ConfigError(f"profile '{ctx.profile.name}': descriptions name {', '.join(map(repr, unknown))}, which "
                          f"are not inputs or outputs of the model ({', '.join(sorted(features_))}).")


def _json(obj) -> str:
    import json

    return json.dumps(obj, sort_keys=True, separators=(",", ":"))
