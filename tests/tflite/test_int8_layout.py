"""Issue 19 "int8 layout and boundaries" on every model of the zoo built int8 for TFLite: the int8 file has no more
TRANSPOSE ops than the fp32 file; a QUANTIZE float -> int8 only at a model input or where a float island ends (one
per such tensor); a QUANTIZE int8 -> int8 only between different params; no DEQUANTIZE -> QUANTIZE pair between two
int8 kernels. And the int8 file still computes what ONNX Runtime computes on the same QDQ model."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from ai_edge_litert import schema_py_generated as S

from edgec.config.loader import load_profile
from edgec.lower.tflite.convert import convert
from edgec.prepare import prepare
from edgec.runtimes.host_litert import LiteRTRunner
from edgec.runtimes.host_ort import OrtRunner
from edgec import samples
from edgec.samples import randomized
from tests.quantize.helpers import write_profile
from tests.tflite.helpers import cosine

LIGHT = ["squeezenet", "shufflenet"]
TORCH = ["mobilenet_v3_small", "shufflenet_v2_x1_0", "transformer_block", "detection_head"]
TRAINED = ["pnet"]  # tests/trained_detector.py (its own Transposes: NHWC input)
PPOCR = ["ppocr_cls", "ppocr_rec"]  # tests/ppocr.py, built int8 by tests/quantize/test_trained_int8.py, test_ocr_int8.py
SLOW = ["ppocr_det", "efficientnet_lite0", "inception_v1", "inception_v2", "densenet121", "resnet50", "mobilenet_v2", "efficientnet_b0", "resnet18",
        "squeezenet1_1"]


def _path(name: str):
    if name.startswith("ppocr_"):
        from tests.ppocr import ppocr_model

        return ppocr_model(name.removeprefix("ppocr_"))
    if name in samples.LIGHT_MODELS:
        return randomized(name)
    if name == "pnet":
        from tests.trained_detector import detector_model

        return detector_model()
    if name.startswith("efficientnet_lite"):
        from tests.trained_zoo import trained_model

        return trained_model(name)
    from tests.zoo import zoo_model

    return zoo_model(name)


def _both(name: str, tmp_path):
    """(fp32 Converted, int8 Converted, the QDQ model, the prepared fp32 model) of `name`, int8 from random
    calibration as the tests use."""
    path = _path(name)
    model = onnx.load(str(path))
    shapes = {i.name: [d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    if name.startswith("ppocr_"):  # dynamic height/width: the shapes the OCR tests build
        from tests.ppocr import INPUT_NAME, INPUT_SHAPES

        shapes = {INPUT_NAME: list(INPUT_SHAPES[name.removeprefix("ppocr_")])}
    float_model = prepare(model, shapes, str(path)).model
    fp32 = convert(float_model)
    profile = load_profile(str(write_profile(tmp_path, samples=8, sensitivity=0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random calibration warns
        q = prepare(model, shapes, str(path), profile, "tflite")
    int8 = convert(q.model)
    assert not fp32.problems and not int8.problems, (fp32.problems, int8.problems)
    return fp32, int8, q.model, float_model


def boundary_problems(data: bytes) -> list[str]:
    """What breaks the int8 boundary rules in a .tflite file (empty: none)."""
    m = S.ModelT.InitFromPackedBuf(data, 0)
    sg = m.subgraphs[0]
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    code = [names[max(oc.builtinCode, oc.deprecatedBuiltinCode)] for oc in m.operatorCodes]
    made_by = {o: op for op in sg.operators for o in op.outputs}
    problems, quantized = [], set()

    def params(t):
        q = sg.tensors[t].quantization
        return (tuple(q.scale), tuple(q.zeroPoint))

    for op in sg.operators:
        if code[op.opcodeIndex] != "QUANTIZE":
            continue
        x, y = op.inputs[0], op.outputs[0]
        src = made_by.get(x)
        if sg.tensors[x].type == S.TensorType.FLOAT32:
            if src is not None and code[src.opcodeIndex] == "DEQUANTIZE":
                problems.append(f"DEQUANTIZE -> QUANTIZE pair at {sg.tensors[x].name}")
            elif src is None and x not in sg.inputs:
                problems.append(f"QUANTIZE of a constant {sg.tensors[x].name}")
            if x in quantized:
                problems.append(f"{sg.tensors[x].name} quantized twice")
            quantized.add(x)
        elif params(x) == params(y):
            problems.append(f"requantize between equal params at {sg.tensors[y].name}")
    return problems


def _transposes(model: onnx.ModelProto) -> int:
    return sum(n.op_type == "Transpose" for n in model.graph.node)


def _check(name: str, tmp_path) -> None:
    fp32, int8, qdq, float_model = _both(name, tmp_path)
    t32, t8 = fp32.op_histogram.get("TRANSPOSE", 0), int8.op_histogram.get("TRANSPOSE", 0)
    assert t8 <= t32, (name, t8, t32)
    assert _transposes(qdq) == _transposes(float_model), name  # the quantizer's pre-processing keeps the layout
    assert boundary_problems(int8.data) == [], name
    ops = int8.stats["quant_ops"]
    assert ops["quantize"] == int8.op_histogram.get("QUANTIZE", 0) - ops["requantize"]
    # the file is as close to fp32 as ONNX Runtime's run of the same QDQ model (it may round once where the QDQ
    # model rounds twice: a Concat input written at the Concat's params, a LOGISTIC output at 1/256)
    files = {"int8": tmp_path / f"{name}.tflite", "fp32": tmp_path / f"{name}-fp32.tflite"}
    files["int8"].write_bytes(int8.data)
    files["fp32"].write_bytes(fp32.data)
    rng = np.random.default_rng(0)
    feeds = [{i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim]).astype(np.float32)
              for i in qdq.graph.input} for _ in range(2)]
    if name == "ppocr_det":  # on N(0, 1) the text detector's map is ~1e-3 everywhere (no text): compare on pages
        from tests.ocr_text import text_pages

        feeds = [{qdq.graph.input[0].name: x} for x in text_pages(1000, 2)]
    ours, ref = LiteRTRunner(files["int8"], threads=1), LiteRTRunner(files["fp32"], threads=1)
    qdq_ort = OrtRunner(qdq, level="basic")  # "all" fails to load detection_head's QDQ model (an ORT fusion)
    for feed in feeds:
        want, got, theirs = ref.run(feed), ours.run(feed), qdq_ort.run(feed)
        for k in want:
            mine, ort_cos = cosine(want[k], got[k]), cosine(want[k], theirs[k])
            # 0.02: two int8 roundings apart on random weights (measured: within 0.004 either way)
            assert mine >= ort_cos - 0.02, (name, k, mine, ort_cos)


@pytest.mark.parametrize("name", LIGHT + TORCH + TRAINED + PPOCR)
def test_int8_file_has_fp32_transposes_and_one_quantize_per_boundary(name, tmp_path):
    _check(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_int8_layout_big_models(name, tmp_path):
    _check(name, tmp_path)


def test_dequantize_quantize_pair_becomes_one_requantize(tmp_path):
    """Q -> DQ -> Q -> DQ (two int8 tensors of different scales, nothing between): one QUANTIZE int8 -> int8 in the
    file, no DEQUANTIZE -> QUANTIZE pair; the checker flags the pair in a file that has one (built by hand)."""
    from onnx import TensorProto, helper, numpy_helper

    from edgec.lower.tflite.builder import ModelBuilder, Quant
    from edgec.lower.tflite.writer import serialize

    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"), numpy_helper.from_array(np.array(0, np.int8), "z"),
             numpy_helper.from_array(np.array(0.07, np.float32), "s2")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             helper.make_node("QuantizeLinear", ["d", "s2", "z"], ["q2"]),
             helper.make_node("DequantizeLinear", ["q2", "s2", "z"], ["y"])]
    g = helper.make_graph(nodes, "pair", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    res = convert(model)
    assert not res.problems
    assert res.stats["quant_ops"] == {"quantize": 1, "requantize": 1, "dequantize": 1, "dequantize_weights": 0}
    assert boundary_problems(res.data) == []
    path = tmp_path / "pair.tflite"
    path.write_bytes(res.data)
    x = np.linspace(-3, 3, 8, dtype=np.float32)[None]
    # no ties at these values, so every rounding convention agrees (ONNX Runtime drops Q/DQ pairs: not a reference)
    want = np.round(np.round(x / 0.05) * 0.05 / 0.07) * 0.07
    np.testing.assert_allclose(LiteRTRunner(path, threads=1).run({"x": x})["y"], want, rtol=0, atol=1e-6)

    b = ModelBuilder()
    t = [b.tensor("x", (1, 8), np.float32), b.tensor("q", (1, 8), np.int8, Quant([0.05], [0])),
         b.tensor("d", (1, 8), np.float32), b.tensor("q2", (1, 8), np.int8, Quant([0.07], [0]))]
    for code, i, o in (("QUANTIZE", 0, 1), ("DEQUANTIZE", 1, 2), ("QUANTIZE", 2, 3)):
        b.op(code, [t[i]], [t[o]])
    b.inputs, b.outputs = [t[0]], [t[3]]
    assert any("pair" in p for p in boundary_problems(serialize(b, ([("x", t[0])], [("q2", t[3])]))))


@pytest.mark.parametrize("quantized", [False, True])
def test_last_axes_transpose_into_a_matmul_becomes_its_adjoint(quantized, tmp_path):
    """q @ Transpose(k, [0,1,3,2]) and Transpose(q, [0,1,3,2]) @ v (attention's K^T): BATCH_MATMUL's adj_y / adj_x,
    no TRANSPOSE, in float and with the Transposes behind int8 Q/DQ (where sinking leaves them after a
    DEQUANTIZE); the same values as ONNX Runtime's unoptimized run of the same model."""
    from onnx import TensorProto, helper, numpy_helper

    swap = [0, 1, 3, 2]
    inits = [numpy_helper.from_array(np.array(0.03, np.float32), "s"), numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = []

    def qdq(x: str) -> str:  # Q -> DQ with the one scale (a pass-through in the float case)
        if not quantized:
            return x
        nodes.extend([helper.make_node("QuantizeLinear", [x, "s", "z"], [f"{x}_q"]),
                      helper.make_node("DequantizeLinear", [f"{x}_q", "s", "z"], [f"{x}_dq"])])
        return f"{x}_dq"

    q, k = qdq("q"), qdq("k")
    nodes += [helper.make_node("Transpose", [k], ["kt"], perm=swap), helper.make_node("Transpose", [q], ["qt"], perm=swap)]
    nodes += [helper.make_node("MatMul", [q, qdq("kt")], ["scores"]), helper.make_node("MatMul", [qdq("qt"), "v"], ["mixed"])]
    g = helper.make_graph(nodes, "adjoint", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 4, 8])
                                             for n in ("q", "k", "v")],
                          [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2, 4, 4]),
                           helper.make_tensor_value_info("mixed", TensorProto.FLOAT, [1, 2, 8, 8])], initializer=inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    res = convert(model)
    assert not res.problems
    assert "TRANSPOSE" not in res.op_histogram and res.op_histogram["BATCH_MATMUL"] == 2
    assert res.stats["matmul_adjoints"] == 2
    path = tmp_path / "adjoint.tflite"
    path.write_bytes(res.data)
    rng = np.random.default_rng(0)
    feed = {n: rng.standard_normal((1, 2, 4, 8)).astype(np.float32) for n in ("q", "k", "v")}
    want, got = OrtRunner(model, level="disable").run(feed), LiteRTRunner(path, threads=1).run(feed)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-5, err_msg=name)
