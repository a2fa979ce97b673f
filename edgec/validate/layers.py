"""The first divergent layer: every intermediate tensor of the reference and of the artifact on one input,
matched by name, walked in the ONNX graph's order; the first whose cosine falls below the gate is reported with
its op and neighbours (`edgec validate --layers`, and a failed numerics check).

Where the tensors come from:
- reference: ONNX Runtime on the original model with every float tensor made a graph output;
- .ort: the file's own graph read back as ONNX (runners.ort_exact.ort_to_onnx), same treatment;
- .tflite: LiteRT with experimental_preserve_all_tensors; edgec names a tensor after the ONNX tensor it holds,
  with `_nhwc__N` / `_t__N` when it holds it channels-last (compared after the same permutation);
- .mlpackage: the MIL interpreter keeping every var; vars are named after the ONNX tensors (`_cast_fp16` added
  by coremltools' fp16 pass).
Tensors a lowering fused away (a Conv's output before its fused Relu) have no counterpart and are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from edgec.graph.view import consumers, producers
from edgec.runtimes.numerics import cosine

# what a lowering appends to the ONNX name: a channels-last copy (TFLite), coremltools' fp16 cast of a var
_LAYOUT_SUFFIX = re.compile(r"((_nhwc|_nchw|_t)__\d+|_cast_fp(16|32))$")
_PERMS = {4: [(0, 2, 3, 1), (0, 3, 1, 2)], 3: [(0, 2, 1)], 5: [(0, 2, 3, 4, 1)]}


@dataclass
class Divergence:
    tensor: str
    op: str
    node: str
    cosine: float
    max_abs: float
    inputs: list[str] = field(default_factory=list)  # producer ops of the node's inputs: "Conv 'conv1'"
    consumers: list[str] = field(default_factory=list)
    compared: int = 0  # tensors matched before (and including) this one

    def describe(self) -> str:
        around = (f"; fed by {', '.join(self.inputs) or 'graph inputs'}; read by {', '.join(self.consumers) or '-'}")
        return (f"first divergent tensor '{self.tensor}', output of {self.op} '{self.node}': cosine "
                f"{self.cosine:.6f}, max-abs {self.max_abs:.3g} (after {self.compared - 1} matching tensor(s)){around}")


def with_all_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose every float node output is also a graph output."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    try:
        probe = onnx.shape_inference.infer_shapes(probe, strict_mode=False)
    except Exception:  # noqa: BLE001  (read-back .ort graphs hold contrib ops shape inference may not know)
        pass
    known = {v.name: v.type.tensor_type.elem_type for v in list(probe.graph.value_info) + list(probe.graph.output)}
    have = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in have and known.get(name, onnx.TensorProto.FLOAT) in (
                    onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
                probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
                have.add(name)
    return probe


def ort_tensors(model: onnx.ModelProto | bytes, feed: dict, level: str = "disable") -> dict[str, np.ndarray]:
    from edgec.runtimes.host_ort import OrtRunner

    if isinstance(model, bytes):
        model = onnx.load_model_from_string(model)
    return OrtRunner(with_all_outputs(model), threads=1, level=level, name="onnxruntime (all tensors)").run(feed)


def artifact_tensors(fmt: str, path: Path, feed: dict, details: dict | None = None) -> dict[str, np.ndarray]:
    """Every intermediate tensor the artifact computes on `feed`, by the runtime's tensor name."""
    if fmt == "ort":
        from edgec.runtimes.ort_exact import (
            exact_twin,
            ort_to_onnx,
            u8s8_saturates,
        )

        twin = ort_to_onnx(Path(path).read_bytes())
        if u8s8_saturates():
            twin = exact_twin(twin)[0]
        return ort_tensors(twin, feed)
    if fmt == "tflite":
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        from edgec.runtimes.host_litert import LiteRTRunner

        # the reference kernels (no XNNPACK: a delegate keeps its intermediate tensors to itself), every tensor kept
        runner = LiteRTRunner(path, xnnpack=False)
        runner.interp = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                                    experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        runner.interp.allocate_tensors()
        runner.signature = runner.interp.get_signature_runner("serving_default")
        runner.run(feed)  # feeds in the ONNX layout and dtype, as the signature takes them
        out = {}
        for d in runner.interp.get_tensor_details():
            try:
                value = runner.interp.get_tensor(d["index"])
            except ValueError:  # a tensor LiteRT did not keep (constants folded away, scratch)
                continue
            scale, zero = d.get("quantization", (0.0, 0))
            if value.dtype.kind in "iu" and scale:  # int8 activations: compared as the values they stand for
                out[d["name"]] = (value.astype(np.float32) - zero) * np.float32(scale)
            elif value.dtype.kind == "f":
                out[d["name"]] = value
        return out
    if fmt == "coreml":
        from edgec.runtimes.coreml import name_map_of
        from edgec.runtimes.metadata import NameMap
        from edgec.runtimes.mil_interp import MilInterpreterRunner

        raw = (details or {}).get("name_map")
        nm = NameMap.from_json(raw) if raw else name_map_of(Path(path))
        runner = MilInterpreterRunner(Path(path))
        feeds = {nm.inputs.get(k, k): np.asarray(v).astype(np.int32) if np.asarray(v).dtype.kind in "iu" else v
                 for k, v in feed.items()}
        return runner.run(feeds, keep_all=True)
    raise ValueError(fmt)


def _align(ref: np.ndarray, got: np.ndarray) -> np.ndarray | None:
    """`ref` in the artifact tensor's layout (a channels-last permutation), or None when they do not match."""
    got = np.asarray(got)
    if got.size != ref.size:
        return None
    if got.shape == ref.shape:
        return ref
    for perm in _PERMS.get(ref.ndim, []):
        if tuple(ref.shape[p] for p in perm) == got.shape:
            return ref.transpose(perm)
    return ref.reshape(got.shape) if got.ndim != ref.ndim else None


def _index(tensors: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    by = {}
    for name, value in tensors.items():
        for key in {name, _LAYOUT_SUFFIX.sub("", name), re.sub(r"[^A-Za-z0-9_]", "_", name)}:
            by.setdefault(key, []).append(value)
    return by


def first_divergence(model: onnx.ModelProto, ref: dict[str, np.ndarray], got: dict[str, np.ndarray],
                     min_cosine: float) -> Divergence | None:
    """Walk the ONNX nodes in order; the first output whose artifact counterpart is below `min_cosine`."""
    producer, readers = producers(model), consumers(model)
    index = _index(got)
    compared = 0

    def label(n):
        return f"{n.op_type} '{n.name or n.output[0]}'"

    for node in model.graph.node:
        for name in node.output:
            r = ref.get(name)
            if r is None or np.asarray(r).dtype.kind != "f":
                continue
            r = np.asarray(r, np.float64)
            cands = index.get(name) or index.get(re.sub(r"[^A-Za-z0-9_]", "_", name)) or []
            for g in cands:
                aligned = _align(r, g)
                if aligned is None:
                    continue
                compared += 1
                g = np.asarray(g, np.float64)
                cos = cosine(aligned, g)
                if cos < min_cosine:
                    return Divergence(
                        tensor=name, op=node.op_type, node=node.name or name, cosine=cos,
                        max_abs=float(np.nanmax(np.abs(aligned - g))) if g.size else 0.0,
                        inputs=[label(producer[i]) for i in node.input if i in producer],
                        consumers=[label(c) for c in readers.get(name, [])], compared=compared)
                break
    return None


def find_divergence(model: onnx.ModelProto, fmt: str, path: Path, feed: dict, min_cosine: float,
                    details: dict | None = None) -> Divergence | None:
    return first_divergence(model, ort_tensors(model, feed), artifact_tensors(fmt, path, feed, details), min_cosine)


def explain_failure(model: onnx.ModelProto, artifact, feed: dict, min_cosine: float) -> str:
    """One sentence for a failed check: the first divergent tensor, or why it could not be found."""
    from edgec.errors import EdgecError

    try:
        d = find_divergence(model, artifact.format, Path(artifact.path), feed, min_cosine, artifact.details)
    except (EdgecError, ValueError, RuntimeError) as e:  # the search is a diagnosis: never fail the check on it
        return f"first divergent layer not found ({type(e).__name__}: {str(e)[:200]})"
    if d is None:
        return "no intermediate tensor diverges below the gate (the error builds up over many layers)"
    return d.describe()
