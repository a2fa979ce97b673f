"""int8-dynamic on transformers (issue 19, scope 5): MatMul/Gemm weights int8 with activations quantized at run
time on ORT (MatMulInteger) and TFLite (hybrid FULLY_CONNECTED), weight-only int8 on CoreML, embedding tables
int8 per row; LayerNorm/Softmax/GELU stay float.

The fast tests use a small embedder (Gather table -> MatMul -> LayerNorm -> GELU MatMul); the slow one is the bar
on the TRAINED sentence encoder all-MiniLM-L6-v2 (tests/text_zoo.py) and 60 held-out standard-library docstring
sentences: mean embedding cosine to fp32 ONNX Runtime >= 0.99 on ort-mobile and android, >= 0.999 on ios
(weight-only, through the MIL interpreter).
"""

from dataclasses import replace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec import api
from edgec.lower.backend import get_backend
from edgec.runtimes.host_ort import OrtRunner

VOCAB, SEQ, WIDTH = 2000, 16, 64


def _embedder(seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.5, (VOCAB, WIDTH)).astype(np.float32), "table"),
        numpy_helper.from_array(rng.normal(0, 1 / 8, (WIDTH, 4 * WIDTH)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.1, 4 * WIDTH).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.normal(0, 1 / 16, (4 * WIDTH, WIDTH)).astype(np.float32), "w2"),
        numpy_helper.from_array(np.ones(WIDTH, np.float32), "gamma"),
        numpy_helper.from_array(np.zeros(WIDTH, np.float32), "beta"),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["e"], name="embed"),
        helper.make_node("LayerNormalization", ["e", "gamma", "beta"], ["n"], name="norm", axis=-1),
        helper.make_node("MatMul", ["n", "w1"], ["h0"], name="up"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="up_bias"),
        None,
        helper.make_node("MatMul", ["h2", "w2"], ["h3"], name="down"),
        helper.make_node("ReduceMean", ["h3"], ["embedding"], name="pool", axes=[1], keepdims=0),
    ]
    # GELU from Erf (opset 17 has no Gelu): what torch exports
    nodes[4:5] = [
        helper.make_node("Div", ["h1", "sqrt2"], ["g0"], name="gelu_div"),
        helper.make_node("Erf", ["g0"], ["g1"], name="gelu_erf"),
        helper.make_node("Add", ["g1", "one"], ["g2"], name="gelu_add"),
        helper.make_node("Mul", ["h1", "g2"], ["g3"], name="gelu_mul"),
        helper.make_node("Mul", ["g3", "half"], ["h2"], name="gelu_half"),
    ]
    inits += [numpy_helper.from_array(np.array(v, np.float32), k) for k, v in
              (("sqrt2", np.sqrt(2.0)), ("one", 1.0), ("half", 0.5))]
    graph = helper.make_graph(nodes, "embedder", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, SEQ])],
                              [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, WIDTH])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _cosines(model_path, outcome, feeds) -> dict[str, float]:
    ref = OrtRunner(model_path, threads=1)
    out = {}
    for a in outcome.result.artifacts:
        runner = get_backend(a.artifact.format).runner(replace(a.artifact, path=a.final_path), 1)
        cos = []
        for f in feeds:
            x, y = (np.asarray(next(iter(r.run(f).values())), np.float64).ravel() for r in (runner, ref))
            cos.append(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))
        out[a.artifact.target] = float(np.mean(cos))
    return out


@pytest.fixture(scope="module")
def small_build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("text_small")
    path = tmp / "embedder.onnx"
    onnx.save(_embedder(), str(path))
    outcome = api.build(str(path), api.BuildOptions(target="all", out_dir=tmp / "out", quantize="int8-dynamic",
                                                    latency="off", validate=False, model_name="embedder"))
    return path, outcome


def test_int8_dynamic_builds_for_every_target_and_keeps_the_embedding(small_build):
    path, outcome = small_build
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    rng = np.random.default_rng(7)
    feeds = [{"ids": rng.integers(0, VOCAB, (1, SEQ)).astype(np.int64)} for _ in range(6)]
    cos = _cosines(path, outcome, feeds)
    assert set(cos) == {"android", "ios", "ort-mobile"}
    assert min(cos.values()) >= 0.99, cos
    sizes = {a.artifact.target: a.final_path.stat().st_size if a.final_path.is_file() else
             sum(p.stat().st_size for p in a.final_path.rglob("*") if p.is_file()) for a in outcome.result.artifacts}
    assert all(s < 0.4 * path.stat().st_size for s in sizes.values()), sizes  # table + weights int8


def test_tflite_int8_dynamic_is_a_hybrid_fully_connected_with_an_int8_table(small_build):
    from ai_edge_litert.interpreter import Interpreter

    _, outcome = small_build
    tfl = next(a for a in outcome.result.artifacts if a.artifact.target == "android")
    it = Interpreter(str(tfl.final_path))
    tensors = it.get_tensor_details()
    fcs = [op for op in it._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    assert len(fcs) == 2
    for op in fcs:
        x, w = (tensors[i] for i in op["inputs"][:2])
        assert x["dtype"] == np.float32 and w["dtype"] == np.int8  # float activations, int8 weights
        assert len(w["quantization_parameters"]["scales"]) == w["shape"][0]  # one scale per output feature
    table = [t for t in tensors if t["dtype"] == np.int8 and list(t["shape"]) == [VOCAB, WIDTH]]
    assert len(table) == 1 and len(table[0]["quantization_parameters"]["scales"]) == VOCAB  # one per row


@pytest.mark.slow
def test_trained_text_encoder_int8_dynamic_meets_the_cosine_bars(tmp_path):
    from tests.text_eval import embedding_cosines, held_out_feeds
    from tests.text_zoo import text_model

    feeds = held_out_feeds(60)
    outcome = api.build(text_model(), api.BuildOptions(target="all", out_dir=tmp_path, quantize="int8-dynamic",
                                                       latency="off", validate=False, model_name="minilm_l6"))
    assert not outcome.failures, [f"{f.target}: {f.error}" for f in outcome.failures]
    cos = {t: float(np.mean(c)) for t, c in embedding_cosines(outcome, feeds).items()}
    print(f"int8-dynamic mean embedding cosine vs fp32 on {len(feeds)} held-out sentences: {cos}")
    assert cos["ort-mobile"] >= 0.99 and cos["android"] >= 0.99, cos
    assert cos["ios"] >= 0.999, cos


@pytest.mark.slow
def test_trained_text_encoder_gate_reads_validation_sentences(tmp_path):
    """The build's own int8 gate on MiniLM: seeded random token ids sit far from real text (embedding cosine 0.961
    on ort-mobile: FAIL); with --validation-data of tokenized sentences the gate reads them (0.992: pass)."""
    from tests.text_eval import held_out_feeds
    from tests.text_zoo import text_model

    data = tmp_path / "sentences"
    data.mkdir()
    for i, feed in enumerate(held_out_feeds(16)):
        np.savez(data / f"s{i:03d}.npz", **feed)
    opts = dict(target="ort-mobile", quantize="int8-dynamic", latency="off", model_name="minilm_l6")
    random = api.build(text_model(), api.BuildOptions(out_dir=tmp_path / "random", **opts)).result.artifacts[0]
    real = api.build(text_model(), api.BuildOptions(out_dir=tmp_path / "real", validation_data=str(data),
                                                    **opts)).result.artifacts[0]
    cos = {k: a.numerics.outputs["embedding"].cosine for k, a in (("random", random), ("real", real))}
    print(f"int8-dynamic gate, embedding cosine: {cos}")
    assert not random.numerics.passed and cos["random"] < 0.99
    assert real.numerics.passed and cos["real"] >= 0.99, real.numerics.message
    gate = real.artifact.details["quantize"]["gate_inputs"]
    assert gate == {"source": "validation data", "samples": 16, "inputs": gate["inputs"]} and str(data) in gate["inputs"]
