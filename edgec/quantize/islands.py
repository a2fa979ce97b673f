"""Float islands: tensors one int8 scale cannot carry, found from the calibrated ranges before any search.

int8 activations have one scale per tensor. Two patterns break that, and the per-node sensitivity search cannot
find either, because the damage only goes away when two or more nodes stay float together:

- per-channel normalization of a tensor whose channels have very different spreads (DenseNet: a
  BatchNormalization after every Concat of earlier layers' outputs). The tensor's scale leaves the quiet
  channels a few int8 steps, and the normalization then scales that rounding up to the size of the signal.
  Measured on calibration samples: per channel, the rounding error power over the channel's variance.
- a Concat of inputs with very different ranges (a detector's box coordinates in pixels next to 0..1 scores):
  the smaller input keeps only a few levels of the shared scale.

Each such tensor stays float: the normalization and the Concat (or cheap op) that produces it, and every other
reader of it (ONNX Runtime's QDQ quantizer routes all readers through one Q/DQ pair if any reader is quantized,
so the tensor only stays float when no reader needs it int8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx

from edgec.graph.view import consumers, producers
from edgec.quantize.activations import run_named, session_with_outputs

# mean over channels of rounding-error power / channel variance above which a normalized tensor stays float:
# 1% is 20 dB, where a well-spread tensor's int8 rounding is ~45 dB (densenet121 ranges 1e-3 .. 0.4)
MAX_NOISE_RATIO = 0.01
# a Concat input whose range is under this fraction of the output's keeps fewer than ~8 of the 256 levels
MIN_RANGE_FRACTION = 1 / 32
NORMALIZING = ("BatchNormalization",)
# ops that move or pick values without weights: cheap to run float, and they share their input's int8 scale
CHEAP = ("Concat", "MaxPool", "AveragePool", "Relu", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze",
         "Identity", "Slice", "Split", "Gather")
# readers that pass the same values on: the tensor they write needs the same float treatment
MOVES = ("Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Slice", "Split", "Gather")
INT8_LEVELS = 255  # QInt8 activations: -128..127


def read_ranges(cache: Path) -> dict[str, tuple[float, float]]:
    """Tensor -> (min, max) from ONNX Runtime's calibration cache (its TensorsData JSON); {} if unreadable."""
    try:
        data = json.loads(Path(cache).read_text())["data"]
        return {name: (float(v["lowest"]["data"][0]), float(v["highest"]["data"][0])) for name, v in data.items()}
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return {}


def fake_quant(x: np.ndarray, lo: float, hi: float) -> np.ndarray | None:
    """x through int8 quantize/dequantize with the scale and zero point ORT derives from (lo, hi)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / INT8_LEVELS
    if not scale > 0:
        return None
    zp = np.round(-128 - lo / scale)
    return (np.clip(np.round(x / scale) + zp, -128, 127) - zp) * scale


def channel_noise_ratio(x: np.ndarray, lo: float, hi: float) -> float:
    """Mean over channels (axis 1) of int8 rounding-error power / channel variance, each capped at 1."""
    fq = fake_quant(x.astype(np.float64), lo, hi)
    if fq is None or x.ndim < 2:
        return 0.0
    axes = tuple(i for i in range(x.ndim) if i != 1)
    err = ((fq - x) ** 2).mean(axis=axes)
    var = x.astype(np.float64).var(axis=axes)
    ratio = np.where(err == 0, 0.0, err / np.maximum(var, 1e-30))  # exact (e.g. all-zero) channels lose nothing
    return float(np.minimum(ratio, 1.0).mean())


def find_islands(model: onnx.ModelProto, ranges: dict[str, tuple[float, float]], feeds: list[dict],
                 skip: set[str] = frozenset()) -> dict[str, str]:
    """Node name -> why it stays float. `feeds` are calibration samples; `skip` nodes are float already."""
    producer, readers = producers(model), consumers(model)
    why: dict[str, str] = {}

    def island(tensor: str) -> list[onnx.NodeProto] | None:
        """The readers of `tensor`, and of what data-movement readers pass on; None if one of them needs int8."""
        nodes = []
        for r in readers.get(tensor, []):
            if r.op_type in MOVES:
                more = [island(o) for o in r.output]
                if any(m is None for m in more):
                    return None
                nodes += [r, *(n for m in more for n in m)]
            elif r.op_type in CHEAP + NORMALIZING:
                nodes.append(r)
            else:
                return None
        return nodes

    def keep_float(tensor: str, reason: str) -> None:
        """The tensor's producer and readers stay float, if all of them can (else int8 cannot be avoided)."""
        prod = producer.get(tensor)
        nodes = island(tensor) if prod is not None and prod.op_type in CHEAP else None
        for n in [prod, *nodes] if nodes is not None else []:
            if n.name not in skip:
                why.setdefault(n.name, reason)

    normalized = [n for n in model.graph.node if n.op_type in NORMALIZING and n.input[0] in ranges]
    if normalized and feeds:
        sess = session_with_outputs(model, sorted({n.input[0] for n in normalized}))
        runs = [run_named(sess, f) for f in feeds]
        for n in normalized:
            t = n.input[0]
            x = np.concatenate([r[t] for r in runs], axis=0)
            ratio = channel_noise_ratio(x, *ranges[t])
            if ratio > MAX_NOISE_RATIO:
                keep_float(t, f"its input's int8 rounding is {ratio:.1%} of the per-channel signal the "
                              f"{n.op_type} normalizes (one scale for channels of very different spread)")
    for n in model.graph.node:
        if n.op_type != "Concat" or any(i not in ranges for i in n.input) or n.output[0] not in ranges:
            continue
        span = lambda t: max(ranges[t][1], 0.0) - min(ranges[t][0], 0.0)  # noqa: E731
        out, least = span(n.output[0]), min(span(i) for i in n.input)
        if out > 0 and least / out < MIN_RANGE_FRACTION:
            keep_float(n.output[0], f"mixed-range Concat: an input spans {least:.3g} of the output's {out:.3g}")
    return why


WEIGHTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# between a model input and its first weighted layer: data movement, padding, and the app-side normalization some
# exports keep in the graph (x - mean) / std with constant operands
TO_FIRST_LAYER = MOVES + ("Pad", "Sub", "Div", "Mul", "Add", "Cast")


def input_layers(model: onnx.ModelProto) -> dict[str, str]:
    """Node name -> why it stays float: the first weighted layers reading a float model input, and the ops between.

    Quantizing them would round the input itself, which arrives as float from the app's preprocessing: one int8
    scale over channels normalized by different std is a grid ~1 pixel level wide and off the pixels' own grid, so it
    adds noise the float model never had. Measured on EfficientNet-Lite0 (ORT, 96 held-out crops): logits off by
    11 % with the stem int8, 6 % with it float (top-1 agreement 0.885 -> 0.917); low-contrast photos (the moon, at
    ~15 pixel levels of spread) lost their texture. The first layer is a few hundred to a few thousand weights."""
    inits = {t.name for t in model.graph.initializer}
    readers = consumers(model)
    floats = [i.name for i in model.graph.input
              if i.name not in inits and i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT]
    why: dict[str, str] = {}
    for name in floats:
        path: list[onnx.NodeProto] = []
        frontier, seen = [name], set()
        while frontier:
            tensor = frontier.pop()
            for r in readers.get(tensor, []):
                if r.name in seen:
                    continue
                seen.add(r.name)
                constant_rest = all(i in inits or i == tensor or not i for i in r.input)
                if r.op_type in WEIGHTED and len(r.input) > 1 and r.input[1] in inits:
                    path.append(r)
                elif r.op_type in TO_FIRST_LAYER and constant_rest:
                    path.append(r)
                    frontier.extend(o for o in r.output if o)
        if any(n.op_type in WEIGHTED for n in path):
            for n in path:
                why.setdefault(n.name, f"reads model input '{name}' (float, so the input is not rounded to int8; "
                                       "quantize.float_input_layers)")
    return why


# ---------------------------------------------------------------- float islands cut into a calibrated QDQ graph

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
OUTPUT_SUFFIX = "_QuantizeLinear_Input"
FOLDED = ("Relu", "Clip")  # activations ORT's quantizer folds into the range of their producer's output
# ops ORT's QDQ quantizer (QDQDirect8BitOp and kin) quantizes only to pass on an input that is quantized already:
# they never put Q/DQ on a tensor themselves (the output takes the input's scale)
PASS_ALONG = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "AveragePool", "MaxPool", "Slice", "TopK",
              "Resize", "Gather", "GatherElements")


def self_quantizing() -> frozenset[str]:
    """Op types ORT's QDQ quantizer puts Q/DQ around on their own (its default op_types_to_quantize less the
    pass-along ones); any other op (PRelu, Sigmoid...) is never quantized and passes nothing on."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return frozenset(set(QDQRegistry) | set(QLinearOpsRegistry)) - set(PASS_ALONG)


def with_float_islands(float_model: onnx.ModelProto, qdq: onnx.ModelProto, float_nodes: set[str],
                       kept: set[str] = frozenset()) -> onnx.ModelProto:
    """The calibrated `qdq` graph with `float_nodes` (names of `float_model`'s nodes) run in float, without
    re-quantizing: each such node reads its original float weights and bias, and a tensor whose producer (or graph
    input) and readers are all float carries no Q/DQ; every other tensor keeps the Q/DQ pair `qdq` gave it, with
    the same scale and zero point, and every other node its int8 weights (bias-corrected as in `qdq`). So a set of
    adjacent nodes is one float island with a single Q/DQ pair on each boundary tensor. `kept`: nodes `qdq` was
    quantized without (excluded), float there already.

    A tensor keeps its Q/DQ only where ORT's quantizer, re-run with the island excluded, would give it one: an int8
    neighbour that quantizes on its own (self_quantizing), or an int8 pass-along producer (Transpose, Reshape...)
    whose input is quantized. A Transpose before and a PRelu after a float Conv leave its input and output float.

    Built from `float_model`'s node order: an activation the quantizer folded into its producer's range (Relu, Clip
    after a Conv) comes back as a float node after a float producer and stays folded after an int8 one."""
    q_nodes = {n.name: n for n in qdq.graph.node if n.op_type not in QDQ_OPS}
    q_inits = {t.name: t for t in qdq.graph.initializer}
    f_inits = {t.name: t for t in float_model.graph.initializer}
    q_producer = producers(qdq)
    outputs = {o.name for o in float_model.graph.output}
    scales: dict[str, onnx.NodeProto] = {}  # activation tensor -> the QuantizeLinear `qdq` gave it
    for n in qdq.graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] not in q_inits:
            t = n.input[0]
            scales[t[:-len(OUTPUT_SUFFIX)] if t.endswith(OUTPUT_SUFFIX) and t[:-len(OUTPUT_SUFFIX)] in outputs else t] = n
    producer = producers(float_model)
    floats = set(float_nodes)
    rename: dict[str, str] = {}  # an int8 producer's output -> the folded activation's output it writes instead
    folded: set[str] = set()
    for n in float_model.graph.node:
        p = producer.get(n.input[0]) if n.input else None
        if n.name in q_nodes or n.op_type not in FOLDED or p is None or p.name not in q_nodes:
            continue
        if p.name in floats:
            floats.add(n.name)  # folded into a float producer: it runs, in float
        else:
            rename[n.input[0]] = n.output[0]
            folded.add(n.name)
    readers: dict[str, list[str]] = {}
    for n in float_model.graph.node:
        if n.name not in folded:
            for i in n.input:
                readers.setdefault(rename.get(i, i), []).append(n.name)
    real_producer = {rename.get(o, o): n.name for n in float_model.graph.node if n.name not in folded for o in n.output}

    op = {n.name: n for n in float_model.graph.node}
    on_own = self_quantizing()

    def int8(name: str | None, kinds) -> bool:
        return name is not None and name in q_nodes and name not in floats and name not in kept \
            and op[name].op_type in kinds

    def quantized(t: str) -> bool:
        if t not in scales:
            return False
        p = real_producer.get(t)
        if int8(p, on_own) or any(int8(r, on_own) for r in readers.get(t, [])):
            return True
        return int8(p, PASS_ALONG) and quantized(rename.get(op[p].input[0], op[p].input[0]))

    nodes: list[onnx.NodeProto] = []
    inits: dict[str, onnx.TensorProto] = {}
    weights_dq: set[str] = set()

    def qdq_pair(t: str, src: str) -> None:
        q = scales[t]
        qi = q.input[1:]
        for x in qi:
            inits[x] = q_inits[x]
        attrs = list(q.attribute)
        dq_out = t if t in outputs else f"{t}_DequantizeLinear_Output"
        nodes.append(onnx.helper.make_node("QuantizeLinear", [src, *qi], [f"{t}_QuantizeLinear_Output"],
                                           name=f"{t}_QuantizeLinear"))
        nodes[-1].attribute.extend(attrs)
        nodes.append(onnx.helper.make_node("DequantizeLinear", [f"{t}_QuantizeLinear_Output", *qi], [dq_out],
                                           name=f"{t}_DequantizeLinear"))
        nodes[-1].attribute.extend(attrs)

    def read(t: str) -> str:
        t = rename.get(t, t)
        return f"{t}_DequantizeLinear_Output" if quantized(t) and t not in outputs else t

    for i in float_model.graph.input:
        if quantized(i.name):
            qdq_pair(i.name, i.name)
    for n in float_model.graph.node:
        if n.name in folded:
            continue
        new = onnx.NodeProto()
        new.CopyFrom(n)
        if n.name in floats or n.name not in q_nodes:
            for k, x in enumerate(n.input):
                if x in f_inits:
                    inits[x] = f_inits[x]
                elif x:
                    new.input[k] = read(x)
        else:
            qn = q_nodes[n.name]
            for k, x in enumerate(qn.input):
                dq = q_producer.get(x)
                if x in q_inits:
                    inits[x] = q_inits[x]
                elif dq is not None and dq.op_type == "DequantizeLinear" and all(i in q_inits for i in dq.input if i):
                    if dq.name not in weights_dq:  # a weight or bias kept int8: its DequantizeLinear goes first
                        weights_dq.add(dq.name)
                        nodes.insert(0, dq)
                        inits.update({i: q_inits[i] for i in dq.input if i})
                    new.input[k] = x
                elif x:
                    new.input[k] = read(n.input[k])
        for k, o in enumerate(n.output):
            t = rename.get(o, o)
            if quantized(t):
                new.output[k] = f"{t}{OUTPUT_SUFFIX}" if t in outputs else t
            else:
                new.output[k] = t
        nodes.append(new)
        for o in new.output:
            t = o[:-len(OUTPUT_SUFFIX)] if o.endswith(OUTPUT_SUFFIX) else o
            if quantized(t):
                qdq_pair(t, o)
    g = float_model.graph
    graph = onnx.helper.make_graph(nodes, g.name, list(g.input), list(g.output),
                                   [inits[k] for k in sorted(inits)])
    out = onnx.helper.make_model(graph, opset_imports=list(qdq.opset_import), ir_version=qdq.ir_version)
    out.producer_name = qdq.producer_name
    return out


def float_weights(model: onnx.ModelProto, nodes: set[str]) -> dict[str, int]:
    """Node -> elements of the float initializers it reads (what keeping it float costs in size), for `nodes`."""
    size = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    return {n.name: sum(size.get(i, 0) for i in n.input) for n in model.graph.node if n.name in nodes}


def neighbours(model: onnx.ModelProto, present: set[str]) -> dict[str, list[str]]:
    """Node -> the nodes that read what it writes or write what it reads, looking through nodes not in `present`
    (the activations the quantizer folded away: they follow their producer, islands.with_float_islands)."""
    producer, readers = producers(model), consumers(model)

    def up(n: onnx.NodeProto) -> list[str]:
        found = []
        for i in n.input:
            p = producer.get(i)
            if p is not None:
                found += [p.name] if p.name in present else up(p)
        return found

    def down(n: onnx.NodeProto) -> list[str]:
        found = []
        for o in n.output:
            for r in readers.get(o, []):
                found += [r.name] if r.name in present else down(r)
        return found

    return {n.name: sorted(set(up(n) + down(n))) for n in model.graph.node if n.name in present}
