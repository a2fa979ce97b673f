import numpy as np
import onnx
from onnx import TensorProto, helper

from edgec.graph.passes import run_passes
from edgec.runtimes.host_ort import OrtRunner

from conftest import conv_model


def _run(model, x):
    return OrtRunner(model).run({"images": x})["logits"]


def test_fold_batchnorm_keeps_outputs():
    model = conv_model()
    x = np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)
    before = _run(model, x)
    counts = run_passes(model, ["fold_batchnorm_into_conv", "remove_dead_nodes"])
    assert counts["fold_batchnorm_into_conv"] == 1
    assert [n.op_type for n in model.graph.node] == ["Conv", "Relu", "GlobalAveragePool", "Flatten"]
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-5, atol=1e-5)


def _sum_model():
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 3])
    nodes = [
        helper.make_node("Relu", ["images"], ["a"]),
        helper.make_node("Sigmoid", ["images"], ["b"]),
        helper.make_node("Identity", ["b"], ["b2"]),
        helper.make_node("Sum", ["images", "a", "b2"], ["s"]),
        helper.make_node("Dropout", ["s"], ["logits"]),
    ]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_sum_to_add_and_identity_removal_keep_outputs():
    model = _sum_model()
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    before = _run(model, x)
    counts = run_passes(model)
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert "Sum" not in ops and "Identity" not in ops and "Dropout" not in ops
    assert ops.count("Add") == 2 and counts["sum_to_add"] == 1
    assert model.graph.output[0].name == "logits"
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-6)


def _lcnet_block(opset: int, pad: int = 1) -> onnx.ModelProto:
    """PP-LCNet as paddle2onnx writes it: Conv -> Add(learnable bias) -> x*Clip(x+3,0,6)/6 -> Mul/Add(learnable
    affine) -> Conv (padded or not)."""
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    c = lambda name, v: numpy_helper.from_array(np.asarray(v, np.float32), name)  # noqa: E731
    inits = [c("w1", rng.normal(0, 0.4, (8, 3, 3, 3))), c("b1", rng.normal(0, 0.1, 8)), c("t0", [0.6]),
             c("three", [3.0]), c("six", [6.0]), c("lo", 0.0), c("hi", 6.0), c("s", [0.17]), c("t", [-0.2]),
             c("w2", rng.normal(0, 0.4, (4, 8, 3, 3))), c("b2", rng.normal(0, 0.1, 4)),
             c("cs", rng.uniform(0.5, 2, (1, 8, 1, 1)))]
    nodes = [helper.make_node("Conv", ["images", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c1", "t0"], ["a0"]),
             helper.make_node("Mul", ["a0", "cs"], ["x"]),  # per-channel scale: folds into the first conv too
             helper.make_node("Add", ["x", "three"], ["x3"]),
             helper.make_node("Clip", ["x3", "lo", "hi"], ["cl"]),
             helper.make_node("Mul", ["x", "cl"], ["m"]),
             helper.make_node("Div", ["m", "six"], ["hs"]),
             helper.make_node("Mul", ["s", "hs"], ["sc"]),
             helper.make_node("Add", ["sc", "t"], ["af"]),
             helper.make_node("Conv", ["af", "w2", "b2"], ["logits"], pads=[pad] * 4)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 12, 12])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4, 12 + 2 * pad - 2,
                                                                                        12 + 2 * pad - 2])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def test_hardswish_and_affine_folds_keep_outputs():
    x = np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32) * 3
    for opset, pad in ((13, 1), (14, 0)):
        model = _lcnet_block(opset, pad)
        before = _run(model, x)
        counts = run_passes(model, ["fold_affine_into_conv", "fuse_hardswish", "fold_input_affine_into_conv",
                                    "remove_dead_nodes"])
        ops = [n.op_type for n in model.graph.node]
        assert counts["fold_affine_into_conv"] == 2 and counts["fuse_hardswish"] == 1
        # the input affine x*s + t: Add folds only into an unpadded conv (padding would see t, not 0), and the Mul
        # only once the Add is gone (it must feed the conv directly)
        assert counts["fold_input_affine_into_conv"] == (0 if pad else 2)
        act = ["HardSwish"] if opset >= 14 else ["HardSigmoid", "Mul"]
        assert ops == ["Conv", *act, *(["Mul", "Add"] if pad else []), "Conv"], ops
        np.testing.assert_allclose(_run(model, x), before, rtol=1e-4, atol=1e-4)


def test_per_channel_fold_refuses_a_constant_along_the_width():
    """A plain [C] constant broadcasts along the LAST axis (width), not the channels: no fold."""
    from onnx import numpy_helper

    model = conv_model()
    w = next(n for n in model.graph.node if n.op_type == "Conv")
    width = np.arange(16, dtype=np.float32)
    model.graph.initializer.append(numpy_helper.from_array(width, "wide"))
    add = helper.make_node("Add", [w.output[0], "wide"], ["widened"])
    for n in model.graph.node:
        for i, name in enumerate(n.input):
            if name == w.output[0]:
                n.input[i] = "widened"
    model.graph.node.insert(list(model.graph.node).index(w) + 1, add)
    x = np.random.default_rng(3).standard_normal((1, 3, 16, 16)).astype(np.float32)
    before = _run(model, x)
    assert run_passes(model, ["fold_affine_into_conv"])["fold_affine_into_conv"] == 0
    np.testing.assert_allclose(_run(model, x), before, rtol=1e-5, atol=1e-5)


def test_drop_activation_qdq_keeps_the_range_clamp_the_quantizer_relied_on(tmp_path):
    """ORT's quantizer deletes the Relu whose output range the Quantize already clamps to; dropping the Q/DQ
    pair must keep that clamp (a Clip to the int8 range), or negative values leak through."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from edgec.graph.passes import drop_activation_qdq

    model = conv_model()
    run_passes(model, ["fold_batchnorm_into_conv", "remove_dead_nodes"])
    rng = np.random.default_rng(0)
    samples = [rng.standard_normal((1, 3, 16, 16)).astype(np.float32) for _ in range(9)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter({"images": x} for x in samples[:8])

        def get_next(self):
            return next(self.it, None)

    onnx.save(model, str(tmp_path / "f.onnx"))
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True)
    qdq = onnx.load(str(tmp_path / "q.onnx"))
    assert "Relu" not in [n.op_type for n in qdq.graph.node]  # folded into the Quantize's range
    pairs = drop_activation_qdq(qdq)
    ops = [n.op_type for n in qdq.graph.node]
    assert pairs >= 2 and "QuantizeLinear" not in ops and ops.count("DequantizeLinear") == 2  # conv weight, bias
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in qdq.graph.initializer}
    conv = next(n for n in qdq.graph.node if n.op_type == "Conv")
    relu_clip = next(n for n in qdq.graph.node if n.op_type == "Clip" and n.input[0] == conv.output[0])
    assert float(inits[relu_clip.input[1]]) == 0.0
    assert ops.count("Clip") == 1  # the pool and flatten of a clamped tensor need no clamp of their own
    x = samples[8]
    want, got = _run(model, x), _run(qdq, x)
    assert np.max(np.abs(got - want)) < 1e-2 * np.max(np.abs(want))


def test_drop_activation_qdq_leaves_int8_outputs_and_weights():
    inits = [onnx.numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             onnx.numpy_helper.from_array(np.array(0, np.int8), "z"),
             onnx.numpy_helper.from_array(np.ones((3,), np.int8), "w")]
    nodes = [helper.make_node("DequantizeLinear", ["w", "s", "z"], ["wf"]),
             helper.make_node("Add", ["images", "wf"], ["a"]),
             helper.make_node("QuantizeLinear", ["a", "s", "z"], ["logits"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [3])],
                          [helper.make_tensor_value_info("logits", TensorProto.INT8, [3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    from edgec.graph.passes import drop_activation_qdq

    assert drop_activation_qdq(m) == 0 and [n.op_type for n in m.graph.node] == [
        "DequantizeLinear", "Add", "QuantizeLinear"]


def test_pipeline_records_each_pass_and_the_report_lists_it_per_target(tmp_path):
    from edgec import api
    from edgec.graph.passes import DEFAULT_PIPELINE, describe, run_pipeline


    model = conv_model()
    runs = run_pipeline(model)
    assert [r.name for r in runs] == DEFAULT_PIPELINE
    bn = next(r for r in runs if r.name == "fold_batchnorm_into_conv")
    assert bn.rewrites == 1 and bn.nodes_after == bn.nodes_before - 1
    assert all(a.nodes_after == b.nodes_before for a, b in zip(runs, runs[1:]))
    assert "fold_batchnorm_into_conv: 1 rewrite(s)" in describe(runs)

    path = tmp_path / "m.onnx"
    onnx.save(conv_model(), str(path))
    out = api.build(path, api.BuildOptions(target="all", out_dir=tmp_path / "o", validate=False))
    for a in out.result.artifacts:
        stages = [r["pass"] for r in a.artifact.details["pipeline"]]
        assert stages == ["fold", "onnxsim", *DEFAULT_PIPELINE]  # edgec's own folding runs before onnxsim
    assert out.result.report_path.read_text().count("- ONNX pipeline: fold") == 3
