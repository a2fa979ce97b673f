"""Models that arrive quantized (QDQ from PyTorch's PTQ/QAT or ONNX Runtime's tools; QOperator, which the
qoperator_to_qdq graph pass has already turned into QDQ): found here, so the quantize stage keeps their scales."""

from __future__ import annotations

import onnx

from edgec.errors import ConfigError

# ops that only a quantized graph has (QOperator forms that the graph pass could not rewrite included)
QUANTIZED_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "MatMulInteger",
                 "ConvInteger", "DynamicQuantizeLinear", "QGemm", "QLinearAdd", "QLinearMul", "QAttention",
                 "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "MatMulNBits"}


def quantized_nodes(model: onnx.ModelProto) -> dict[str, int]:
    """op type -> count of the quantization ops the graph already has (empty: a float model)."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def check_mode(mode: str, arrived: dict[str, int]) -> None:
    """int8 on a quantized model means "lower it as quantized"; other precisions would have to undo it."""
    if mode == "int8":
        return
    ops = ", ".join(f"{op} x{k}" for op, k in sorted(arrived.items()))
    raise ConfigError(
        f"quantize.mode {mode} asked, but the model is already quantized ({ops}). edgec lowers a quantized model "
        f"with its own scales: build it with --quantize int8 (or none), or give the float model to quantize it "
        f"as {mode}.")
