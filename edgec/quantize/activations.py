"""Run a model with every intermediate float tensor exposed as an output (for overflow and sensitivity checks)."""

from __future__ import annotations

from typing import Iterable

import numpy as np
import onnx
import onnxruntime as ort


def float_tensors(model: onnx.ModelProto) -> list[str]:
    """Names of node outputs that shape inference types as float (what int8/fp16 can change)."""
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    types = {v.name: v.type.tensor_type.elem_type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    names = []
    for node in model.graph.node:
        for out in node.output:
            if out and types.get(out) == onnx.TensorProto.FLOAT:
                names.append(out)
    return names


def session_with_outputs(model: onnx.ModelProto, names: Iterable[str], threads: int = 1) -> ort.InferenceSession:
    """A session on a copy of `model` whose outputs are its own outputs plus `names`. No graph optimizations,
    so every named tensor still exists."""
    work = onnx.ModelProto()
    work.CopyFrom(model)
    have = {o.name for o in work.graph.output}
    for name in names:
        if name not in have:
            work.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
            have.add(name)
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = threads
    return ort.InferenceSession(work.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run_named(sess: ort.InferenceSession, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feed)))
