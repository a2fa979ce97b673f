"""The flatbuffer the writer produces: header fields, alignment, op codes, signature, determinism, >2 GB layout."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.convert import convert
from edgec.lower.tflite.writer import ALIGN
from tests.tflite.helpers import chain, run_both
from onnx import helper


def _conv_net():
    rng = np.random.default_rng(1)
    consts = {"w": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
              "b": rng.standard_normal(8).astype(np.float32),
              "fc": rng.standard_normal((10, 8)).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "fc"], ["logits"], transB=1)]
    return chain(nodes, {"x": [1, 3, 16, 16]}, ["logits"], consts)


def test_header_buffers_opcodes_signature():
    data = convert(_conv_net()).data
    assert data[4:8] == b"TFL3"
    model = S.ModelT.InitFromObj(S.Model.GetRootAs(data, 0))
    assert model.version == 3
    assert model.buffers[0].data is None and not model.buffers[0].offset
    for code in model.operatorCodes:
        assert code.deprecatedBuiltinCode == min(code.builtinCode, 127)
    sig = model.signatureDefs[0]
    assert sig.signatureKey.decode() == "serving_default"
    assert [m.name.decode() for m in sig.inputs] == ["x"] and [m.name.decode() for m in sig.outputs] == ["logits"]
    # every weight buffer starts on a 16-byte boundary of the file
    raw = S.Model.GetRootAs(data, 0)
    for i in range(1, raw.BuffersLength()):
        buf = raw.Buffers(i)
        if buf.DataLength():
            assert buf.DataAsNumpy().ctypes.data % ALIGN == np.frombuffer(data, np.uint8).ctypes.data % ALIGN


def test_deterministic_bytes():
    assert convert(_conv_net()).data == convert(_conv_net()).data


def test_external_buffers_layout_runs(tmp_path):
    """The >2 GB layout (weights after the flatbuffer, Buffer.offset/size) forced on a small model."""
    data = convert(_conv_net(), external=True).data
    raw = S.Model.GetRootAs(data, 0)
    offsets = [(raw.Buffers(i).Offset(), raw.Buffers(i).Size()) for i in range(raw.BuffersLength())]
    assert all(raw.Buffers(i).DataLength() == 0 for i in range(raw.BuffersLength()))
    assert all(o % ALIGN == 0 and o >= 16 for o, s in offsets if s)
    ref, got, _ = run_both(_conv_net(), external=True)
    np.testing.assert_allclose(got["logits"], ref["logits"], atol=1e-4, rtol=1e-4)


def test_scalar_constant_keeps_rank_zero():
    """A 0-d constant must stay 0-d in the flatbuffer (np.ascontiguousarray would make it shape [1])."""
    from edgec.lower.tflite.builder import ModelBuilder

    b = ModelBuilder()
    t = b.const(np.array(2, np.int32), "idx")
    assert b.tensors[t].shape == ()


def test_quantization_params_reach_the_flatbuffer():
    """The int8 plumbing: per-channel scale/zero-point on a constant land in QuantizationParameters."""
    from edgec.lower.tflite.builder import ModelBuilder, Quant
    from edgec.lower.tflite.writer import serialize

    b = ModelBuilder()
    x = b.tensor("x", (1, 4), np.int8, Quant([0.5], [3]))
    wq = b.const(np.ones((2, 4), np.int8), "w", Quant([0.1, 0.2], [0, 0], axis=0))
    y = b.tensor("y", (1, 2), np.int8, Quant([0.25], [-1]))
    b.inputs, b.outputs = [x], [y]
    b.op("FULLY_CONNECTED", [x, wq, -1], [y], S.FullyConnectedOptionsT())
    model = S.ModelT.InitFromObj(S.Model.GetRootAs(serialize(b, ([("x", x)], [("y", y)])), 0))
    q = {t.name.decode(): t.quantization for t in model.subgraphs[0].tensors}
    assert list(q["w"].scale) == pytest.approx([0.1, 0.2]) and q["w"].quantizedDimension == 0
    assert list(q["x"].zeroPoint) == [3] and list(q["y"].scale) == [0.25]


def test_metadata_round_trip_inline_and_external(tmp_path):
    from edgec.lower.tflite.writer import read_metadata

    for external in (False, True):
        path = tmp_path / f"m{external}.tflite"
        path.write_bytes(convert(_conv_net(), external=external, nhwc_io=True).data)
        assert read_metadata(path, "edgec_io_layout") == b'{"x": "NHWC"}'
        assert read_metadata(path, "nope") is None


def test_op_versions_follow_the_features_used():
    """5-D TRANSPOSE needs v4, grouped CONV_2D v6, TRANSPOSE_CONV with bias v3 / fused activation v4,
    fp16 DEQUANTIZE v3; plain float ops stay v1 (older runtimes can load them)."""
    from tests.tflite.test_ops import w

    nodes = [helper.make_node("Conv", ["x", "wg"], ["g"], group=2),
             helper.make_node("ConvTranspose", ["g", "wt", "bt"], ["t"], strides=[2, 2]),
             helper.make_node("Relu", ["t"], ["r"]),
             helper.make_node("Reshape", ["r", "s5"], ["r5"]),
             helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 4, 3]),
             helper.make_node("Reshape", ["t5", "s4"], ["y"])]
    consts = {"wg": w(4, 2, 1, 1), "wt": w(4, 4, 3, 3), "bt": w(4), "s5": np.array([1, 2, 2, 13, 13], np.int64),
              "s4": np.array([1, 4, 13, 13], np.int64)}
    data = convert(chain(nodes, {"x": [1, 4, 6, 6]}, ["y"], consts), fp16=True).data
    model = S.ModelT.InitFromObj(S.Model.GetRootAs(data, 0))
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    versions = {}
    for c in model.operatorCodes:
        versions.setdefault(names[c.builtinCode], set()).add(c.version)
    assert versions["CONV_2D"] == {6} and versions["TRANSPOSE_CONV"] == {4} and versions["DEQUANTIZE"] == {3}
    assert versions["TRANSPOSE"] == {1, 4}  # the 4-D boundary one and the 5-D shuffle
    assert versions["RESHAPE"] == {1}
