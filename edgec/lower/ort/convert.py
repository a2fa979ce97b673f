"""ONNX -> ORT format (.ort) in-process, plus the reduced-operator config a custom minimal ORT build needs."""

from __future__ import annotations

import re
from pathlib import Path

import onnx
import onnxruntime as ort

from edgec.errors import LoweringError, UnsupportedOp
from edgec.lower.ort.canonical import canonicalize_ort
from edgec.runtimes.host_ort import KEEPS_FLOAT_NODES_FLOAT

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
    disabled = KEEPS_FLOAT_NODES_FLOAT + (["NchwcTransformer"] if level == "all" else [])
    try:
        ort.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"], disabled_optimizers=disabled
        )
    except Exception as e:  # ORT's Fail / InvalidGraph / NotImplemented
        refused = ort_refusal(model, str(e))
        if refused is not None:
            raise UnsupportedOp(target, [refused]) from None
        raise LoweringError(f"ONNX Runtime could not convert the model to ORT format: {e}") from None
    if not out_path.is_file():
        raise LoweringError(f"ONNX Runtime did not write the ORT format model to {out_path}.")
    out_path.write_bytes(canonicalize_ort(out_path.read_bytes()))  # ORT's resolver order varies run to run


# ORT status codes that mean "ONNX Runtime cannot run this node" rather than "the graph is broken":
# no kernel for the op/type/opset, a kernel that rejects its attributes or inputs, a value type it cannot hold.
_REFUSING = ("NOT_IMPLEMENTED", ": FAIL :", "RUNTIME_EXCEPTION", "INVALID_ARGUMENT")


def ort_refusal(model: onnx.ModelProto, text: str) -> tuple[str, str, str] | None:
    """(op, node, why) when ORT's error says it cannot run a node of `model` (a clear refusal naming ORT's own
    reason and what to do); None when the error is something else (a broken graph: our bug or the model's)."""
    if not any(code in text for code in _REFUSING):
        return None
    node = _named_node(model, text)
    op, name = (node.op_type, node.name) if node is not None else ("?", "?")
    if "Could not find an implementation" in text or "Failed to find kernel" in text:
        version = re.search(r"for (\w+)\((\d+)\)", text)
        opset = f"{version.group(1)}({version.group(2)})" if version else op
        ends = sorted({int(v) for v in re.findall(r"kernel_end_version: (\d+)", text)} - {2147483647})
        known = f"; its kernels end at version {ends[-1]}" if ends else ""
        why = (f"ONNX Runtime {ort.__version__} has no CPU kernel for {opset} with these input types{known} "
               "(an ORT Mobile build has no more): export at an opset/type it implements, or pick another target")
    else:
        why = (f"ONNX Runtime {ort.__version__} itself rejects this node (change it as ORT's message says, or "
               f"pick another target): {_ort_message(text)}")
    return op, name, why


def _named_node(model: onnx.ModelProto, text: str):
    """The node ORT's message is about: by name when it gives one, else by op type (e.g. deep_cpu_gru -> GRU)."""
    nodes = list(model.graph.node)
    m = re.search(r"(?:node with name|Name:|node:)\s*'([^']*)'", text)
    if m and m.group(1):
        hit = [n for n in nodes if n.name == m.group(1)]
        if hit:
            return hit[0]
    flat = re.sub(r"[^a-z0-9]", "", text.lower())
    for n in sorted(nodes, key=lambda n: -len(n.op_type)):
        if n.op_type.lower() in flat:
            return n
    return nodes[0] if nodes else None


def _ort_message(text: str) -> str:
    """ORT's own sentence without its status prefix and C++ source location."""
    text = text.split("Status Message:", 1)[-1]
    text = text.split("was false.", 1)[-1]  # ORT_ENFORCE's condition text precedes its sentence
    text = re.sub(r"^.*?\] :[^:]*: [A-Z_]+ :", "", text.strip(), count=1)
    text = re.sub(r"\S+\.(?:cc|h|cpp):\d+", "", text)  # source file:line
    text = " ".join(w for w in text.split() if "::" not in w and not re.search(r"[&<>]", w))  # C++ signatures
    text = text.replace("Exception during initialization:", "").strip(" .")
    return text[:200]


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
