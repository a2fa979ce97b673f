"""Build small ONNX graphs, lower them to TFLite, run LiteRT and ONNX Runtime on the same inputs."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from edgec.lower.tflite.convert import convert
from edgec.runtimes.host_litert import LiteRTRunner


def single_op(op: str, in_shapes: dict[str, list[int]], out_shape: list[int] | None = None,
              consts: dict[str, np.ndarray] | None = None, inputs: list[str] | None = None,
              opset: int = 17, n_out: int = 1, **attrs) -> onnx.ModelProto:
    """One-node model; `inputs` orders graph inputs and constants (default: in_shapes then consts)."""
    consts = consts or {}
    names = inputs or [*in_shapes, *consts]
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, name=f"{op.lower()}_node", **attrs)
    graph = helper.make_graph(
        [node], "t",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in in_shapes.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, out_shape) for o in outs],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return onnx.shape_inference.infer_shapes(model)


def chain(nodes: list, in_shapes: dict[str, list[int]], outputs: list[str],
          consts: dict[str, np.ndarray] | None = None, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v) for k, v in in_shapes.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in (consts or {}).items()])
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]))


def run_both(model: onnx.ModelProto, seed: int = 0, fp16: bool = False, threads: int = 1, **kw):
    """(reference outputs, LiteRT outputs, Converted) on seeded N(0,1) inputs."""
    res = convert(model, fp16=fp16, **kw)
    assert not res.problems, res.problems
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        if vi.name in {t.name for t in model.graph.initializer}:
            continue
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.tflite"
        path.write_bytes(res.data)
        got = LiteRTRunner(path, threads=threads).run(feeds)
    return ref, got, res


def assert_close(model: onnx.ModelProto, atol: float = 1e-4, rtol: float = 1e-4, **kw):
    ref, got, res = run_both(model, **kw)
    assert set(ref) == set(got), (set(ref), set(got))
    for k in ref:
        assert got[k].shape == ref[k].shape, (k, got[k].shape, ref[k].shape)
        np.testing.assert_allclose(got[k], ref[k], atol=atol, rtol=rtol, err_msg=k)
    return res


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))
