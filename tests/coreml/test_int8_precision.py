"""int8 QDQ graphs on CoreML below iOS17: float activations by default, or emulated int8 rounding that matches
the other targets.

By default the activation Q/DQ pairs are dropped (iOS16 has no int8 activation ops): the program is the float
model with 8-bit weights, in fp16. With the profile's coreml.emulate_int8_activations they stay as float
round/clip arithmetic, which keeps the int8 rounding the other targets have only in fp32 compute:

The graph is a stack of mobilenet_v2 inverted-residual blocks (1x1 expand + ReLU6, depthwise 3x3 + ReLU6, 1x1
project, residual Add) with random weights, quantized by ONNX Runtime's static QDQ quantizer (what edgec's int8
mode runs: int8 activations and per-channel int8 weights). ONNX Runtime running the same QDQ graph is the
reference. In fp16 compute (the ios target's default before the fix) every re-quantization rounds a value that
already carries fp16's error, so a few percent of activations land one int8 step away from ONNX Runtime's, more
with every layer (measured on this graph: 60-65% of output values off by a step or more, cosine 0.9992-0.9995);
in fp32 compute none are (cosine 1.0).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.coreml.helpers import backend, cosine, infer, lower, mil_ops, needs_runtime, reference

SHAPE = [1, 8, 24, 24]


def _block_stack(blocks: int = 4, width: int = 8, expand: int = 4) -> onnx.ModelProto:
    rng = np.random.default_rng(7)
    nodes, inits = [], []

    def conv(x: str, cin: int, cout: int, k: int, group: int, name: str) -> str:
        w = rng.normal(0, np.sqrt(2.0 / (cin // group * k * k)), (cout, cin // group, k, k)).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, f"{name}_w"),
                      numpy_helper.from_array(rng.normal(0, 0.1, cout).astype(np.float32), f"{name}_b")])
        nodes.append(helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [name], name=name, group=group,
                                      pads=[k // 2] * 4))
        return name

    def relu6(x: str) -> str:
        nodes.append(helper.make_node("Clip", [x, "zero", "six"], [f"{x}_relu6"], name=f"{x}_relu6"))
        return f"{x}_relu6"

    inits += [numpy_helper.from_array(np.array(0, np.float32), "zero"),
              numpy_helper.from_array(np.array(6, np.float32), "six")]
    x, hidden = "x", width * expand
    for i in range(blocks):
        h = relu6(conv(x, width, hidden, 1, 1, f"b{i}_expand"))
        h = relu6(conv(h, hidden, hidden, 3, hidden, f"b{i}_depthwise"))
        h = conv(h, hidden, width, 1, 1, f"b{i}_project")
        nodes.append(helper.make_node("Add", [x, h], [f"b{i}_out"], name=f"b{i}_add"))
        x = f"b{i}_out"
    nodes.append(helper.make_node("Identity", [x], ["y"], name="out"))
    graph = helper.make_graph(nodes, "inverted_residuals", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _qdq(model: onnx.ModelProto, tmp_path) -> onnx.ModelProto:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter({"x": f} for f in _images(0, 8))

        def get_next(self):
            return next(self.feeds, None)

    src, out = tmp_path / "float.onnx", tmp_path / "qdq.onnx"
    onnx.save(model, str(src))
    quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    return infer(onnx.load(str(out)))


def _images(seed: int, n: int) -> list[np.ndarray]:
    """Smooth, image-like inputs (random fields upsampled), not white noise."""
    rng = np.random.default_rng(seed)
    small = rng.normal(0, 1, (n, *SHAPE[1:2], SHAPE[2] // 4, SHAPE[3] // 4)).astype(np.float32)
    return [np.kron(s, np.ones((4, 4), np.float32))[None] + 0.1 * rng.normal(0, 1, SHAPE).astype(np.float32)
            for s in small]


@needs_runtime
def test_qdq_graph_defaults_to_float_activations_and_int8_weights(tmp_path):
    """ios target (iOS16), no profile choice: fp16 program, no activation rounding, weights as 8-bit constexprs;
    its output follows the float model, not the QDQ graph."""
    float_model = _block_stack()
    qdq = _qdq(float_model, tmp_path)
    art = lower(qdq, tmp_path, precision=None, ctx_precision="int8")
    assert art.details["compute_precision"] == "fp16" and art.details["int8_activations"] == "float"
    assert any("activations stay float" in n for n in art.notes)
    ops = {op.type for op in mil_ops(art.path)}
    assert "constexpr_affine_dequantize" in ops and not ops & {"round", "quantize", "dequantize"}, ops
    run = backend().runner(art, 1)
    to_float, to_qdq = [], []
    for x in _images(100, 3):
        got = run.run({"x": x})["y"]
        to_float.append(cosine(got, reference(float_model, {"x": x})["y"]))
        to_qdq.append(cosine(got, reference(qdq, {"x": x})["y"]))
    assert min(to_float) > 0.999 and min(to_float) > min(to_qdq), (to_float, to_qdq)


@needs_runtime
def test_emulated_int8_activations_compute_in_fp32_and_keep_int8_rounding(tmp_path):
    qdq = _qdq(_block_stack(), tmp_path)
    # the profile asks for emulation, not for a precision: the QDQ graph itself picks fp32
    art = lower(qdq, tmp_path, precision=None, ctx_precision="int8", emulate_int8=True)
    assert art.details["compute_precision"] == "fp32" and art.details["int8_activations"] == "emulated"
    assert any("int8 activations" in n for n in art.notes)
    step = numpy_helper.to_array(next(t for t in qdq.graph.initializer if t.name == _output_scale(qdq)))
    run = backend().runner(art, 1)
    off, cos = [], []
    for x in _images(100, 3):
        got, want = run.run({"x": x})["y"], reference(qdq, {"x": x})["y"]
        off.append(np.mean(np.abs(got - want) > 0.5 * step))
        cos.append(cosine(got, want))
    assert max(off) < 0.01 and min(cos) > 0.99999, (off, cos)


def _output_scale(qdq: onnx.ModelProto) -> str:
    """The scale of the DequantizeLinear that gives the graph output's int8 grid."""
    producer = {o: n for n in qdq.graph.node for o in n.output}
    n = producer["y"]
    while n.op_type != "DequantizeLinear":
        n = producer[n.input[0]]
    return n.input[1]
