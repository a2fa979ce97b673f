"""The quantize stage: one prepared float graph in, one quantized ONNX graph out, decided once for all targets.

Modes: fp16 (weights and activations fp16, I/O float32), int8 (static QDQ from calibration data), int8-dynamic
(int8 weights, activations quantized at run time), int8-weights (int8 weights + DequantizeLinear, float math).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import onnx

from edgec.config.models import Profile
from edgec.errors import CalibrationError, ConfigError, QuantizationError
from edgec.quantize import int8, prequantized
from edgec.quantize.bias_correction import correct_biases, input_means
from edgec.quantize.calibration import CalibrationSet, StreamReader, open_source, split
from edgec.quantize.islands import (find_islands, float_weights, input_layers, neighbours, read_ranges,
                                   with_float_islands)
from edgec.quantize.range_choice import CANDIDATES, choose_ranges, widen_ranges
from edgec.quantize.weight_rounding import input_hessians, round_weights
from edgec.runtimes.outputs import output_kinds
from edgec.quantize.target import goal_words, score, search, split_held_out
from edgec.quantize.sensitivity import NodeSensitivity, choose_float_nodes, output_cosine, rank_nodes
from edgec.graph.inputs import input_domains, input_specs, random_inputs
from edgec.graph.passes import without_activation_qdq

PRECISION = {"fp16": "fp16", "int8": "int8", "int8-dynamic": "int8-dynamic", "int8-weights": "int8-weights"}
RANDOM_HOLDOUT = 8  # random calibration: this many extra seeded samples are held out for the accuracy check
SENSITIVITY_SAMPLES = 4  # calibration samples the sensitivity search runs on
BIAS_SAMPLES = 32  # calibration samples whose conv-input means drive the bias correction (bias_correction.py)
KEPT_SHOWN = 6  # float nodes named in the report; the manifest lists all (densenet121 keeps ~40)
# int16 activations' calibrated ranges x4: 2 of the 16 bits for values past the calibration data (a step stays 32x
# finer than int8's); without it EfficientNet-Lite1's ort-mobile int16 artifact flipped a 0.21-margin photo
INT16_HEADROOM = 4.0
EVAL_SEED = 4321  # seeded random accuracy samples when the calibration source leaves none held out
# fp16 has no scales to share: CoreML (compute precision) and TFLite convert float graphs to fp16 their own way,
# and CoreML cannot take the converter's fp16 ONNX graph (mixed fp16/fp32 Casts), so only ORT gets it
ONNX_FP16_FORMATS = ("ort",)


def onnx_fp16(target_format: str) -> bool:
    """Whether fp16 mode converts the ONNX graph for this format (else the backend does it natively)."""
    return target_format in ONNX_FP16_FORMATS


@dataclass
class QuantResult:
    """What the quantize stage did, and where the accuracy check's held-out samples come from."""

    mode: str
    precision: str
    data: str  # calibration source, in words
    measured: bool  # False: random data, so accuracy says nothing about real inputs
    calibration_samples: int = 0
    method: str | None = None
    per_channel: bool | None = None
    kept_float: dict[str, str] = field(default_factory=dict)  # node -> why it stayed float
    sensitivity: list[NodeSensitivity] = field(default_factory=list)
    cosine_all_quantized: float | None = None  # calibration samples, before any node went back to float
    cosine_final: float | None = None
    weights_quantized: int | None = None
    weights_rounded: int | None = None  # int8 static: layers whose weights took error-compensating rounding
    activations: str | None = None  # int8 static: int8 or int16 activations (quantize.activations)
    int8_shortfall: str | None = None  # activations auto: what int8 activations reached before int16 was tried
    seconds: float = 0.0
    target: dict | None = None  # quantize.target: goal, held-out samples, steps (edgec/quantize/target.py)
    native_fp16: str | None = None  # target format that converts to fp16 itself (the ONNX graph stays float)
    _set: CalibrationSet | None = None
    _holdout: list[int] = field(default_factory=list)
    # the user's validation folder and how many of its files gate (edgec.quantize.gate_data): before _holdout
    _gate: CalibrationSet | None = None
    _gate_count: int = 0
    _specs: list = field(default_factory=list)
    _domains: dict = field(default_factory=dict)  # each input's values (edgec.validate.inputs.input_domains)
    reference_cache: dict = field(default_factory=dict)  # accuracy reference outputs, computed once per build
    _float_model: onnx.ModelProto | None = None  # the graph before quantization, for the latency estimate
    _out_model: onnx.ModelProto | None = None
    arrived_quantized: dict[str, int] = field(default_factory=dict)  # op -> count, when the model came quantized
    _estimates: dict = field(default_factory=dict)  # (profile, CoreML program settings) -> predicted speedup
    # (edgec.validate.speedup fills it: the estimator sits above this layer)

    def __getstate__(self) -> dict:
        """For the worker process that validates the target (edgec.worker): the calibration set loads samples
        through closures, which do not pickle; the accuracy check there needs only the held-out samples (at most
        HOLDOUT_MAX), which travel as arrays."""
        state = dict(self.__dict__)
        if self._gate is not None:  # the held-out calibration samples are not needed there
            state["_gate"] = _as_arrays(self._gate, range(self._gate_count))
            state["_set"], state["_holdout"] = None, []
        elif self._set is not None and len(self._holdout) >= 2:
            state["_set"] = _as_arrays(self._set, self._holdout)
            state["_holdout"] = list(range(len(self._holdout)))
        else:
            state["_set"] = None  # eval_feeds uses seeded random samples then, as here
        return state

    @property
    def holdout_description(self) -> str:
        if self._gate is not None:
            return (f"{self._gate_count} validation sample(s) (--validation-data): {self._gate.description}, "
                    f"first {self._gate_count} by name")
        if len(self._holdout) >= 2:
            return f"{len(self._holdout)} held-out sample(s) of {self.data} (not used for calibration)"
        return f"{RANDOM_HOLDOUT} seeded random sample(s) (the calibration source left none held out)"

    def eval_feeds(self) -> Iterator[dict[str, np.ndarray]]:
        """The validation samples when the user gave a folder, else held-out samples, one at a time; seeded random
        when the source has fewer than two spare."""
        if self._gate is not None:
            return self._gate.iter(range(self._gate_count))
        if len(self._holdout) >= 2 and self._set is not None:
            return self._set.iter(self._holdout)
        return iter(random_inputs(self._specs, seed=EVAL_SEED, samples=RANDOM_HOLDOUT, domains=self._domains))

    def summary(self) -> dict:
        return {
            "mode": self.mode, "data": self.data, "accuracy_measured": self.measured,
            "calibration_samples": self.calibration_samples, "method": self.method, "per_channel": self.per_channel,
            "held_out": self.holdout_description, "kept_float": self.kept_float,
            "sensitivity": [s.as_dict() for s in self.sensitivity],
            "cosine_all_quantized": _r(self.cosine_all_quantized), "cosine_final": _r(self.cosine_final),
            "weights_quantized": self.weights_quantized,
            "weights_rounded": self.weights_rounded, "activations": self.activations,
            "int8_shortfall": self.int8_shortfall, "seconds": round(self.seconds, 3),
            "native_fp16": self.native_fp16, "target": self.target,
        }

    def notes(self) -> list[str]:
        if self.arrived_quantized:
            ops = ", ".join(f"{op} x{k}" for op, k in sorted(self.arrived_quantized.items()))
            return [f"quantize: the model arrived quantized ({ops}): lowered with its own scales and zero points, "
                    f"not re-quantized; accuracy vs a float original is not measured here"]
        what = {
            "fp16": "float16 weights and activations, float32 inputs/outputs" + (
                f" (by the {self.native_fp16} backend natively; the ONNX graph stays float32)"
                if self.native_fp16 else " (ONNX-domain conversion)"),
            "int8": f"int8 static QDQ, {'per-channel' if self.per_channel else 'per-tensor'} weights, "
                    + ("int16 activations (16x8), " if self.activations == "int16" else "") +
                    f"{self.method} calibration on {self.calibration_samples} sample(s) of {self.data}" + (
                        f", {self.weights_rounded} layer(s) with error-compensating weight rounding"
                        if self.weights_rounded else ""),
            "int8-dynamic": "int8 weights, activations quantized at run time (dynamic)" + (
                f" ({self.weights_quantized} int8 weight/embedding tensors, per channel)"
                if self.weights_quantized else ""),
            "int8-weights": f"int8 weights ({self.weights_quantized} tensors) with DequantizeLinear, float activations",
        }[self.mode]
        lines = [f"quantize: {what}; accuracy checked on {self.holdout_description}"]
        if not self.measured:
            lines.append("quantize: accuracy UNMEASURED - calibrated/evaluated on random data, not real inputs")
        if self.kept_float:
            shown = list(self.kept_float.items())[:KEPT_SHOWN]
            more = len(self.kept_float) - len(shown)
            lines.append("quantize: kept float: " + ", ".join(f"{n} ({why})" for n, why in shown)
                         + (f"; and {more} more (manifest: quantize.kept_float)" if more > 0 else ""))
        if self.int8_shortfall:
            lines.append(f"quantize: int16 activations because int8 ones could not meet quantize.target "
                         f"({self.int8_shortfall}; quantize.activations: auto)")
        if self.target is not None:
            t = self.target
            path = " -> ".join(f"{s['node'] or 'all int8'}{' back to int8' if s['action'] == 'int8 again' else ''}"
                               f" {_step_figure(s, t['goal'])}" for s in t["steps"])
            lines.append(f"quantize: target {t['goal']} met on {t['held_out']} with {len(t['float_nodes'])} "
                         f"node(s) float ({t['float_weight_fraction']:.1%} of the weights, {t['measurements']} node "
                         f"sets measured): {path}")
        if self.sensitivity:
            worst = ", ".join(
                f"{s.node} ({s.op_type}) {'-' if s.cosine_if_float is None else f'{s.cosine_if_float:.5f}'}"
                for s in self.sensitivity[:5])
            lines.append(f"quantize: most sensitive nodes, output cosine with that node float (all-int8 "
                         f"{self.cosine_all_quantized:.5f}): {worst}")
        return lines


def _step_figure(step: dict, goal: str) -> str:
    """A target step's score in the figures its goal (target.goal_words) is stated in."""
    shown = [str(step["top1"])] if "top-1" in goal and step["top1"] is not None else []
    return "/".join(shown + [str(step["cosine"])] if "cosine" in goal or not shown else shown)


def _as_arrays(cset: CalibrationSet, indices) -> CalibrationSet:
    """`cset`'s samples at `indices` loaded into memory: its loader is a closure, which does not pickle."""
    indices = list(indices)
    samples = list(cset.iter(indices))
    return CalibrationSet(cset.description, cset.measured, [cset.names[i] for i in indices], samples.__getitem__)


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def name_nodes(model: onnx.ModelProto) -> None:
    """Give every node a unique, non-empty name: exclusion lists and reports refer to nodes by name."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


def quantize(model: onnx.ModelProto, profile: Profile,
             target_format: str = "ort") -> tuple[onnx.ModelProto, QuantResult]:
    """The quantized model and what was done. `model` has static shapes and is not modified."""
    t0 = time.perf_counter()
    spec = profile.quantize
    if spec.target is not None and spec.mode != "int8":
        raise ConfigError(
            f"quantize.target is set but the quantize mode is {spec.mode}: the target is reached by keeping int8 "
            f"nodes float, so it applies to `--quantize int8` only; remove quantize.target or build int8."
        )
    if spec.activations != "auto" and spec.mode != "int8":
        raise ConfigError(
            f"quantize.activations is {spec.activations} but the quantize mode is {spec.mode}: the activation width "
            f"applies to `--quantize int8` (static QDQ) only; remove quantize.activations or build int8."
        )
    work_model = onnx.ModelProto()
    work_model.CopyFrom(model)
    name_nodes(work_model)
    arrived = prequantized.quantized_nodes(work_model)
    if arrived:  # its own scales win: re-quantizing a quantized graph would stack a second rounding on the first
        prequantized.check_mode(spec.mode, arrived)
        result = QuantResult(mode=spec.mode, precision=PRECISION[spec.mode], data="the model's own scales",
                             measured=False, _specs=input_specs(work_model),
                             _domains=input_domains(work_model, dict(profile.inputs)), arrived_quantized=arrived)
        result._float_model = result._out_model = work_model
        result.seconds = time.perf_counter() - t0
        return work_model, result
    result, cset, calib, specs = evaluation_data(work_model, profile)
    with tempfile.TemporaryDirectory(prefix="edgec-quant-") as tmp:
        if spec.mode == "fp16" and not onnx_fp16(target_format):
            out, result.native_fp16 = work_model, target_format
        elif spec.mode == "fp16":
            out = _fp16(work_model, profile, cset, calib, specs, result)
        elif spec.mode == "int8":
            out = _static_widths(work_model, profile, cset, calib, Path(tmp), result)
        elif spec.mode == "int8-dynamic" and target_format == "ort":
            out = int8.quantize_dynamic_int8(int8.to_qdq_opset(work_model), spec.per_channel, _keep(work_model, spec))
            result.per_channel = spec.per_channel
        elif spec.mode == "int8-dynamic":
            # TFLite and CoreML take int8 weights as DequantizeLinear of constants (+ embedding tables): TFLite
            # runs them as dynamic-range FULLY_CONNECTED, CoreML as weight-only constexpr_affine_dequantize
            out, result.weights_quantized = int8.quantize_weights_only(
                int8.to_qdq_opset(work_model), True, _keep(work_model, spec), tables=True)
            result.per_channel = True
        elif spec.mode == "int8-weights":
            out, result.weights_quantized = int8.quantize_weights_only(
                int8.to_qdq_opset(work_model), spec.per_channel, _keep(work_model, spec))
            result.per_channel = spec.per_channel
        else:
            raise ValueError(spec.mode)
    result.seconds = time.perf_counter() - t0
    out = onnx.shape_inference.infer_shapes(out, strict_mode=False)
    result._float_model, result._out_model = work_model, out
    return out, result


def _keep(model: onnx.ModelProto, spec) -> list[str]:
    keep = set(spec.keep_float)
    return sorted(n.name for n in model.graph.node if n.name in keep or n.op_type in keep)


def evaluation_data(work_model: onnx.ModelProto, profile: Profile):
    """(QuantResult with its calibration/held-out split, calibration set, calibration indices, input specs): what
    the quantize stage calibrates on and the accuracy check evaluates on (`edgec validate` rebuilds the latter)."""
    spec = profile.quantize
    specs = input_specs(work_model)
    domains = input_domains(work_model, dict(profile.inputs))
    source = spec.calibration.source
    cset = None
    calib: list[int] = []
    holdout: list[int] = []
    if spec.mode == "int8" or source is not None:
        cset = open_source(source, specs, profile.inputs, spec.calibration.samples + RANDOM_HOLDOUT, domains=domains)
        calib, holdout = split(len(cset), spec.calibration.samples)
        cset.load(calib[0])  # a wrong shape or dtype fails here, with the file named, not deep in ORT
    result = QuantResult(
        mode=spec.mode, precision=PRECISION[spec.mode], data=cset.description if cset else "no calibration data",
        measured=cset.measured if cset else False, _set=cset, _holdout=holdout, _specs=specs, _domains=domains,
    )
    return result, cset, calib, specs


def _fp16(model, profile, cset, calib, specs, result: QuantResult) -> onnx.ModelProto:
    from edgec.quantize.fp16 import to_fp16

    feeds = [cset.load(i) for i in calib[:SENSITIVITY_SAMPLES]] if cset else random_inputs(specs, EVAL_SEED, 2, input_domains(model, dict(profile.inputs)))
    out, kept = to_fp16(model, profile.quantize.keep_float, feeds)
    result.kept_float = kept
    return out


def activation_widths(spec) -> list[str]:
    """The activation widths the stage tries, in order: auto is int8, then (with a quantize.target) int16 when
    int8 cannot meet it. int16 costs no weight bytes, but on TFLite it runs float or as slow 16x8 kernels."""
    if spec.activations != "auto":
        return [spec.activations]
    return ["int8", "int16"] if spec.target is not None else ["int8"]


def _static_widths(model, profile, cset, calib, work: Path, result: QuantResult) -> onnx.ModelProto:
    *first, last = activation_widths(profile.quantize)
    for width in first:  # auto's int8 try: its shortfall goes into the note, or into the error if int16 misses too
        try:
            return _static(model, profile, cset, calib, work / width, result, width)
        except QuantizationError as e:
            result.int8_shortfall = str(e).split(";")[0].removeprefix("quantize.target cannot be met: int8 ")
    try:
        return _static(model, profile, cset, calib, work / last, result, last)
    except QuantizationError as e:
        if result.int8_shortfall:
            raise QuantizationError(f"{e} (int8 activations first: {result.int8_shortfall})") from None
        raise


def _static(model, profile, cset, calib, work: Path, result: QuantResult, width: str) -> onnx.ModelProto:
    spec = profile.quantize
    work.mkdir(parents=True, exist_ok=True)
    wide = width == "int16"
    pre = int8.pre_process(int8.to_qdq_opset(model, int8.QDQ16_OPSET if wide else int8.QDQ_OPSET), work)
    name_nodes(pre)
    exclude = int8.excluded_nodes(pre, spec.keep_float)
    kept = {n: "keep_float in the profile" for n in _keep(pre, spec)}
    for n in int8.float_output_softmax(pre):
        kept[n] = "output Softmax (int8 output scale 1/255 collapses probabilities)"
    # both float_input_layers and float islands answer int8's coarse grid; 16-bit rounding is 256x finer
    if spec.float_input_layers and not wide:
        firsts = {n: why for n, why in input_layers(pre).items() if n not in kept}
        kept.update(firsts)
        exclude = sorted(set(exclude) | set(firsts))
    goal = spec.target
    tune: list[int] = []
    if goal is not None and goal.held_out is None:
        calib, tune = split_held_out(calib, goal.held_out_fraction)
    cache = work / "ranges.json"
    means = input_means(pre, [cset.load(i) for i in calib[:BIAS_SAMPLES]])
    hessians = input_hessians(pre, cset.iter(calib), len(calib))  # streamed: one sample in memory at a time
    method = spec.calibration.method
    if method == "auto":  # the merged per-tensor ranges are a MinMax cache from here on
        chosen_ranges = choose_ranges(
            pre, lambda m, path: int8.quantize_static_qdq(pre, StreamReader(cset, calib), m, spec.per_channel,
                                                          exclude, path, work, width),
            [cset.load(i) for i in calib[:SENSITIVITY_SAMPLES]], work, cache)
        counts = {m: list(chosen_ranges.values()).count(m) for m in CANDIDATES}
        method = "minmax"
        result.method = "auto (" + ", ".join(f"{m} {n}" for m, n in counts.items()) + " tensors)"

    rounded: set[str] = set()  # every layer rounded in any graph quantized here; the shipped one is less its floats

    def quant(extra: list[str], reader=None, finish: bool = True) -> onnx.ModelProto:
        """The QDQ graph with `extra` float; `reader` calibrates (writes the cache); `finish`: round the weights
        and correct the biases (not for a graph made only to calibrate)."""
        qdq = int8.quantize_static_qdq(pre, reader, method, spec.per_channel,
                                       sorted(set(exclude) | set(extra)), cache, work, width)
        if finish:
            rounded.update(round_weights(qdq, pre, hessians))
            correct_biases(qdq, pre, means)
        return qdq

    qdq = quant([], StreamReader(cset, calib), finish=not wide)
    if wide:  # values past the calibration data's range saturate; 16 bits have steps to spare for headroom
        widen_ranges(cache, INT16_HEADROOM)
        qdq = quant([])
    # the search re-quantizes once per node tried, at most `sensitivity` + `max_float_nodes` times: a count, not a
    # clock (a time budget stopped at different nodes on a busy machine, and the same inputs gave other bytes)
    result.calibration_samples, result.per_channel = len(calib), spec.per_channel
    result.activations = width
    result.method = result.method or spec.calibration.method
    feeds = [cset.load(i) for i in calib[:SENSITIVITY_SAMPLES]]
    islands = {} if wide else find_islands(pre, read_ranges(cache), feeds, skip=set(exclude))
    if islands:  # decided from the ranges just calibrated; re-quantizing reuses them (no data re-read)
        kept.update(islands)
        exclude = sorted(set(exclude) | set(islands))
        qdq = quant([])
    reference = _run(pre, feeds)
    kinds = output_kinds(pre)
    result.cosine_all_quantized = result.cosine_final = output_cosine(reference, qdq, feeds, kinds)
    if goal is not None:
        qdq = _reach_target(pre, qdq, quant, exclude, kinds, kept, goal, cset, tune, profile, result)
    elif spec.sensitivity > 0:
        quantized = {n.name for n in pre.graph.node} - set(exclude)
        ranked = rank_nodes(pre, qdq, feeds, quantized)
        target = _int8_min_cosine(profile)
        chosen, final, _ = choose_float_nodes(
            ranked, lambda extra: output_cosine(reference, quant(extra), feeds, kinds),
            result.cosine_all_quantized, spec.sensitivity, spec.max_float_nodes, target)
        result.sensitivity = ranked[:spec.sensitivity]
        if chosen:
            for n in chosen:
                kept[n] = f"sensitivity: int8 output cosine {result.cosine_all_quantized:.5f} < {target}"
            qdq = quant(chosen)
            result.cosine_final = final
    result.kept_float = dict(sorted(kept.items()))
    result.weights_rounded = len(rounded - set(kept))
    return qdq


def _reach_target(pre, qdq, quant, exclude, kinds, kept, goal, cset, tune, profile, result) -> onnx.ModelProto:
    """quantize.target: float islands, cheapest gain first, until the held-out samples meet the goal. Each set is
    cut into the calibrated `qdq` graph (islands.with_float_islands: no re-quantization), and the graph measured is
    the one that ships."""
    if goal.held_out is not None:
        tset = open_source(goal.held_out, input_specs(pre), profile.inputs, RANDOM_HOLDOUT)
        feeds, where = [tset.load(i) for i in range(len(tset))], tset.description
    else:
        feeds = [cset.load(i) for i in tune]
        where = f"{len(tune)} held-out calibration sample(s) (1 file in {max(2, round(1 / goal.held_out_fraction))})"
    reference = _run(pre, feeds)
    quantized = {n.name for n in pre.graph.node} - set(exclude)
    ranked = rank_nodes(pre, qdq, feeds[:SENSITIVITY_SAMPLES], quantized)
    sizes, sets = float_weights(pre, quantized), []

    def measure(extra: list[str]):  # one ORT session on the held-out samples per node set (the search memoizes)
        sets.append(extra)
        return score(reference, with_float_islands(pre, qdq, set(extra), set(exclude)), feeds, kinds)

    try:
        chosen, steps = search(ranked, measure, goal, where, sizes, neighbours(pre, {n.name for n in qdq.graph.node}),
                               "int8 weights with int16 activations" if result.activations == "int16" else "int8")
    except QuantizationError as e:
        raise QuantizationError(f"{e}{_weights_alone(qdq, reference, feeds, kinds, goal)}") from None
    for n in chosen:
        kept[n] = f"quantize.target: {goal_words(goal)}"
    result.target = {"goal": goal_words(goal), "held_out": where, "float_nodes": chosen,
                     "float_weight_fraction": round(sum(sizes.get(n, 0) for n in chosen) / max(1, sum(sizes.values())), 6),
                     "measurements": len(sets),
                     "steps": [s.as_dict() for s in steps]}
    result.cosine_final = steps[-1].score.cosine
    return with_float_islands(pre, qdq, set(chosen), set(exclude)) if chosen else qdq


def _weights_alone(qdq: onnx.ModelProto, reference, feeds: list[dict], kinds, goal) -> str:
    """The failure message's last sentence: the same graph with every activation float, which tells whether any
    activation width could reach the goal (on EfficientNet-Lite0 the 8-bit weights alone hold all of it)."""
    alone = score(reference, without_activation_qdq(qdq)[0], feeds, kinds)
    if alone.meets(goal):
        return f" With every activation float, its 8-bit weights reach {alone.words()}: the activations hold the error."
    return (f" With every activation float, its 8-bit weights alone reach {alone.words()}, short of the goal too: the "
            f"weights hold the error, and no activation width removes it (float weights for the layers that matter: a "
            f"higher max_float_weight_fraction or keep_float; or --quantize fp16).")


def _int8_min_cosine(profile: Profile) -> float:
    numerics = profile.validate_.numerics
    p = numerics.precision.get("int8")
    return p.min_cosine if p is not None and p.min_cosine is not None else numerics.min_cosine


def _run(model: onnx.ModelProto, feeds: list[dict]) -> list[dict[str, np.ndarray]]:
    from edgec.quantize.activations import run_named, session_with_outputs

    sess = session_with_outputs(model, [])
    return [run_named(sess, f) for f in feeds]


__all__ = ["QuantResult", "quantize", "CalibrationError"]
