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


def _without_empty_input_false_positive(model: onnx.ModelProto) -> onnx.ModelProto:
    """The checker treats an empty optional input name (Resize's roi) as a dynamic tensor and marks the node
    unsupported. Give the empty name a fixed shape so only real dynamic inputs count."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.value_info.append(helper.make_tensor_value_info("", onnx.TensorProto.FLOAT, [1]))
    return copy


def ep_coverage(model: onnx.ModelProto) -> dict[str, dict]:
    """Per EP: nodes, supported nodes, partitions, unsupported op types and the checker's verdict."""
    from onnxruntime.tools.mobile_helpers import usability_checker as uc

    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    checked = _without_empty_input_false_positive(model)
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
