"""QDQ graphs (what the quantize stage writes): 8-bit constant weights stay 8-bit in the package
(constexpr_affine_dequantize); activation Q/DQ pairs are MIL quantize/dequantize (iOS17+), dropped to float
activations clamped to their int8 range (below iOS17, default) or emulated in float arithmetic; ONNX Runtime is the
reference."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.coreml.helpers import HAVE_RUNTIME, backend, cosine, infer, lower, mil_ops, reference

needs_runtime = pytest.mark.skipif(not HAVE_RUNTIME, reason="needs a CoreML runtime or the MIL interpreter")


def _qdq_model(static: bool):
    """[Q -> DQ] -> Conv(weights = DQ(int8 per-channel), bias = DQ(int32)) -> Relu [-> Q -> DQ]."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.3, (6, 3, 3, 3)).astype(np.float32)
    w_scale = (np.abs(w).reshape(6, -1).max(1) / 127).astype(np.float32)
    w_q = np.clip(np.round(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
    inits = [numpy_helper.from_array(w_q, "w_q"), numpy_helper.from_array(w_scale, "w_scale"),
             numpy_helper.from_array(np.zeros(6, np.int8), "w_zp"),
             numpy_helper.from_array(np.array(0.03, np.float32), "x_scale"),
             numpy_helper.from_array(np.array(128, np.uint8), "x_zp"),
             numpy_helper.from_array(np.array(0.02, np.float32), "y_scale"),
             numpy_helper.from_array(np.array(0, np.uint8), "y_zp"),
             # int32 bias at scale x_scale * w_scale, as ONNX Runtime's static quantizer writes it
             numpy_helper.from_array(rng.integers(-300, 300, 6).astype(np.int32), "b_q"),
             numpy_helper.from_array((0.03 * w_scale).astype(np.float32), "b_scale")]
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], name="dq_w", axis=0),
             helper.make_node("DequantizeLinear", ["b_q", "b_scale"], ["b"], name="dq_b", axis=0)]
    x = "x"
    if static:
        nodes += [helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"], name="q_x"),
                  helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"], name="dq_x")]
        x = "x_dq"
    nodes += [helper.make_node("Conv", [x, "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c"], ["r" if static else "y"], name="relu")]
    if static:
        nodes += [helper.make_node("QuantizeLinear", ["r", "y_scale", "y_zp"], ["r_q"], name="q_r"),
                  helper.make_node("DequantizeLinear", ["r_q", "y_scale", "y_zp"], ["y"], name="dq_r")]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 8, 8])], initializer=inits)
    return infer(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


@pytest.mark.parametrize("static, deployment, emulate", [(False, "iOS16", False), (True, "iOS16", False),
                                                       (True, "iOS16", True), (True, "iOS17", False)],
                         ids=["weights-only", "static-float-iOS16", "static-emulated-iOS16", "static-quantize-ops-iOS17"])
def test_qdq_lowers(tmp_path, static, deployment, emulate):
    model = _qdq_model(static)
    assert backend().unsupported(model) == []
    art = lower(model, tmp_path, precision="fp32", coreml_minimum_deployment_target=deployment, emulate_int8=emulate)
    ops = [o.type for o in mil_ops(art.path)]
    assert ops.count("constexpr_affine_dequantize") == 1  # the int8 weights stay int8 in the file
    native = static and deployment == "iOS17"  # activation Q/DQ as MIL quantize/dequantize pairs
    assert (ops.count("quantize"), ops.count("dequantize")) == ((2, 2) if native else (0, 0))
    assert ("round" in ops) is emulate  # the int8 grid as float arithmetic only when the profile asks
    assert art.details["int8_activations"] == (None if not static else "native" if native else
                                               "emulated" if emulate else "float")
    if not HAVE_RUNTIME:
        pytest.skip("no runtime")
    x = {"x": np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)}
    got, want = backend().runner(art, 1).run(x)["y"], reference(model, x)["y"]
    if static and (native or emulate):  # same grid: at most one step apart (summation order can move a rounding)
        assert np.max(np.abs(got - want)) <= 0.02 + 1e-6
        assert np.mean(got != want) < 0.02
    elif static:  # float activations clamped to the int8 ranges: the QDQ graph without its rounding
        from edgec.graph.passes import drop_activation_qdq

        unrounded = model.__class__.FromString(model.SerializeToString())
        assert drop_activation_qdq(unrounded) == 2
        assert cosine(got, reference(unrounded, x)["y"]) > 0.99999
        assert np.mean(got != want) > 0.5 and cosine(got, want) > 0.999  # near the int8 result, off its grid
    else:
        assert cosine(got, want) > 0.99999


@pytest.mark.parametrize("fragment, change", [
    ("block_size", lambda n: n.attribute.append(helper.make_attribute("block_size", 2))),
    ("must be a constant", None),
])
def test_qdq_refusals(fragment, change):
    model = _qdq_model(True)
    if change:
        change(model.graph.node[0])
    else:  # scale as a graph input
        model.graph.input.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, []))
        model.graph.node[2].input[1] = "s"
    assert any(fragment in why for _, _, why in backend().unsupported(model))


@needs_runtime
@pytest.mark.parametrize("mode", ["int8-weights", pytest.param("int8", marks=pytest.mark.slow)])
def test_quantize_stage_output_builds(tmp_path, mode):
    """squeezenet through edgec's quantize stage (random calibration) lowers and matches ONNX Runtime running the
    graph the program runs (int8: the QDQ graph with its activation pairs dropped, as on iOS16)."""
    import onnx

    from edgec.prepare import prepare
    from edgec.samples import randomized
    from edgec.graph.inputs import input_specs, random_inputs
    from tests.coreml.helpers import context

    ctx = context(tmp_path, name="squeezenet", precision=None)
    q = ctx.profile.quantize
    profile = ctx.profile.model_copy(update={"quantize": q.model_copy(update={
        "mode": mode, "sensitivity": 0, "calibration": q.calibration.model_copy(update={"source": "random", "samples": 8})})})
    with pytest.warns(Warning):  # random calibration warns; that is the quantize stage's business
        prepared = prepare(onnx.load(str(randomized("squeezenet"))), {}, "squeezenet", profile, "coreml")
    ctx = type(ctx)(**{**ctx.__dict__, "profile": profile, "precision": prepared.precision})
    art = backend().lower(prepared.model, ctx)
    # the ios target's default iOS16 has no int8 activation ops: the activation Q/DQ pairs are dropped (float
    # activations, 8-bit weights) in an fp16 program, which is what it must match (backend.as_built's graph)
    assert art.precision == mode and art.details["compute_precision"] == "fp16"
    assert art.details["int8_activations"] == ("float" if mode == "int8" else None)
    assert "constexpr_affine_dequantize" in {o.type for o in mil_ops(art.path)}
    runner = backend().runner(art, 1)
    built, _ = backend().as_built(prepared.model, art)
    for feed in random_inputs(input_specs(prepared.model), seed=0, samples=2):
        got, want = runner.run(feed), reference(built, feed)
        assert all(cosine(got[o], want[o]) > 0.9999 for o in want)
