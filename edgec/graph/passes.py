"""Graph passes every target shares. Each pass is a small function in a registry; a pipeline is a list of names.

A pass takes a ModelProto, rewrites it in place and returns how many rewrites it made (0 = nothing to do).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.graph.qoperator import qoperator_to_qdq
from edgec.graph.view import constants, consumers
from edgec.registry import Registry

PASSES = Registry("graph passes")  # name -> Rule(fn: ModelProto -> rewrites)
DEFAULT_PIPELINE = ["qoperator_to_qdq", "remove_identity", "sum_to_add", "fold_batchnorm_into_conv", "fold_affine_into_conv",
                    "fuse_hardswish", "fold_input_affine_into_conv", "remove_dead_nodes"]


def graph_pass(name: str, note: str = ""):
    return PASSES.register(name, note=note)


graph_pass("qoperator_to_qdq", note="QLinearConv/QLinearMatMul -> DequantizeLinear -> op -> QuantizeLinear")(
    qoperator_to_qdq)


@dataclass
class PassRun:
    """One stage of a pipeline as it ran: its name, how many rewrites it made, the node count around it."""

    name: str
    rewrites: int
    nodes_before: int
    nodes_after: int

    def as_dict(self) -> dict:
        return {"pass": self.name, "rewrites": self.rewrites, "nodes_before": self.nodes_before,
                "nodes_after": self.nodes_after}


def run_pipeline(model: onnx.ModelProto, names: list[str] | None = None) -> list[PassRun]:
    """Run the passes in order (the default pipeline unless named), in place; what each did."""
    runs = []
    for name in names or DEFAULT_PIPELINE:
        before = len(model.graph.node)
        runs.append(PassRun(name, PASSES[name].fn(model), before, len(model.graph.node)))
    return runs


def run_passes(model: onnx.ModelProto, names: list[str] | None = None) -> dict[str, int]:
    return {r.name: r.rewrites for r in run_pipeline(model, names)}


def describe(runs: list[PassRun]) -> str:
    """One line for a report: every pass in order with its rewrites and node counts."""
    return "; ".join(f"{r.name}: {r.rewrites} rewrite(s), {r.nodes_before} -> {r.nodes_after} nodes" for r in runs)


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def _conv_bias(conv: onnx.NodeProto, inits: dict, channels: int) -> np.ndarray:
    """The conv's bias as float64, zeros when it has none."""
    if len(conv.input) > 2 and conv.input[2]:
        return numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64)
    return np.zeros(channels)


def _bias_writable(conv: onnx.NodeProto, inits: dict, uses: dict) -> bool:
    """No bias, or a constant one only this conv reads: a fold may rewrite it."""
    if len(conv.input) <= 2 or not conv.input[2]:
        return True
    return conv.input[2] in inits and len(uses.get(conv.input[2], [])) == 1


def _store_conv_bias(graph: onnx.GraphProto, inits: dict, conv: onnx.NodeProto, b: np.ndarray, dtype) -> None:
    """Write `b` as the conv's bias: over its own bias initializer (the caller checked nothing else reads it), or
    as a new one."""
    if len(conv.input) > 2 and conv.input[2]:
        inits[conv.input[2]].CopyFrom(numpy_helper.from_array(b.astype(dtype), conv.input[2]))
        return
    name = f"{conv.output[0]}__folded_bias"
    graph.initializer.append(numpy_helper.from_array(b.astype(dtype), name))
    inits[name] = graph.initializer[-1]
    if len(conv.input) > 2:
        conv.input[2] = name
    else:
        conv.input.append(name)


@graph_pass("remove_identity")
def remove_identity(model: onnx.ModelProto) -> int:
    """Drop Identity and inference-mode Dropout; consumers read the input directly."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    used = {name for n in graph.node for name in n.input} | outputs
    removed = 0
    for node in list(graph.node):
        if node.op_type not in ("Identity", "Dropout"):
            continue
        if node.op_type == "Dropout" and any(o in used for o in node.output[1:]):
            continue  # the mask output is used: not a no-op
        src, dst = node.input[0], node.output[0]
        if dst in outputs:
            if src in outputs or src in {i.name for i in graph.input}:
                continue  # keep: renaming would merge two graph outputs or an input
            producer = next((n for n in graph.node if src in n.output), None)
            if producer is None:
                continue  # an initializer feeds a graph output: keep the Identity
            producer.output[list(producer.output).index(src)] = dst
            _rename_input(graph, src, dst)
        else:
            _rename_input(graph, dst, src)
        graph.node.remove(node)
        removed += 1
    return removed


@graph_pass("sum_to_add")
def sum_to_add(model: onnx.ModelProto) -> int:
    """Sum -> a chain of Add (opset-8 Sum is supported by neither NNAPI nor CoreML EPs; every backend has Add)."""
    graph = model.graph
    rewrites = 0
    for idx, node in enumerate(list(graph.node)):
        if node.op_type != "Sum":
            continue
        pos = list(graph.node).index(node)
        graph.node.remove(node)
        if len(node.input) == 1:
            new = [helper.make_node("Identity", [node.input[0]], [node.output[0]], name=node.name)]
        else:
            new, acc = [], node.input[0]
            for k, rhs in enumerate(node.input[1:], start=1):
                last = k == len(node.input) - 1
                out = node.output[0] if last else f"{node.output[0]}__sum{k}"
                new.append(helper.make_node("Add", [acc, rhs], [out], name=f"{node.name or node.output[0]}__add{k}"))
                acc = out
        for j, n in enumerate(new):
            graph.node.insert(pos + j, n)
        rewrites += 1
    return rewrites


@graph_pass("fold_batchnorm_into_conv")
def fold_batchnorm_into_conv(model: onnx.ModelProto) -> int:
    """Conv -> BatchNormalization (inference) becomes one Conv with rescaled weights and bias."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    uses = consumers(graph)
    outputs = {o.name for o in graph.output}
    producers = {o: n for n in graph.node for o in n.output}
    folded = 0
    for bn in list(graph.node):
        if bn.op_type != "BatchNormalization" or len(bn.output) > 1 and any(bn.output[1:]):
            continue
        conv = producers.get(bn.input[0])
        if conv is None or conv.op_type != "Conv" or len(uses.get(conv.output[0], [])) != 1:
            continue
        if conv.output[0] in outputs or any(name not in inits for name in bn.input[1:5]):
            continue
        if conv.input[1] not in inits or (len(conv.input) > 2 and conv.input[2] and conv.input[2] not in inits):
            continue
        if len(uses.get(conv.input[1], [])) != 1:
            continue  # weight shared with another node: folding would change that node too
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        scale, bias, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:5])
        w = numpy_helper.to_array(inits[conv.input[1]])
        b = _conv_bias(conv, inits, w.shape[0])
        factor = scale / np.sqrt(var + eps)
        new_w = (w.astype(np.float64) * factor.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
        new_b = ((b - mean) * factor + bias).astype(w.dtype)
        w_name = conv.input[1]
        b_name = f"{conv.output[0]}__folded_bias"
        inits[w_name].CopyFrom(numpy_helper.from_array(new_w, w_name))
        graph.initializer.append(numpy_helper.from_array(new_b, b_name))
        inits[b_name] = graph.initializer[-1]
        if len(conv.input) > 2:
            conv.input[2] = b_name
        else:
            conv.input.append(b_name)
        conv.output[0] = bn.output[0]
        graph.node.remove(bn)
        folded += 1
    return folded


@graph_pass("remove_dead_nodes")
def remove_dead_nodes(model: onnx.ModelProto) -> int:
    """Drop nodes and initializers nothing reaches from the graph outputs."""
    graph = model.graph
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
            for attr in node.attribute:  # subgraph inputs (If/Loop) count as used
                for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    needed.update(i for n in g.node for i in n.input)
    removed = len(graph.node) - len(keep)
    if removed:
        kept = list(reversed(keep))
        del graph.node[:]
        graph.node.extend(kept)
    dead_inits = [t for t in graph.initializer if t.name not in needed]
    for t in dead_inits:
        graph.initializer.remove(t)
    inputs_to_drop = [i for i in graph.input if i.name in {t.name for t in dead_inits}]
    for i in inputs_to_drop:
        graph.input.remove(i)
    return removed + len(dead_inits)


# ---------------------------------------------------------------- activation and affine fusion


def _scalar(inits: dict, name: str) -> float | None:
    """The value of a one-element constant, else None."""
    t = inits.get(name)
    if t is None:
        return None
    a = numpy_helper.to_array(t)
    return float(a.ravel()[0]) if a.size == 1 else None


def _clip_bounds(node: onnx.NodeProto, inits: dict) -> tuple[float | None, float | None]:
    """Clip's (min, max): attributes before opset 11, optional constant inputs after; None where unset or unknown."""
    attrs = {a.name: a.f for a in node.attribute}
    if attrs:
        return attrs.get("min"), attrs.get("max")
    lo = _scalar(inits, node.input[1]) if len(node.input) > 1 and node.input[1] else None
    hi = _scalar(inits, node.input[2]) if len(node.input) > 2 and node.input[2] else None
    return lo, hi


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


@graph_pass("fuse_hardswish")
def fuse_hardswish(model: onnx.ModelProto) -> int:
    """x * Clip(x + 3, 0, 6) / 6 (paddle2onnx, some TF exports write hard-swish out in 4 ops) becomes HardSwish(x)
    (opset >= 14) or x * HardSigmoid(x). One op instead of four; and for int8 the 4-op form quantizes
    x * Clip(x + 3) on its own, a tensor 6x the output's range (PP-OCR rec: 1 int8 step ~ 0.9 there)."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    uses = consumers(graph)
    producers = {o: n for n in graph.node for o in n.output}
    outputs = {o.name for o in graph.output}
    fused = 0
    for div in list(graph.node):
        by = {"Div": 6.0, "Mul": 1 / 6.0}.get(div.op_type)
        if by is None or len(div.input) != 2 or not np.isclose(_scalar(inits, div.input[1]) or 0.0, by):
            continue
        mul = producers.get(div.input[0])
        if mul is None or mul.op_type != "Mul" or len(uses.get(mul.output[0], [])) != 1:
            continue
        for x, other in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
            clip = producers.get(other)
            if clip is None or clip.op_type != "Clip" or _clip_bounds(clip, inits) != (0.0, 6.0):
                continue
            add = producers.get(clip.input[0])
            if add is None or add.op_type != "Add" or set(add.input) - {x} == set() or x not in add.input:
                continue
            three = next(i for i in add.input if i != x)
            if _scalar(inits, three) != 3.0:
                continue
            inner = (add.output[0], clip.output[0], mul.output[0])
            if any(len(uses.get(t, [])) != 1 or t in outputs for t in inner):
                continue
            y = div.output[0]
            if _opset(model) >= 14:
                new = [helper.make_node("HardSwish", [x], [y], name=f"{div.name or y}_hardswish")]
            else:
                gate = f"{y}__hardsigmoid"
                new = [helper.make_node("HardSigmoid", [x], [gate], name=f"{div.name or y}_hardsigmoid",
                                        alpha=1 / 6.0, beta=0.5),
                       helper.make_node("Mul", [x, gate], [y], name=f"{div.name or y}_hardswish")]
            at = list(graph.node).index(add)
            for n in (add, clip, mul, div):
                graph.node.remove(n)
            for k, n in enumerate(new):
                graph.node.insert(at + k, n)
            fused += 1
            break
    return fused


@graph_pass("fold_affine_into_conv")
def fold_affine_into_conv(model: onnx.ModelProto) -> int:
    """Conv -> Mul/Add by a constant that is one value per output channel (or one for all) folds into the conv's
    weights and bias (paddle2onnx writes PP-LCNet's learnable affine this way). Exact; removes an op and, for
    int8, a quantization point."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    outputs = {o.name for o in graph.output}
    folded = 0
    for op in list(graph.node):
        if op.op_type not in ("Add", "Mul") or len(op.input) != 2:
            continue
        uses = None
        for src, const in ((op.input[0], op.input[1]), (op.input[1], op.input[0])):
            conv = producers.get(src)
            if conv is None or conv.op_type != "Conv" or const not in inits or src in outputs:
                continue
            if uses is None:  # only for a Conv -> Add/Mul candidate: per Add it was quadratic (10k-input Sum)
                uses = consumers(graph)
            if len(uses.get(src, [])) != 1 or conv.input[1] not in inits or len(uses.get(conv.input[1], [])) != 1:
                continue
            w = numpy_helper.to_array(inits[conv.input[1]])
            c = numpy_helper.to_array(inits[const]).astype(np.float64)
            per = per_channel(c, w.shape[0], w.ndim)
            if per is None:
                continue
            if not _bias_writable(conv, inits, uses):
                continue
            b = _conv_bias(conv, inits, w.shape[0])
            if op.op_type == "Mul":
                w = (w.astype(np.float64) * per.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
                b = b * per
                inits[conv.input[1]].CopyFrom(numpy_helper.from_array(w, conv.input[1]))
            else:
                b = b + per
            _store_conv_bias(graph, inits, conv, b, w.dtype)
            conv.output[0] = op.output[0]
            producers[op.output[0]] = conv
            graph.node.remove(op)
            folded += 1
            break
    return folded


def per_channel(c: np.ndarray, channels: int, rank: int) -> np.ndarray | None:
    """A constant broadcast against an [N, C, ...] conv output as one value per channel: a scalar, [C, 1, ..] or
    [1, C, 1, ..] (broadcasting aligns shapes right: a plain [C] runs along the last axis, not the channels).
    None when it varies along any other axis."""
    if c.size == 1:
        return np.full(channels, float(c.ravel()[0]))
    shape = [1] * (rank - c.ndim) + list(c.shape)
    if c.ndim > rank or shape[1] != channels or any(d != 1 for i, d in enumerate(shape) if i != 1):
        return None
    return c.reshape(channels)


@graph_pass("fold_input_affine_into_conv")
def fold_input_affine_into_conv(model: onnx.ModelProto) -> int:
    """Mul/Add by one constant before Convs folds into them (see _fold_input_affine), repeated until nothing
    folds: x*s + t -> Conv folds the Add first, then the Mul."""
    total = 0
    while (n := _fold_input_affine(model)) > 0:
        total += n
    return total


def _fold_input_affine(model: onnx.ModelProto) -> int:
    """Mul/Add by one constant value for all channels right before a Conv folds into it: x*s scales the weights
    (zero padding stays zero), x+t adds t*sum(W) to the bias, exact only without padding (padded borders would
    see t where the conv saw 0), so Add folds only into unpadded convs. PP-LCNet's learnable affine sits there."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    uses = consumers(graph)  # kept current below: a fold only moves the convs from op's output to x
    folded = 0
    for op in list(graph.node):
        if op.op_type not in ("Add", "Mul") or len(op.input) != 2 or op.output[0] in outputs:
            continue
        readers = uses.get(op.output[0], [])
        consts = [i for i in op.input if i in inits]
        if len(consts) != 1 or not readers:
            continue
        value = _scalar(inits, consts[0])
        x = next(i for i in op.input if i not in inits)
        if value is None or any(r.op_type != "Conv" or r.input[0] != op.output[0] or r.input[1] not in inits
                                or len(uses.get(r.input[1], [])) != 1 for r in readers):
            continue
        if op.op_type == "Add" and any(_padded(r) for r in readers):
            continue
        if not all(_bias_writable(conv, inits, uses) for conv in readers):
            continue
        for conv in readers:
            w = numpy_helper.to_array(inits[conv.input[1]])
            if op.op_type == "Mul":
                inits[conv.input[1]].CopyFrom(numpy_helper.from_array((w * value).astype(w.dtype), conv.input[1]))
            else:
                b = _conv_bias(conv, inits, w.shape[0])
                b = b + value * w.astype(np.float64).reshape(w.shape[0], -1).sum(axis=1)
                _store_conv_bias(graph, inits, conv, b, w.dtype)
            conv.input[0] = x
        for name in op.input:
            uses[name] = [n for n in uses.get(name, []) if n is not op]
        uses[x] += readers
        del uses[op.output[0]]
        graph.node.remove(op)
        folded += 1
    return folded


def _padded(conv: onnx.NodeProto) -> bool:
    attrs = {a.name: a for a in conv.attribute}
    auto = attrs["auto_pad"].s.decode() if "auto_pad" in attrs else "NOTSET"
    return auto not in ("NOTSET", "VALID") or ("pads" in attrs and any(attrs["pads"].ints))


_INT_RANGE = {onnx.TensorProto.INT8: (-128, 127), onnx.TensorProto.UINT8: (0, 255),
              onnx.TensorProto.INT16: (-32768, 32767), onnx.TensorProto.UINT16: (0, 65535)}
_NON_NEGATIVE_OPS = {"Relu", "Sigmoid", "Softmax", "Abs", "Exp", "Sqrt", "HardSigmoid"}
# ops whose output keeps the sign of their first input (the others are shapes, sizes, axes, indices)
_SIGN_OF_DATA_OPS = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Reshape", "Flatten",
                     "Transpose", "Squeeze", "Unsqueeze", "Identity", "Resize", "Upsample", "Split", "Slice",
                     "Gather", "Tile", "Expand", "DepthToSpace", "SpaceToDepth"}
_SIGN_OF_ALL_OPS = {"Concat", "Add", "Mul", "Min"}  # non-negative when every input is (Max: when any is)


def _non_negative(graph: onnx.GraphProto, consts: dict) -> set[str]:
    """Tensors that cannot be negative, from the ops that produce them (one pass in topological order)."""
    nonneg: set[str] = set()

    def known(name: str) -> bool:  # a constant is read only when an op's sign depends on it
        if name in consts and name not in nonneg and consts[name].dtype == np.float32 and np.all(consts[name] >= 0):
            nonneg.add(name)
        return name in nonneg

    for n in graph.node:
        if n.op_type in _NON_NEGATIVE_OPS:
            ok = True
        elif n.op_type == "Clip":
            ok = len(n.input) > 1 and n.input[1] in consts and known(n.input[1])
        elif n.op_type == "DequantizeLinear":  # zero point at the type's minimum: values from 0 up
            zp = consts[n.input[2]] if len(n.input) > 2 and n.input[2] in consts else None
            ok = zp is not None and zp.dtype in (np.int8, np.uint8) and np.all(zp == np.iinfo(zp.dtype).min)
        elif n.op_type in _SIGN_OF_DATA_OPS:
            ok = known(n.input[0])
        elif n.op_type in _SIGN_OF_ALL_OPS:
            ok = all(known(x) for x in n.input if x)
        elif n.op_type == "Max":
            ok = any(known(x) for x in n.input if x)
        else:
            ok = False
        if ok:
            nonneg.update(o for o in n.output if o)
    return nonneg


def only_16_bit_activations(model: onnx.ModelProto) -> bool:
    """Whether the graph has activation QuantizeLinear nodes and every one writes 16-bit integers
    (quantize.activations: int16): runtimes without 16-bit activation kernels drop them (drop_activation_qdq)."""
    inits = {i.name: i.data_type for i in model.graph.initializer}
    qs = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
    wide = (onnx.TensorProto.INT16, onnx.TensorProto.UINT16)
    return bool(qs) and all(len(q.input) > 2 and inits.get(q.input[2]) in wide for q in qs)


def without_activation_qdq(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy of a QDQ graph with its activation Q/DQ pairs dropped (drop_activation_qdq; weights stay 8-bit), and
    how many pairs went: what a runtime without those activation kernels runs."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    return model, drop_activation_qdq(model)


@graph_pass("drop_activation_qdq")
def drop_activation_qdq(model: onnx.ModelProto) -> int:
    """Activation QuantizeLinear -> DequantizeLinear pairs become the float tensor, without the rounding. A range
    that starts at 0 (zero point at the type's minimum) over a tensor that can be negative gets a Clip to it
    instead: ORT's quantizer deletes the Relu / Clip(0, 6) such a range implies, so that clamp must stay (after a
    Concat or pool of clamped tensors it would be redundant work). Other ranges' saturation is dropped with the
    rounding (only out-of-calibration values reach it). Weight DQs (constant input) stay, and so do a Q whose
    int8 output leaves the graph or feeds anything but a DQ, and per-axis activation scales. Not in the default
    pipeline: a backend whose runtime has no int8 activations (CoreML below iOS17) runs the graph this way, with
    float activations and 8-bit weights. Returns the number of pairs replaced."""
    graph = model.graph
    consts = constants(graph)
    outputs = {o.name for o in graph.output}
    uses = consumers(graph)
    nonneg = _non_negative(graph, consts)
    pairs = 0
    for q in list(graph.node):
        if q.op_type != "QuantizeLinear" or q.input[0] in consts or q.output[0] in outputs:
            continue
        readers = uses.get(q.output[0], [])
        if not readers or any(r.op_type != "DequantizeLinear" for r in readers):
            continue
        scale = consts[q.input[1]] if q.input[1] in consts else None
        zp = consts[q.input[2]] if len(q.input) > 2 and q.input[2] in consts else None
        if scale is None or scale.size != 1 or (zp is not None and zp.size != 1):
            continue
        qtype = zp.dtype if zp is not None else np.dtype(np.uint8)
        lo_q, hi_q = _INT_RANGE[helper.np_dtype_to_tensor_dtype(qtype)]
        z = float(zp.reshape(())) if zp is not None else 0.0
        src = q.input[0]
        if z == lo_q and src not in nonneg:
            hi = np.array((hi_q - z) * float(scale.reshape(())), np.float32)
            bounds = [f"{q.output[0]}_float_lo", f"{q.output[0]}_float_hi"]
            graph.initializer.extend([numpy_helper.from_array(np.array(0.0, np.float32), bounds[0]),
                                      numpy_helper.from_array(hi, bounds[1])])
            src = f"{q.output[0]}_float"
            graph.node.insert(list(graph.node).index(q),
                              helper.make_node("Clip", [q.input[0], *bounds], [src], name=f"{q.name}_range"))
        for dq in readers:  # an Identity of the float tensor; remove_identity then rewires its readers
            dq.op_type, dq.domain = "Identity", ""
            del dq.input[:]
            dq.input.append(src)
            del dq.attribute[:]
        graph.node.remove(q)
        pairs += 1
    if pairs:
        remove_identity(model)
    return pairs

