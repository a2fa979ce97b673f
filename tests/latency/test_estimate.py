"""Roofline estimate: work counts, roofline terms, fusion, memory, compute-unit choice, tables."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.config.loader import load_profile
from edgec.validate.estimate import estimate, peak_activation_bytes


def _conv_model(c_in=64, c_out=64, hw=56, k=3, group=1, relu=True):
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((c_out, c_in // group, k, k)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[k // 2] * 4, group=group)]
    out = "c"
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["y"], name="relu"))
        out = "y"
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c_in, hw, hw])],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, c_out, hw, hw])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    return onnx.shape_inference.infer_shapes(m)


def _profile(name="host", **estimate_overrides):
    p = load_profile(name)
    hw = p.hardware
    est = hw.estimate.model_copy(update=estimate_overrides)
    return p.model_copy(update={"hardware": hw.model_copy(update={"estimate": est})})


def test_conv_flops_and_compute_bound_time():
    prof = _profile(efficiency={"gemm": 0.5, "depthwise": 0.25, "elementwise": 0.25, "reduce": 0.2, "move": 0.2},
                    op_overhead_us=10.0)
    e = estimate(_conv_model(), prof, threads=prof.hardware.cpu.cores)
    conv = next(o for o in e.ops if o.op_type == "Conv")
    assert conv.gflop == pytest.approx(2 * 64 * 64 * 9 * 56 * 56 / 1e9)
    assert conv.bound == "compute"
    # a full-size GEMM (M=64, N=3136, K=576): efficiency is the base 0.5
    expected = conv.gflop / (prof.hardware.cpu.peak_gflops_fp32 * 0.5) * 1e3 + 0.010
    assert conv.ms == pytest.approx(expected, rel=1e-6)


def test_relu_after_conv_is_fused_and_moves_no_bytes():
    e = estimate(_conv_model(), _profile())
    relu = next(o for o in e.ops if o.op_type == "Relu")
    assert relu.fused and relu.mbytes == 0
    # a Relu reading a graph input is not fusable: a full pass over memory
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1 << 22])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1 << 22])])
    prof = _profile(op_overhead_us=0.0, bandwidth_efficiency=1.0)
    e2 = estimate(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), prof)
    (op,) = e2.ops
    assert op.bound == "memory" and not op.fused
    assert op.ms == pytest.approx(2 * 4 * (1 << 22) / (prof.hardware.memory_bandwidth_gbps * 1e9) * 1e3)


def test_small_gemm_is_less_efficient_than_large():
    prof = _profile()
    big = estimate(_conv_model(), prof).ops[0]
    small = estimate(_conv_model(c_in=8, c_out=8, hw=56), prof).ops[0]
    assert small.gflop / small.ms < big.gflop / big.ms


def test_depthwise_kind():
    e = estimate(_conv_model(c_in=32, c_out=32, group=32, relu=False), _profile())
    assert e.ops[0].kind == "depthwise"


def test_peak_activation_frees_dead_tensors():
    # x -> a -> b -> y, each 1 MB: at most two tensors live at once (input of a node and its output)
    n = 1 << 18
    nodes = [helper.make_node("Relu", [s], [d]) for s, d in (("x", "a"), ("a", "b"), ("b", "y"))]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n])])
    m = onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    assert peak_activation_bytes(m) == 2 * 4 * n


def test_compute_unit_from_runtime_settings():
    model = _conv_model()
    assert estimate(model, load_profile("iphone-15-pro")).unit == "ane"
    assert estimate(model, load_profile("pixel-8")).unit == "cpu"
    pixel = load_profile("pixel-8")
    gpu = pixel.model_copy(update={"runtime": pixel.runtime.model_copy(update={"delegate": "gpu"})})
    assert estimate(model, gpu).unit == "gpu"
    # fewer threads, less of the CPU: slower
    assert estimate(model, pixel, threads=1).total_ms > estimate(model, pixel, threads=4).total_ms


def test_light_model_tables(tmp_path):
    from edgec.graph.load import load_model
    from edgec.prepare import prepare
    from edgec.samples import randomized

    path = randomized("squeezenet")
    prepared = prepare(load_model(path), {}, str(path))
    e = estimate(prepared.model, load_profile("raspberry-pi-5"))
    assert e.total_ms == pytest.approx(sum(o.ms for o in e.ops))
    assert 0.6 < e.gflop < 0.8  # squeezenet 1.0 at 224: ~0.35 GMAC
    assert 4.5 < e.weight_mb < 5.5  # 1.25 M float parameters
    assert e.peak_activation_mb > 3.2  # at least the first conv's output (1x64x111x111 floats)
    assert e.top(3)[0].op_type == "Conv"
    rows = list(csv.DictReader(e.write_table(tmp_path / "ops.csv").open()))
    assert len(rows) == len(e.ops) and float(rows[0]["ms"]) >= float(rows[-1]["ms"])
    data = json.loads(e.write_table(tmp_path / "ops.json").read_text())
    assert data["estimate"]["total_ms"] == pytest.approx(e.total_ms, rel=1e-3)
    assert e.summary(5)["top_ops"][0]["name"] == rows[0]["name"]


def _qdq_conv_model():
    """x -> Q/DQ -> Conv (int8 weights) -> Q/DQ -> y, 64 channels at 56x56."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.integers(-127, 127, (64, 64, 3, 3)).astype(np.int8), "w_q")
    inits = [w, numpy_helper.from_array(np.array(0.02, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="q"),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"], name="dq_x"),
             helper.make_node("DequantizeLinear", ["w_q", "s", "z"], ["wd"], name="dq_w"),
             helper.make_node("Conv", ["xd", "wd"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"], name="q_out"),
             helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["y"], name="dq_out")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 56, 56])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 56, 56])], inits)
    return onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def test_qdq_conv_is_costed_as_int8():
    """A conv between DequantizeLinear nodes (the QDQ form every quantized build uses) runs as an int8 kernel;
    the weight's DequantizeLinear folds away at load time."""
    m = _qdq_conv_model()
    prof = load_profile("raspberry-pi-5")
    ops = {o.name: o for o in estimate(m, prof).ops}
    assert ops["conv"].precision == "int8" and ops["dq_w"].fused and ops["dq_w"].ms == 0
    # the activation DQ feeds an int8 kernel: fused into it; the Q of the graph input is a real pass
    assert ops["dq_x"].fused and ops["dq_x"].ms == 0 and not ops["q"].fused and ops["q"].ms > 0
    float_conv = estimate(_conv_model(relu=False), prof).ops[0]
    # Cortex-A76 SDOT: 4x the fp32 rate in the profile, so the int8 conv is much faster
    assert ops["conv"].ms < float_conv.ms / 2
    assert ops["q_out"].fused and not ops["dq_out"].fused  # the graph's float output is a real DEQUANTIZE
    # input, weights and output move as int8: a quarter of the float conv's bytes
    assert ops["conv"].mbytes == pytest.approx(float_conv.mbytes / 4, rel=1e-3)


def test_qdq_around_a_float_op_stays_real():
    """Q/DQ between two int8 convs vanish into them; around an op without int8 kernel (Erf) they are real passes."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.integers(-127, 127, (16, 16, 1, 1)).astype(np.int8), "w_q"),
             numpy_helper.from_array(np.array(0.02, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    qdq = lambda t, n: [helper.make_node("QuantizeLinear", [t, "s", "z"], [f"{t}_q"], name=f"q{n}"),  # noqa: E731
                        helper.make_node("DequantizeLinear", [f"{t}_q", "s", "z"], [f"{t}_d"], name=f"dq{n}")]
    nodes = [*qdq("x", 0), helper.make_node("DequantizeLinear", ["w_q", "s", "z"], ["w"], name="dq_w"),
             helper.make_node("Conv", ["x_d", "w"], ["a"], name="conv1"), *qdq("a", 1),
             helper.make_node("Conv", ["a_d", "w"], ["b"], name="conv2"), *qdq("b", 2),
             helper.make_node("Erf", ["b_d"], ["c"], name="float_erf"), *qdq("c", 3),
             helper.make_node("Conv", ["c_d", "w"], ["e"], name="conv3"), *qdq("e", 4)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, 32])],
                          [helper.make_tensor_value_info("e_d", TensorProto.FLOAT, [1, 16, 32, 32])], inits)
    m = onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    ops = {o.name: o for o in estimate(m, load_profile("raspberry-pi-5")).ops}
    assert ops["q1"].fused and ops["dq1"].fused  # conv1 -> conv2: both int8
    assert not ops["dq2"].fused and not ops["q3"].fused  # the Erf reads and writes float
    assert ops["q2"].fused and ops["dq3"].fused  # conv2 writes int8; conv3 reads int8


def test_fp32_coreml_program_is_off_the_neural_engine_and_float():
    """CoreML below iOS17 computes int8 activations as fp32 round/clip arithmetic (edgec.lower.coreml.backend
    compute_precision): the Neural Engine (fp16 only) cannot take that program, and no op is an int8 kernel."""
    m = _qdq_conv_model()
    phone = load_profile("iphone-15-pro")
    fp16 = estimate(m, phone)
    fp32 = estimate(m, phone, program_precision="fp32")
    assert fp16.unit == "ane" and fp32.unit == "gpu"
    assert any("Neural Engine" in n for n in fp32.notes)
    ops = {o.name: o for o in fp32.ops}
    assert ops["conv"].precision == "fp32" and ops["dq_w"].fused  # weights still decompress at load
    assert not ops["dq_x"].fused and ops["dq_x"].ms > 0 and not ops["q_out"].fused
    assert {o.name: o for o in fp16.ops}["conv"].precision == "int8"
    # only the ANE choice changes with compute_units: cpu_and_ne falls back to the CPU
    ne = phone.model_copy(update={"runtime": phone.runtime.model_copy(update={"compute_units": "cpu_and_ne"})})
    assert estimate(m, ne, program_precision="fp32").unit == "cpu"


def test_model_without_value_info_is_inferred():
    """`edgec validate` hands over a model straight from disk: no value_info for intermediate tensors."""
    inferred = _conv_model()
    bare = onnx.ModelProto()
    bare.CopyFrom(inferred)
    del bare.graph.value_info[:]
    prof = load_profile("raspberry-pi-5")
    assert estimate(bare, prof).total_ms == pytest.approx(estimate(inferred, prof).total_ms)


def _relu_pass(n: int):
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_a_pass_that_fits_the_cache_runs_at_cache_bandwidth():
    fast = {"gemm": 0.6, "depthwise": 0.3, "elementwise": 1.0, "reduce": 0.2, "move": 0.2}  # Relu: a memory pass
    prof = _profile(op_overhead_us=0.0, bandwidth_efficiency=1.0, cache_mb=1.0, cache_bandwidth_gbps=200.0,
                    efficiency=fast)
    bw = prof.hardware.memory_bandwidth_gbps
    (small,) = estimate(_relu_pass(1 << 16), prof).ops  # 2 x 256 KB: in the 1 MB cache
    (large,) = estimate(_relu_pass(1 << 20), prof).ops  # 2 x 4 MB: from memory
    assert small.bound == large.bound == "memory"
    assert small.ms == pytest.approx(2 * 4 * (1 << 16) / 200e9 * 1e3, rel=1e-6)
    assert large.ms == pytest.approx(2 * 4 * (1 << 20) / (bw * 1e9) * 1e3, rel=1e-6)
    # without a cache tier (device profiles that do not state one) every pass is a memory pass
    (plain,) = estimate(_relu_pass(1 << 16), _profile(op_overhead_us=0.0, bandwidth_efficiency=1.0,
                                                      efficiency=fast)).ops
    assert plain.ms == pytest.approx(2 * 4 * (1 << 16) / (bw * 1e9) * 1e3, rel=1e-6)


def test_depthwise_off_the_channel_block_uses_the_unaligned_rate():
    eff = {"gemm": 0.6, "depthwise": 0.5, "depthwise_unaligned": 0.1, "elementwise": 0.2, "reduce": 0.2, "move": 0.2}
    prof = _profile(efficiency=eff, channel_block=16, op_overhead_us=0.0)

    def per_gflop(c: int) -> float:
        conv = next(o for o in estimate(_conv_model(c, c, 56, 3, group=c, relu=False), prof).ops)
        assert conv.kind == "depthwise" and conv.bound == "compute"
        return conv.ms / conv.gflop

    assert per_gflop(58) == pytest.approx(5 * per_gflop(64), rel=1e-6)
    # a profile without channel_block (the device profiles) costs both alike
    plain = _profile(efficiency=eff, op_overhead_us=0.0)
    a, b = (next(o for o in estimate(_conv_model(c, c, 56, 3, group=c, relu=False), plain).ops) for c in (58, 64))
    assert a.ms / a.gflop == pytest.approx(b.ms / b.gflop, rel=1e-6)
