"""Size limits, checked from shapes before anything allocates a tensor.

A fuzzed or mistyped dim (2**40) would otherwise surface as a MemoryError deep in numpy or ONNX Runtime. Every
input, initializer and shape-inferred intermediate is measured from its dims and dtype; over a limit is a
ShapeError naming the tensor, its shape and its size.

Defaults are sized for phones and the formats: one tensor at most 1 GiB (a phone app gets a few GiB in all),
at most 2**31 - 1 elements (TFLite and ORT Mobile index tensors with int32), weights at most 2 GiB (a protobuf
message and a TFLite flatbuffer both stop at 2 GiB). EDGEC_MAX_TENSOR_MB and EDGEC_MAX_WEIGHTS_MB override them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import onnx
from onnx import helper

from edgec.errors import ShapeError

GIB = 1 << 30
FORMAT_LIMIT = 2 * GIB  # protobuf messages and TFLite flatbuffers
MAX_ELEMENTS = (1 << 31) - 1  # int32 element indices in TFLite / ORT Mobile kernels


@dataclass(frozen=True)
class Limits:
    max_tensor_bytes: int = GIB
    max_elements: int = MAX_ELEMENTS
    max_weights_bytes: int = FORMAT_LIMIT

    @classmethod
    def from_env(cls) -> "Limits":
        def mb(var: str, default: int) -> int:
            raw = os.environ.get(var, "").strip()
            try:
                return int(float(raw) * (1 << 20)) if raw else default
            except ValueError:
                from edgec.errors import UsageError

                raise UsageError(f"{var}={raw!r}: give a size in MB, e.g. {var}=512.") from None
        return cls(max_tensor_bytes=mb("EDGEC_MAX_TENSOR_MB", GIB),
                   max_weights_bytes=min(mb("EDGEC_MAX_WEIGHTS_MB", FORMAT_LIMIT), FORMAT_LIMIT))


def itemsize(elem_type: int) -> int:
    """Bytes per element of an ONNX dtype; 1 for the ones numpy has no fixed size for (strings, undefined)."""
    try:
        return max(1, helper.tensor_dtype_to_np_dtype(elem_type).itemsize)
    except (KeyError, TypeError, ValueError):
        return 1


def _human(n: int) -> str:
    for unit, size in (("TiB", 1 << 40), ("GiB", GIB), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _check(kind: str, name: str, dims: list[int], elem_type: int, model_path: str, limits: Limits) -> int:
    count = math.prod(dims)
    size = count * itemsize(elem_type)
    if count > limits.max_elements or size > limits.max_tensor_bytes:
        raise ShapeError(
            f"{model_path}: {kind} '{name}' of shape {dims} would hold {count:,} elements ({_human(size)}), over "
            f"edgec's limit of {limits.max_elements:,} elements / {_human(limits.max_tensor_bytes)} per tensor "
            f"(phone memory; TFLite and ORT Mobile index tensors with int32). Check the shape given with "
            f"--input-shape or in the profile; raise the byte limit with EDGEC_MAX_TENSOR_MB if you mean it."
        )
    return size


def static_dims(value: onnx.ValueInfoProto) -> list[int] | None:
    """The dims when every one is known, else None (a symbolic dim has no size to check yet)."""
    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        return None
    dims = []
    for d in value.type.tensor_type.shape.dim:
        if not d.HasField("dim_value") or d.dim_value < 0:
            return None
        dims.append(d.dim_value)
    return dims


def check_initializers(model: onnx.ModelProto, model_path: str, limits: Limits | None = None) -> None:
    """Initializers by their dims (before external data is read), and all weights together."""
    limits = limits or Limits.from_env()
    total = 0
    for t in model.graph.initializer:
        total += _check("initializer", t.name, list(t.dims), t.data_type, model_path, limits)
    if total > limits.max_weights_bytes:
        raise ShapeError(
            f"{model_path}: the weights add up to {_human(total)}, over the {_human(limits.max_weights_bytes)} a "
            f"protobuf model and a TFLite flatbuffer can hold. Quantize or split the model before export."
        )


def check_tensors(model: onnx.ModelProto, model_path: str, limits: Limits | None = None) -> None:
    """Inputs, outputs and every intermediate shape inference could size."""
    limits = limits or Limits.from_env()
    graph = model.graph
    for kind, values in (("input", graph.input), ("intermediate tensor", graph.value_info), ("output", graph.output)):
        for v in values:
            dims = static_dims(v)
            if dims is not None:
                _check(kind, v.name, dims, v.type.tensor_type.elem_type, model_path, limits)


def check_axis_attributes(model: onnx.ModelProto, model_path: str) -> None:
    """An `axis` attribute no ONNX op accepts for its input's rank r (every op's range lies within [-r-1, r]; a
    fuzzed 2**33 is not caught by the ONNX checker) is a model error, before a lowering builds range(axis).
    A scalar input is skipped (a per-tensor QuantizeLinear ignores its axis). A Transpose's perm must permute
    its input's axes."""
    from edgec.errors import ModelLoadError

    graph = model.graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.input, *graph.value_info, *graph.output]
             if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape")}
    ranks.update({t.name: len(t.dims) for t in graph.initializer})
    for n in graph.node:
        rank = ranks.get(n.input[0]) if n.input else None
        for a in n.attribute:
            if n.op_type == "Transpose" and a.name == "perm" and rank is not None \
                    and sorted(a.ints) != list(range(rank)):
                raise ModelLoadError(
                    f"{model_path}: node '{n.name}' (Transpose) has perm={list(a.ints)}, which is not a "
                    f"permutation of the {rank} axes of its input '{n.input[0]}'. Re-export the model; the file "
                    f"may be damaged."
                )
            if a.name == "axis" and a.type == onnx.AttributeProto.INT and rank and not -rank - 1 <= a.i <= rank:
                raise ModelLoadError(
                    f"{model_path}: node '{n.name}' ({n.op_type}) has axis={a.i}, outside any valid range for its "
                    f"rank-{rank} input '{n.input[0]}' (at most [{-rank - 1}, {rank}]). Re-export the model; the "
                    f"file may be damaged."
                )


def check_inferred(model: onnx.ModelProto, model_path: str, limits: Limits | None = None) -> None:
    """Shape inference (no tensor data is computed beyond small shape vectors) and then check_tensors on the
    result, so a huge intermediate is caught before constant folding or ONNX Runtime allocates it; and axis
    attributes against the inferred ranks."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # inference problems are reported by the stages that need the shapes
        inferred = model
    check_tensors(inferred, model_path, limits)
    check_axis_attributes(inferred, model_path)
