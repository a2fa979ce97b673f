"""A float Conv between Q/DQ pairs stays float in every ONNX Runtime session and .ort conversion edgec makes.

ONNX Runtime (>= 1.20) would quantize its weights per-tensor int8 at load (its WeightBiasQuantization optimizer),
which is what a float island, a `keep_float` node or the input layer exist to avoid. The check: the optimized
session and the .ort file give what the unoptimized Q/DQ graph (the reference arithmetic) gives."""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec.lower.ort.convert import to_ort_format
from edgec.runtimes.host_ort import OrtRunner

OUT_SCALE = 0.001  # the output's int8 step: channels 1-3 (~0.1, ~0.01, ~0.001) keep their levels


def _float_conv_between_qdq() -> onnx.ModelProto:
    """Q/DQ -> Conv with float weights whose output channels are 1, 1e-1, 1e-2, 1e-3 in size -> Q/DQ. One
    per-tensor int8 scale for those weights rounds channel 2 and 3 to a few levels or zero."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((4, 4, 1, 1)) * np.array([1, 1e-1, 1e-2, 1e-3])[:, None, None, None]).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.array(0.02, np.float32), "s_in"),
             numpy_helper.from_array(np.array(OUT_SCALE, np.float32), "s_out"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s_in", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s_in", "z"], ["xd"]),
             helper.make_node("Conv", ["xd", "w"], ["c"], name="float_conv"),
             helper.make_node("QuantizeLinear", ["c", "s_out", "z"], ["cq"]),
             helper.make_node("DequantizeLinear", ["cq", "s_out", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_optimized_session_and_ort_file_keep_the_float_conv_float(tmp_path: Path):
    model = _float_conv_between_qdq()
    x = {"x": np.random.default_rng(1).standard_normal((1, 4, 8, 8)).astype(np.float32)}
    reference = OrtRunner(model, level="disable").run(x)["y"]
    to_ort_format(model, tmp_path / "m.ort", "all", "fixed", "ort-mobile")
    for got in (OrtRunner(model, level="all").run(x)["y"], OrtRunner(tmp_path / "m.ort", level="disable").run(x)["y"]):
        # at most one output step apart (kernels may round a tie differently); per-tensor int8 weights are
        # several steps off on channel 2
        assert np.abs(got[0, 1:] - reference[0, 1:]).max() <= OUT_SCALE * 1.01
