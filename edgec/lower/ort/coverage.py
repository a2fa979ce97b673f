"""NNAPI / CoreML execution-provider coverage, as ONNX Runtime's mobile usability checker computes it."""

from __future__ import annotations

import logging

import onnx
from onnx import helper

EPS = {
    "NNAPI": ("nnapi", None),
    "CoreML (ML Program)": ("coreml", "coreml_supported_mlprogram_ops.md"),
    "CoreML (NeuralNetwork)": ("coreml", "coreml_supported_neuralnetwork_ops.md"),
}


def _for_checker(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy ORT's checker reads correctly.

    It treats an empty optional input name (Resize's roi) as a dynamic tensor and marks the node unsupported:
    the empty name gets a fixed shape so only real dynamic inputs count. It reads a Transpose's `perm` as
    `attribute[0]` (IndexError when perm is left at its default, reversed axes): such nodes get the explicit
    reversed perm, the same transpose."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.value_info.append(helper.make_tensor_value_info("", onnx.TensorProto.FLOAT, [1]))
    ranks = _ranks(copy)
    for node in _all_nodes(copy.graph):
        if node.op_type == "Transpose" and not any(a.name == "perm" for a in node.attribute):
            rank = ranks.get(node.input[0], 0)  # unknown rank: an empty perm, which the checker's rank test passes
            node.attribute.insert(0, helper.make_attribute("perm", list(range(rank - 1, -1, -1))))
    return copy


def _ranks(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    g = inferred.graph
    out = {}
    for v in [*g.input, *g.value_info, *g.output]:
        t = v.type.tensor_type
        if v.type.HasField("tensor_type") and t.HasField("shape"):
            out[v.name] = len(t.shape.dim)
    out.update({i.name: len(i.dims) for i in g.initializer})
    return out


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for a in node.attribute:
            for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                yield from _all_nodes(sub)


def ep_coverage(model: onnx.ModelProto) -> dict[str, dict]:
    """Per EP: nodes, supported nodes, partitions, unsupported op types and the checker's verdict."""
    from onnxruntime.tools.mobile_helpers import usability_checker as uc

    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    checked = _for_checker(model)
    report: dict[str, dict] = {}
    for label, (kind, config) in EPS.items():
        if kind == "nnapi":
            info = uc.check_nnapi_partitions(checked, require_fixed_input_sizes=True)
        else:
            info = uc.check_coreml_partitions(checked, require_fixed_input_sizes=True, config_filename=config)
        report[label] = {
            "nodes": info.num_nodes,
            "supported_nodes": info.num_supported_nodes,
            "partitions": info.num_partitions,
            "unsupported_ops": sorted(info.unsupported_ops),
            "nodes_unsupported_due_to_dynamic_shape": info.nodes_unsupported_due_to_dynamic_input,
            "suitability": info.suitability().name if info.num_nodes else "NO",
        }
    return report


def coverage_lines(report: dict[str, dict]) -> list[str]:
    lines = []
    for ep, r in report.items():
        pct = 100.0 * r["supported_nodes"] / max(r["nodes"], 1)
        unsupported = f"; unsupported ops: {', '.join(r['unsupported_ops'])}" if r["unsupported_ops"] else ""
        lines.append(
            f"{ep} EP: {r['supported_nodes']}/{r['nodes']} nodes ({pct:.0f}%) in {r['partitions']} partition(s), "
            f"worth trying: {r['suitability']}{unsupported}"
        )
    return lines
