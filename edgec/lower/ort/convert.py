"""ONNX -> ORT format (.ort) in-process, plus the reduced-operator config a custom minimal ORT build needs."""

from __future__ import annotations

from pathlib import Path

import onnx
import onnxruntime as ort

from edgec.errors import LoweringError, UnsupportedOp
from edgec.lower.ort.canonical import canonicalize_ort

LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def to_ort_format(model: onnx.ModelProto, out_path: Path, level: str, style: str, target: str) -> None:
    """What onnxruntime.tools.convert_onnx_models_to_ort does, in-process and with errors we can name."""
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = LEVELS[level]
    so.optimized_model_filepath = str(out_path)
    so.add_session_config_entry("session.save_model_format", "ORT")
    if style == "runtime":
        so.add_session_config_entry("optimization.minimal_build_optimizations", "save")
    # NCHWc layouts are x86-only: an .ort with them does not load on ARM devices
    disabled = ["NchwcTransformer"] if level == "all" else None
    try:
        ort.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"], disabled_optimizers=disabled
        )
    except Exception as e:  # ORT's Fail / InvalidGraph / NotImplemented
        text = str(e)
        if "NOT_IMPLEMENTED" in text or "Could not find an implementation" in text:
            raise UnsupportedOp(target, [_parse_not_implemented(text)]) from None
        raise LoweringError(f"ONNX Runtime could not convert the model to ORT format: {text}") from None
    if not out_path.is_file():
        raise LoweringError(f"ONNX Runtime did not write the ORT format model to {out_path}.")
    out_path.write_bytes(canonicalize_ort(out_path.read_bytes()))  # ORT's resolver order varies run to run


def _parse_not_implemented(text: str) -> tuple[str, str, str]:
    # "... Could not find an implementation for Foo(13) node with name 'bar'"
    op, name = "?", "?"
    if "implementation for " in text:
        tail = text.split("implementation for ", 1)[1]
        op = tail.split("(", 1)[0].strip()
        if "name '" in tail:
            name = tail.split("name '", 1)[1].split("'", 1)[0]
    return op, name, "ONNX Runtime has no CPU kernel for this op/type/opset"


def write_reduced_op_config(ort_path: Path, config_path: Path, final_name: str) -> bool:
    """The `domain;opset;ops` file that --include_ops_by_config takes for a minimal ORT build.

    Returns whether the config carries per-op type reduction. ORT's type-reduction tooling has no entry for
    some element types (int4/int2, float8) and raises KeyError; the config without type reduction is still
    valid for a minimal build (only bigger), so we fall back to it rather than fail the build.
    ORT's generator records the (staging) file path in a comment; we write the final file name instead so
    two builds are byte-identical.
    """
    import logging

    from onnxruntime.tools.ort_format_model import create_config_from_models

    logging.getLogger("ort_format_model.utils").setLevel(logging.WARNING)  # its INFO line names our temp folder
    try:
        create_config_from_models([ort_path], config_path, enable_type_reduction=True)
        reduced = True
    except KeyError:
        create_config_from_models([ort_path], config_path, enable_type_reduction=False)
        reduced = False
    lines = config_path.read_text().splitlines()
    lines = [f"# - {final_name}" if line.startswith("# - ") else line for line in lines]
    config_path.write_text("\n".join(lines) + "\n")
    return reduced
