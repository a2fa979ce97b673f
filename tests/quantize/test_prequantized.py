"""Models that arrive quantized (issue 19, scope 6): a QDQ model (what PyTorch's PTQ/QAT export and ONNX Runtime's
quantize_static write) and a QOperator model (QLinearConv / QLinearMatMul) are lowered with their OWN scales on
every target, also under --quantize int8 (which used to re-quantize the QDQ graph and crash in ONNX Runtime's
quantizer); a precision that would have to undo the quantization is refused with a config error."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec import api
from edgec.errors import ConfigError


class _Reader:
    def __init__(self):
        self.it = iter([{"x": np.random.default_rng(i).normal(0, 1, (1, 3, 16, 16)).astype(np.float32)}
                        for i in range(8)])

    def get_next(self):
        return next(self.it, None)


def _float_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (16, 3, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (16, 10)).astype(np.float32), "wf")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat"),
             helper.make_node("MatMul", ["f", "wf"], ["y"], name="fc")]
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.fixture(scope="module", params=["qdq", "qoperator"])
def quantized(request, tmp_path_factory):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    tmp = tmp_path_factory.mktemp(request.param)
    src, dst = tmp / "float.onnx", tmp / f"{request.param}.onnx"
    onnx.save(_float_model(), str(src))
    fmt = QuantFormat.QDQ if request.param == "qdq" else QuantFormat.QOperator
    quantize_static(str(src), str(dst), _Reader(), quant_format=fmt, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=["Conv", "MatMul"])
    ops = {n.op_type for n in onnx.load(str(dst)).graph.node}
    assert ({"QLinearConv", "QLinearMatMul"} <= ops) if request.param == "qoperator" else ("QLinearConv" not in ops)
    return request.param, dst, tmp


def test_a_quantized_model_is_lowered_with_its_own_scales_under_int8(quantized):
    kind, path, tmp = quantized
    outcome = api.build(str(path), api.BuildOptions(target="all", out_dir=tmp / "int8", quantize="int8",
                                                    calibration="random", latency="off"))
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    # validated against ONNX Runtime on the quantized model itself: the same scales, so int8 matches closely
    assert outcome.ok, [a.numerics.message for a in outcome.result.artifacts]
    for a in outcome.result.artifacts:
        assert any("arrived quantized" in n and "not re-quantized" in n for n in a.artifact.notes), a.artifact.notes
    tfl = next(a for a in outcome.result.artifacts if a.artifact.target == "android")
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(str(tfl.final_path))
    tensors = it.get_tensor_details()
    conv = next(op for op in it._get_ops_details() if op["op_name"] == "CONV_2D")
    assert tensors[conv["inputs"][0]]["dtype"] == np.int8  # an int8 kernel, on the model's scales


def test_a_quantized_model_is_refused_for_a_precision_that_would_undo_it(quantized):
    kind, path, tmp = quantized
    with pytest.raises(ConfigError, match="already quantized"):
        api.build(str(path), api.BuildOptions(target="ort-mobile", out_dir=tmp / "dyn", quantize="int8-dynamic",
                                              latency="off"))
