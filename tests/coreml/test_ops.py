"""Every registered op lowers, saves, and (where CoreML can run here) matches ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest

from tests.coreml.helpers import HAVE_RUNTIME, backend, feeds_for, lower, mil_spec, reference, single_op
from tests.coreml.op_cases import CASES


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_lowers_and_matches(case, tmp_path):
    model = CASES[case]()
    assert backend().unsupported(model) == []
    art = lower(model, tmp_path, name=case)
    spec = mil_spec(art.path)
    assert [i.name for i in spec.description.input] == list(art.details["name_map"]["inputs"].values())
    assert [o.name for o in spec.description.output] == list(art.details["name_map"]["outputs"].values())
    if not HAVE_RUNTIME:
        pytest.skip("built and checked structurally; no CoreML runtime or MIL interpreter here for numerics")
    feeds = feeds_for(model)
    if case in ("log", "sqrt", "reciprocal"):
        feeds = {k: np.abs(v) + 0.1 for k, v in feeds.items()}
    expected = reference(model, feeds)
    actual = backend().runner(art, 1).run(feeds)
    assert set(actual) == set(expected)
    for name, ref in expected.items():
        got = actual[name]
        assert got.shape == ref.shape, name
        assert got.dtype == ref.dtype, name
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(ref).max())), err_msg=case)


def test_every_registered_op_has_a_case():
    """The op-support table is the registry; each entry is exercised above."""
    covered = {CASES[c]().graph.node[0].op_type for c in CASES}
    # Constant: test_build.py; CumProd (opset 26, no ONNX Runtime kernel yet): test_cumprod below;
    # If, Loop (subgraphs, run on several feeds): tests/seq/test_control_flow.py
    missing = set(backend().supported_ops()) - covered - {"Constant", "CumProd", "If", "Loop"}
    assert missing == set()


@pytest.mark.skipif(not HAVE_RUNTIME, reason="needs a CoreML runtime or the MIL interpreter")
def test_space_to_depth_crd(tmp_path):
    """SpaceToDepth mode=CRD (opset 28; ONNX Runtime 1.32 has no kernel): numpy is the reference (ONNX spec)."""
    model = single_op("SpaceToDepth", {"x": [1, 3, 6, 4]}, {"blocksize": 2, "mode": "CRD"}, opset=28)
    x = np.random.default_rng(0).standard_normal((1, 3, 6, 4)).astype(np.float32)
    want = x.reshape(1, 3, 3, 2, 2, 2).transpose(0, 1, 3, 5, 2, 4).reshape(1, 12, 3, 2)
    got = backend().runner(lower(model, tmp_path), 1).run({"x": x})["y0"]
    np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not HAVE_RUNTIME, reason="needs a CoreML runtime or the MIL interpreter")
@pytest.mark.parametrize("exclusive,reverse", [(0, 0), (1, 0), (0, 1), (1, 1)])
def test_cumprod(exclusive, reverse, tmp_path):
    """CumProd (opset 26; ONNX Runtime 1.32 has no kernel): numpy is the reference (ONNX spec)."""
    model = single_op("CumProd", {"x": [3, 5]}, {"exclusive": exclusive, "reverse": reverse},
                      {"a": np.array(1, np.int64)}, opset=26)
    x = np.random.default_rng(0).uniform(0.5, 1.5, (3, 5)).astype(np.float32)
    v = x[:, ::-1] if reverse else x
    want = np.cumprod(v, axis=1)
    if exclusive:
        want = np.concatenate([np.ones((3, 1), np.float32), want[:, :-1]], axis=1)
    want = want[:, ::-1] if reverse else want
    got = backend().runner(lower(model, tmp_path), 1).run({"x": x})["y0"]
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.skipif(not HAVE_RUNTIME, reason="needs a CoreML runtime or the MIL interpreter")
@pytest.mark.parametrize("causal", [0, 1])
def test_attention_fused_on_ios18(causal, tmp_path):
    """iOS18 deployment targets get MIL scaled_dot_product_attention (GQA heads repeated, causal as a bool mask);
    iOS16 keeps the composed form. Both match ONNX Runtime."""
    from tests.coreml.helpers import mil_ops

    model = single_op("Attention", {"q": [1, 4, 3, 8], "k": [1, 2, 5, 8], "v": [1, 2, 5, 8]}, {"is_causal": causal},
                      opset=23)
    feeds = feeds_for(model)
    want = reference(model, feeds)["y0"]
    for target, fused in (("iOS18", True), ("iOS16", False)):
        art = lower(model, tmp_path / target, coreml_minimum_deployment_target=target)
        assert ("scaled_dot_product_attention" in {o.type for o in mil_ops(art.path)}) is fused
        got = backend().runner(art, 1).run(feeds)["y0"]
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
