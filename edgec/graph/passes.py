"""Graph passes every target shares. Each pass is a small function in a registry; a pipeline is a list of names.

A pass takes a ModelProto, rewrites it in place and returns how many rewrites it made (0 = nothing to do).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

PASSES: dict[str, Callable[[onnx.ModelProto], int]] = {}
DEFAULT_PIPELINE = ["remove_identity", "sum_to_add", "fold_batchnorm_into_conv", "remove_dead_nodes"]


def graph_pass(name: str):
    def register(fn):
        PASSES[name] = fn
        return fn

    return register


def run_passes(model: onnx.ModelProto, names: list[str] | None = None) -> dict[str, int]:
    return {name: PASSES[name](model) for name in (names or DEFAULT_PIPELINE)}


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    uses: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            uses.setdefault(name, []).append(node)
    return uses


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


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
    uses = _consumers(graph)
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
        b = (
            numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64)
            if len(conv.input) > 2 and conv.input[2]
            else np.zeros(w.shape[0])
        )
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
