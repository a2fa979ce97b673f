"""Helpers for the MIL interpreter tests: save a Builder program as a real .mlpackage, run it through
the interpreter, and run the same math as a one-node ONNX graph in ONNX Runtime (the reference)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import coremltools as ct
from coremltools.converters.mil import Builder as mb  # noqa: F401  (re-exported for the tests)

from edgec.runtimes.mil_interp import MilInterpreterRunner

_counter = itertools.count()

PRECISION = {"fp32": ct.precision.FLOAT32, "fp16": ct.precision.FLOAT16}


def save(prog, tmp_path: Path, precision: str = "fp32", target=ct.target.iOS16, passes=None) -> Path:
    kw = {} if passes is None else {"pass_pipeline": passes}
    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=target,
                       compute_precision=PRECISION[precision], **kw)
    path = tmp_path / f"m{next(_counter)}.mlpackage"
    model.save(str(path))
    return path


def interp(prog, feeds: dict, tmp_path: Path, **kw) -> tuple[list[np.ndarray], MilInterpreterRunner]:
    runner = MilInterpreterRunner(save(prog, tmp_path, **kw))
    outs = runner.run(feeds)
    return [outs[n] for n in runner.output_names], runner


def onnx_ref(op: str, inputs: dict[str, np.ndarray], attrs: dict | None = None,
             inits: dict[str, np.ndarray] | None = None, node_inputs: list[str] | None = None,
             n_outputs: int = 1, opset: int = 19, out_type=TensorProto.FLOAT) -> list[np.ndarray]:
    """Run one ONNX node in ONNX Runtime. `inputs` are fed, `inits` are initializers."""
    inits = inits or {}
    node_inputs = node_inputs if node_inputs is not None else list(inputs) + list(inits)
    outs = [f"out{i}" for i in range(n_outputs)]
    graph = helper.make_graph(
        [helper.make_node(op, node_inputs, outs, **(attrs or {}))], "ref",
        [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, out_type, None) for o in outs],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(outs, inputs)


def rand(*shape, seed=0, scale=1.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
