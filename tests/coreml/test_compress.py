"""Weight compression from the profile's coreml.compression: constexpr weight ops in the package, smaller
weight files, numerics still close to ONNX Runtime (looser than fp16), and a clear error for too-old targets."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.errors import ConfigError
from edgec.hashing import sha256_path
from edgec.lower.coreml.compress import KMeansLut
from tests.coreml.helpers import HAVE_RUNTIME, backend, context, cosine, infer, mil_ops, reference


def _model():
    """conv 16->32 (3x3) -> relu -> conv 32->32 (3x3) -> GAP -> flatten -> Gemm 32->64: weights of 4-9k elements."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(0, 0.12, (32, 16, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.06, (32, 32, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.2, (64, 32)).astype(np.float32), "fc"),
             numpy_helper.from_array(rng.normal(0, 0.1, (64,)).astype(np.float32), "fc_b")]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fc", "fc_b"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "compress", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 64])], initializer=inits)
    return infer(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _ctx(tmp_path, deployment="iOS16", precision="fp16", **compression):
    ctx = context(tmp_path, name=f"m-{'-'.join(map(str, compression.values()))}", precision=precision,
                  coreml_minimum_deployment_target=deployment)
    coreml = ctx.profile.coreml.model_copy(update={
        "compression": ctx.profile.coreml.compression.model_copy(update={"weight_threshold": 1000, **compression})})
    return type(ctx)(**{**ctx.__dict__, "profile": ctx.profile.model_copy(update={"coreml": coreml})})


CASES = [  # (compression, deployment target, constexpr op expected, precision label, min (cosine, delta cosine));
    # measured: int8 0.99998/0.99994, lut6 0.99907/0.99833, lut4 uniform 0.9859/0.9692, lut4 0.9916/0.9861, int4 0.9904/0.9829
    ({"mode": "int8"}, "iOS16", "constexpr_affine_dequantize", "int8-weights", (0.9999, 0.9995)),
    ({"mode": "int8"}, "iOS18", "constexpr_blockwise_shift_scale", "int8-weights", (0.9999, 0.9995)),
    ({"mode": "palettize", "nbits": 6}, "iOS16", "constexpr_lut_to_dense", "lut6-weights", (0.998, 0.995)),
    ({"mode": "palettize", "nbits": 4, "palette": "uniform"}, "iOS16", "constexpr_lut_to_dense", "lut4-weights", (0.98, 0.95)),
    ({"mode": "palettize", "nbits": 4}, "iOS17", "constexpr_lut_to_dense", "lut4-weights", (0.985, 0.98)),
    ({"mode": "int4-block", "block_size": 16}, "iOS18", "constexpr_blockwise_shift_scale", "int4-weights", (0.985, 0.975)),
]


@pytest.mark.parametrize("compression, deployment, op, label, min_cos", CASES,
                         ids=[f"{c['mode']}{c.get('nbits', '')}{c.get('palette', '')}-{d}" for c, d, *_ in CASES])
def test_compressed_build(tmp_path, compression, deployment, op, label, min_cos):
    model = _model()
    plain = backend().lower(model, _ctx(tmp_path / "plain", deployment))
    art = backend().lower(model, _ctx(tmp_path, deployment, **compression))
    ops = [o.type for o in mil_ops(art.path)]
    assert ops.count(op) == 3, ops  # conv1, conv2, fc weights (biases are below weight_threshold)
    assert art.precision == label and art.details["compute_precision"] == "fp16"
    assert art.details["weight_compression"]["mode"] == compression["mode"]
    # fp16 weights: 2 bytes each; int8 ~1, 6-bit ~0.75, 4-bit ~0.5 (+ scales / tables / 64-byte alignment)
    bits = {"int8": 8, "palettize": compression.get("nbits"), "int4-block": 4}[compression["mode"]]
    assert art.details["weight_file_bytes"] < plain.details["weight_file_bytes"] * (bits / 16 + 0.15)
    assert any(n.startswith("weights compressed: ") for n in art.notes)
    if not HAVE_RUNTIME:
        pytest.skip("no CoreML runtime or MIL interpreter for numerics")
    feeds = [{"x": np.random.default_rng(s).standard_normal((2, 16, 12, 12)).astype(np.float32)} for s in (0, 1)]
    runner = backend().runner(art, 1)
    got = [runner.run(f)["y"] for f in feeds]
    want = [reference(model, f)["y"] for f in feeds]
    c, d = min(cosine(g, w) for g, w in zip(got, want)), cosine(got[0] - got[1], want[0] - want[1])
    assert c >= min_cos[0] and d >= min_cos[1], (c, d)


def test_compressed_builds_are_deterministic(tmp_path):
    a = backend().lower(_model(), _ctx(tmp_path / "a", mode="palettize", nbits=4))
    b = backend().lower(_model(), _ctx(tmp_path / "b", mode="palettize", nbits=4))
    assert sha256_path(a.path) == sha256_path(b.path)


@pytest.mark.parametrize("compression, key", [({"mode": "int4-block"}, "int4-block"),
                                              ({"mode": "palettize", "nbits": 3}, "nbits: 3")])
def test_ios18_only_modes_need_ios18(tmp_path, compression, key):
    with pytest.raises(ConfigError, match=rf"coreml\.compression\.mode \S*.*{key}.*iOS17.*iOS18"):
        backend().lower(_model(), _ctx(tmp_path, "iOS17", **compression))


def test_kmeans_table_beats_a_uniform_grid():
    w = np.random.default_rng(0).standard_normal(20000).astype(np.float16)
    lut, idx = KMeansLut(4)(w)
    assert lut.dtype == np.float16 and lut.shape == (16,) and idx.dtype == np.uint8 and idx.shape == (20000,)
    assert np.all(np.diff(lut.astype(np.float32)) >= 0)
    err = np.mean((lut[idx].astype(np.float32) - w) ** 2)
    grid = np.linspace(w.min(), w.max(), 16).astype(np.float32)
    uniform_err = np.mean((grid[np.abs(w[:, None] - grid[None]).argmin(1)] - w) ** 2)
    assert err < 0.5 * uniform_err
    lut2, idx2 = KMeansLut(4)(w)  # deterministic
    assert np.array_equal(lut, lut2) and np.array_equal(idx, idx2)


def test_kmeans_with_fewer_distinct_weights_than_entries():
    w = np.array([0.5, -0.5, 0.5, 0.25] * 10, np.float32)
    lut, idx = KMeansLut(4)(w)
    np.testing.assert_array_equal(lut[idx], w)
