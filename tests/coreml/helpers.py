"""Shared helpers for the CoreML backend tests: contexts, single-op models, the runner if one exists."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.artifact import Artifact, LowerContext
from edgec.config.loader import load_profile, load_target
from edgec.lower.backend import get_backend
from edgec.runtimes.host_ort import OrtRunner

HAVE_RUNTIME = sys.platform == "darwin" or importlib.util.find_spec("edgec.runtimes.mil_interp") is not None
needs_runtime = pytest.mark.skipif(not HAVE_RUNTIME, reason="no CoreML runtime here and the MIL interpreter has not landed")


def backend():
    return get_backend("coreml")


def context(tmp_path: Path, name: str = "model", precision: str | None = "fp32", target: str = "ios",
            profile: str = "iphone-15-pro", ctx_precision: str = "fp32", emulate_int8: bool = False,
            **target_overrides) -> LowerContext:
    """`precision`: the compute precision wanted, set as the profile's coreml.compute_precision (None: the
    target's default); `ctx_precision`: what the quantize stage decided (LowerContext.precision);
    `emulate_int8`: the profile's coreml.emulate_int8_activations."""
    t = load_target(target)
    if target_overrides:
        t = t.model_copy(update=target_overrides)
    prof = load_profile(profile)
    prof = prof.model_copy(update={"coreml": prof.coreml.model_copy(
        update={"compute_precision": precision, "emulate_int8_activations": emulate_int8})})
    out = tmp_path / f"stage-{name}-{precision}-{ctx_precision}"
    out.mkdir(parents=True, exist_ok=True)
    return LowerContext(target=t, profile=prof, model_name=name, staging_dir=out,
                        source_sha256="0" * 64, precision=ctx_precision)


def lower(model: onnx.ModelProto, tmp_path: Path, **kw) -> Artifact:
    return backend().lower(model, context(tmp_path, **kw))


def single_op(op: str, inputs: dict[str, list[int]], attrs: dict | None = None,
              inits: dict[str, np.ndarray] | None = None, n_outputs: int = 1, opset: int = 17,
              input_types: dict[str, int] | None = None, extra_inputs: list[str] | None = None) -> onnx.ModelProto:
    """One node; `inputs` are graph inputs (name -> shape), `inits` constant inputs, in that order
    unless `extra_inputs` gives the node's full input list ("" for an absent optional input)."""
    inits = inits or {}
    input_types = input_types or {}
    node_inputs = extra_inputs if extra_inputs is not None else list(inputs) + list(inits)
    outputs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op, node_inputs, outputs, name=f"the_{op.lower()}", **(attrs or {}))
    graph = helper.make_graph(
        [node], f"{op}_test",
        [helper.make_tensor_value_info(k, input_types.get(k, TensorProto.FLOAT), s) for k, s in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return infer(model)


def infer(model: onnx.ModelProto) -> onnx.ModelProto:
    """Shape inference, with the graph outputs' types filled in (the pipeline hands backends this)."""
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    vi = {v.name: v for v in model.graph.value_info}
    for out in model.graph.output:
        if out.name in vi:
            out.CopyFrom(vi[out.name])
    return model


def feeds_for(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for v in model.graph.input:
        if v.name in inits:
            continue
        shape = [d.dim_value for d in v.type.tensor_type.shape.dim]
        dtype = helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[v.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[v.name] = rng.integers(0, 3, size=shape).astype(dtype)
    return feeds


def reference(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return OrtRunner(model, threads=1).run(feeds)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / denom) if denom else float(np.array_equal(a, b))


def mil_spec(path: Path):
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.ParseFromString((path / "Data" / "com.apple.CoreML" / "model.mlmodel").read_bytes())
    return spec


def mil_ops(path: Path) -> list:
    spec = mil_spec(path)
    blocks = spec.mlProgram.functions["main"].block_specializations
    (block,) = blocks.values()
    return list(block.operations)
