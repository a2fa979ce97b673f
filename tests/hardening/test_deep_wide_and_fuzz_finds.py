"""Issue 21: a deep graph (100k nodes) and a wide one (10k inputs) go through edgec's graph side without a
RecursionError or a quadratic walk; and the bad cases the mutation fuzz found, each as its own test."""

from __future__ import annotations

import time

import onnx
import pytest
from onnx import TensorProto, helper

from edgec.errors import ModelLoadError
from edgec.graph.limits import check_inferred
from edgec.graph.load import load_model_renamed
from edgec.graph.shapes import fix_input_shapes
from edgec.graph.info import model_info
from tests.hardening.models import lstm


def _save(model, path):
    onnx.save(model, str(path))
    return path


def deep(n: int) -> onnx.ModelProto:
    nodes, prev = [], "x"
    for i in range(n):
        out = f"t{i}" if i < n - 1 else "y"
        nodes.append(helper.make_node("Relu" if i % 2 else "Neg", [prev], [out], name=f"n{i}"))
        prev = out
    g = helper.make_graph(nodes, "deep", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def wide(n: int) -> onnx.ModelProto:
    ins = [helper.make_tensor_value_info(f"i{k}", TensorProto.FLOAT, [1, 2]) for k in range(n)]
    g = helper.make_graph([helper.make_node("Sum", [f"i{k}" for k in range(n)], ["s"], name="sum"),
                           helper.make_node("Relu", ["s"], ["y"], name="relu")], "wide", ins,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("make,shapes", [(lambda: deep(100_000), {"x": [1, 4]}), (lambda: wide(10_000), {})],
                         ids=["deep-100k-nodes", "wide-10k-inputs"])
def test_graph_side_takes_deep_and_wide_graphs(make, shapes, tmp_path):
    import sys

    from edgec.graph.passes import run_passes
    from edgec.lower.backend import get_backend
    from edgec.quantize.fp16 import topo_sort

    path = _save(make(), tmp_path / "m.onnx")
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # any recursion over the graph's depth fails loudly, not only past 1000
    try:
        t0 = time.perf_counter()
        model, renamed = load_model_renamed(path)
        assert renamed == {}
        fix_input_shapes(model, shapes, str(path))
        check_inferred(model, str(path))
        model_info(model, path)
        run_passes(model)
        topo_sort(model.graph)  # was a sweep per level: quadratic on a chain (hours for 100k nodes)
        assert get_backend("ort").unsupported(model) == []
        assert time.perf_counter() - t0 < 120  # linear walks (a quadratic one would take hours here)
    finally:
        sys.setrecursionlimit(limit)


def test_graph_without_outputs_is_a_model_error(tmp_path):
    # fuzz lstm:0 [structure] "no graph outputs": exit 70 from ONNX Runtime ("At least one output should be
    # requested") in every target's prepare stage
    m = lstm()
    del m.graph.output[:]
    with pytest.raises(ModelLoadError, match="no outputs"):
        load_model_renamed(_save(m, tmp_path / "m.onnx"))


@pytest.mark.parametrize("key,value", [("offset", "x"), ("length", "4"), ("offset", "999999")])
def test_external_data_with_a_bad_offset_or_length_is_a_model_error(tmp_path, key, value):
    # fuzz attention:36 [external] offset 'x': ValueError from onnx (exit 70); a short length or an offset past
    # the end of the file gave a tensor with fewer bytes than its dims need
    from tests.hardening.models import attention

    m = attention()
    t = m.graph.initializer[0]
    (tmp_path / "weights.bin").write_bytes(t.raw_data)
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "weights.bin"), (key, value)):
        e = t.external_data.add()
        e.key, e.value = k, v
    with pytest.raises(ModelLoadError):
        load_model_renamed(_save(m, tmp_path / "m.onnx"))


def test_input_shape_the_weights_disagree_with_is_a_shape_error(tmp_path):
    # fuzz lstm:7006 [shape] "x dim = 2": ONNX Runtime's InvalidArgument (LSTM W must be {1,48,2}) in every
    # target's prepare stage, exit 70
    from edgec import api
    from edgec.errors import ShapeError

    m = lstm()
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 2
    with pytest.raises(ShapeError, match="ONNX Runtime cannot run the model with inputs"):
        api.build(_save(m, tmp_path / "m.onnx"), api.BuildOptions(target="ort-mobile", out_dir=tmp_path / "o",
                                                                  validate=False))
    assert not (tmp_path / "o").exists()


def test_conv_whose_output_shape_is_unknown_is_unsupported_for_tflite(tmp_path):
    # fuzz cnn:17 [shape] "dropped a dim of x": the 2-D Conv got a rank-3 input, shape inference left its output
    # without a shape, and the TFLite layout pass raised KeyError (exit 70) in android's prepare stage
    from edgec import api
    from edgec.errors import UnsupportedOp
    from tests.hardening.models import cnn

    m = cnn()
    del m.graph.input[0].type.tensor_type.shape.dim[3]
    with pytest.raises(UnsupportedOp, match="Conv node 'conv1'"):
        api.build(_save(m, tmp_path / "m.onnx"), api.BuildOptions(target="android", out_dir=tmp_path / "o",
                                                                  validate=False))
    assert not (tmp_path / "o").exists()


def test_axis_outside_any_valid_range_is_a_model_error(tmp_path):
    # fuzz attention:95 [attribute] softmax.axis = 2**33: MemoryError building range(axis) in the TFLite lowering
    # (exit 70), an AxisError in the MIL interpreter, and ONNX Runtime read it as axis 0 (int32 truncation)
    from edgec import api
    from tests.hardening.models import attention

    m = attention()
    (axis,) = [a for n in m.graph.node if n.name == "softmax" for a in n.attribute if a.name == "axis"]
    axis.i = 1 << 33
    with pytest.raises(ModelLoadError, match="node 'softmax' \\(Softmax\\) has axis=8589934592"):
        api.build(_save(m, tmp_path / "m.onnx"), api.BuildOptions(target="all", out_dir=tmp_path / "o",
                                                                  validate=False))
    assert not (tmp_path / "o").exists()
    axis.i = -3  # in range: builds
    api.build(_save(m, tmp_path / "ok.onnx"), api.BuildOptions(target="ort-mobile", out_dir=tmp_path / "ok",
                                                               validate=False))


@pytest.mark.parametrize("which,elem", [("input", 0), ("output", 99)])
def test_io_element_type_onnx_does_not_define_is_a_model_error(tmp_path, which, elem):
    # fuzz cnn:154 [dtype] "x elem_type 0" and attention:209 [dtype] "y elem_type 99": the ONNX checker passes
    # them, then KeyError (exit 70) in the manifest's model info and in every target's prepare stage
    from tests.hardening.models import cnn

    m = cnn()
    (m.graph.input if which == "input" else m.graph.output)[0].type.tensor_type.elem_type = elem
    with pytest.raises(ModelLoadError, match=f"graph {which} '.*' has element type {elem}"):
        load_model_renamed(_save(m, tmp_path / "m.onnx"))


def test_transpose_perm_that_does_not_permute_its_input_is_a_model_error(tmp_path):
    # fuzz attention:199 [shape] "dropped a dim of x": K became rank 2 under a rank-3 perm; IndexError in the
    # TFLite Transpose lowering (exit 70)
    from edgec import api
    from tests.hardening.models import attention

    m = attention()
    del m.graph.input[0].type.tensor_type.shape.dim[0]
    with pytest.raises(ModelLoadError, match=r"node 'kt' \(Transpose\) has perm=\[0, 2, 1\]"):
        api.build(_save(m, tmp_path / "m.onnx"), api.BuildOptions(target="android", out_dir=tmp_path / "o",
                                                                  validate=False))
