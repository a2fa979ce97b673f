"""Batch-polymorphic .tflite (tflite.dynamic_batch): built at batch 1, resized in LiteRT to N = 1, 3, 8 and
compared with ONNX Runtime on the symbolic-batch ONNX model at that N (outputs and output deltas)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ai_edge_litert import schema_py_generated as S
from onnx import helper, numpy_helper

from edgec.prepare import prepare
from edgec.lower.tflite.convert import convert
from edgec.samples import randomized
from edgec.runtimes.host_litert import LiteRTRunner
from tests.tflite.helpers import cosine

BATCHES = (1, 3, 8)


def symbolic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """Copy of `model` whose inputs' and outputs' axis 0 is the symbol N (intermediate shapes dropped)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    inits = {t.name for t in out.graph.initializer}
    for vi in list(out.graph.input) + list(out.graph.output):
        if vi.name not in inits and vi.type.tensor_type.shape.dim:
            vi.type.tensor_type.shape.dim[0].dim_param = "N"
    del out.graph.value_info[:]
    # exporters bake batch 1 into Reshape targets; a dynamic export copies axis 0 (0) instead
    targets = {n.input[1] for n in out.graph.node if n.op_type == "Reshape"}
    tensors = [t for t in out.graph.initializer if t.name in targets] + [
        n.attribute[0].t for n in out.graph.node if n.op_type == "Constant" and n.output[0] in targets]
    for t in tensors:
        value = numpy_helper.to_array(t)
        if value.ndim == 1 and value.size and value[0] == 1:
            t.CopyFrom(numpy_helper.from_array(np.concatenate([[0], value[1:]]).astype(value.dtype), t.name))
    return out


def build(model: onnx.ModelProto, tmp_path, name: str = "m", **kw):
    """Prepare at batch 1 (as the build does) and lower with dynamic_batch; (Converted, path)."""
    shapes = {vi.name: [1] + [d.dim_value for d in vi.type.tensor_type.shape.dim][1:] for vi in model.graph.input
              if vi.name not in {t.name for t in model.graph.initializer}}
    src = tmp_path / f"{name}.onnx"
    onnx.save(model, src)
    prepared = prepare(model, shapes, str(src))
    res = convert(prepared.model, dynamic_batch=True, **kw)
    path = tmp_path / f"{name}.tflite"
    if res.data:
        path.write_bytes(res.data)
    return res, path, shapes


def check_batches(model: onnx.ModelProto, tmp_path, name: str = "m", min_cos: float = 0.9999, batches=BATCHES,
                  **kw):
    res, path, shapes = build(model, tmp_path, name, **kw)
    assert not res.problems, res.problems
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    runner = LiteRTRunner(path, threads=2)
    rng = np.random.default_rng(0)
    for n in batches:
        feeds = [{k: rng.standard_normal([n] + s[1:]).astype(np.float32) for k, s in shapes.items()}
                 for _ in range(2)]
        ref = [dict(zip(names, sess.run(None, f))) for f in feeds]
        got = [runner.run(f) for f in feeds]
        for k in names:
            assert got[0][k].shape == ref[0][k].shape, (n, k, got[0][k].shape, ref[0][k].shape)
            for b in range(n):  # every batch item, not only the first
                assert cosine(ref[0][k][b], got[0][k][b]) >= min_cos, (name, n, k, b)
            d = cosine(ref[0][k] - ref[1][k], got[0][k] - got[1][k])
            assert d >= min_cos, (name, n, k, "delta", d)
    return res, path


def signatures(path) -> dict[str, list[int]]:
    """{signature (ONNX) name: shape_signature} of the model inputs and outputs."""
    m = S.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    tensors, sig = m.subgraphs[0].tensors, m.signatureDefs[0]
    return {e.name.decode(): [int(d) for d in tensors[e.tensorIndex].shapeSignature]
            for e in list(sig.inputs) + list(sig.outputs)}


@pytest.mark.parametrize("name", ["squeezenet", "shufflenet", "resnet50"])
def test_light_model_any_batch(name, tmp_path):
    res, path = check_batches(symbolic_batch(onnx.load(randomized(name))), tmp_path, name)
    assert all(sig[0] == -1 for sig in signatures(path).values()), signatures(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inception_v1", "inception_v2", "densenet121", "alexnet", "vgg19", "zfnet512"])
def test_other_light_models_any_batch(name, tmp_path):
    test_light_model_any_batch(name, tmp_path)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "resnet18",
                                  "shufflenet_v2_x1_0", "squeezenet1_1", "transformer_block", "detection_head"])
def test_zoo_model_any_batch(name, tmp_path):
    from tests.zoo import zoo_model

    res, path = check_batches(symbolic_batch(onnx.load(zoo_model(name))), tmp_path, name)
    assert all(sig[0] == -1 for sig in signatures(path).values()), signatures(path)


def _graph(nodes, in_shapes, outputs, consts=None):
    from tests.tflite.helpers import chain

    return symbolic_batch(chain(nodes, in_shapes, outputs, consts))


def test_slice_over_whole_batch_axis_uses_end_mask(tmp_path):
    big = np.iinfo(np.int64).max
    model = _graph([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"], name="slice"),
                    helper.make_node("Relu", ["y"], ["z"], name="relu")], {"x": [1, 8, 6]}, ["z"],
                   {"s": np.array([0, 2], np.int64), "e": np.array([big, 5], np.int64), "a": np.array([0, 1], np.int64)})
    check_batches(model, tmp_path, min_cos=0.99999)


def test_concat_on_batch_axis_follows_the_batch(tmp_path):
    model = _graph([helper.make_node("Exp", ["x"], ["e"], name="exp"),
                    helper.make_node("Concat", ["x", "e"], ["y"], name="cat", axis=0)], {"x": [1, 5]}, ["y"])
    check_batches(model, tmp_path, min_cos=0.99999)


@pytest.mark.parametrize("case", ["pad_edge_batch", "gather_batch", "reduce_batch", "slice_batch_item"])
def test_batch_baked_ops_are_refused_by_node(case, tmp_path):
    """Ops whose lowering would be wrong at N > 1 are an UnsupportedOp entry naming the node, never a model."""
    if case == "pad_edge_batch":  # (B + 1) rows: not proportional to the batch
        model = _graph([helper.make_node("Pad", ["x", "p"], ["y"], name="pad", mode="edge")], {"x": [1, 4]}, ["y"],
                       {"p": np.array([1, 0, 0, 0], np.int64)})
        node = "pad"
    elif case == "gather_batch":
        model = _graph([helper.make_node("Gather", ["x", "i"], ["y"], name="gather", axis=0)], {"x": [1, 4]}, ["y"],
                       {"i": np.array([0], np.int64)})
        node = "gather"
    elif case == "reduce_batch":
        model = _graph([helper.make_node("ReduceMean", ["x"], ["y"], name="mean", axes=[0], keepdims=1)],
                       {"x": [1, 4]}, ["y"])
        model.opset_import[0].version = 13
        node = "mean"
    else:
        model = _graph([helper.make_node("Slice", ["x", "s", "e", "a"], ["y"], name="first")], {"x": [1, 4]}, ["y"],
                       {"s": np.array([0], np.int64), "e": np.array([1], np.int64), "a": np.array([0], np.int64)})
        node = "first"
    res, _, _ = build(model, tmp_path)
    assert res.data is None and res.problems, res.problems
    assert any(name == node and "dynamic batch" in why for _, name, why in res.problems), res.problems


def _small_convnet() -> onnx.ModelProto:
    """Conv -> Relu -> MaxPool -> Conv -> GlobalAveragePool -> Flatten -> Gemm at batch 1, random weights."""
    from tests.tflite.helpers import chain

    rng = np.random.default_rng(3)
    w = {"w1": rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3,
         "w2": rng.standard_normal((16, 8, 3, 3)).astype(np.float32) * 0.2,
         "fc": rng.standard_normal((10, 16)).astype(np.float32) * 0.3, "fb": rng.standard_normal(10).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["c2"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fc", "fb"], ["y"], name="fc", transB=1)]
    return chain(nodes, {"x": [1, 3, 16, 16]}, ["y"], w)


def test_fp16_weights_any_batch(tmp_path):
    check_batches(symbolic_batch(_small_convnet()), tmp_path, min_cos=0.999, fp16=True)


def test_channels_last_io_any_batch(tmp_path):
    res, path = check_batches(symbolic_batch(_small_convnet()), tmp_path, nhwc_io=True)
    assert signatures(path)["x"] == [-1, 16, 16, 3]


@pytest.mark.parametrize("int8_io", [False, True])
def test_int8_qdq_any_batch(int8_io, tmp_path):
    from tests.tflite.test_int8 import qdq

    model = symbolic_batch(qdq(_small_convnet()))
    res, path = check_batches(model, tmp_path, min_cos=0.99, int8_io=int8_io)
    assert res.stats["int8"]["int8_ops"], res.stats["int8"]


def test_runner_refuses_another_batch_on_a_static_file(tmp_path):
    from edgec.errors import ShapeError

    res = convert(_small_convnet())
    path = tmp_path / "static.tflite"
    path.write_bytes(res.data)
    runner = LiteRTRunner(path)
    assert runner.run({"x": np.ones((1, 3, 16, 16), np.float32)})["y"].shape == (1, 10)
    with pytest.raises(ShapeError, match="dynamic_batch"):
        runner.run({"x": np.ones((2, 3, 16, 16), np.float32)})


def test_default_build_has_no_shape_signature(tmp_path):
    """Option off: no shape_signature at all (the bytes of fp32 builds are what they were before the option)."""
    m = S.ModelT.InitFromPackedBuf(convert(_small_convnet()).data, 0)
    assert all(t.shapeSignature is None for t in m.subgraphs[0].tensors)


def test_build_with_profile_dynamic_batch(tmp_path):
    """`edgec build` path: profile tflite.dynamic_batch -> validated at batch 1, file resizable to batch 3."""
    from edgec.api import BuildOptions
    from edgec.api import build as edgec_build
    from edgec.config.loader import BUILTIN_PROFILES

    text = (BUILTIN_PROFILES / "pixel-8.yaml").read_text().replace("name: pixel-8", "name: pixel-8-dynbatch")
    profile = tmp_path / "pixel-8-dynbatch.yaml"
    profile.write_text(text + "tflite: {dynamic_batch: true}\n")
    model = symbolic_batch(_small_convnet())
    src = tmp_path / "net.onnx"
    onnx.save(model, src)
    outcome = edgec_build(src, BuildOptions(profile=str(profile), out_dir=tmp_path / "out", latency="off",
                                            input_shapes=["x=1,3,16,16"]))
    assert outcome.ok, outcome.failures
    (art,) = outcome.result.artifacts
    assert art.artifact.details["dynamic_batch"] == {"batch": 1, "probes": [3, 5]}
    assert any("dynamic batch" in n for n in art.artifact.notes)
    assert signatures(art.final_path) == {"x": [-1, 3, 16, 16], "y": [-1, 10]}
    x = np.random.default_rng(1).standard_normal((3, 3, 16, 16)).astype(np.float32)
    ref = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = LiteRTRunner(art.final_path).run({"x": x})["y"]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_transpose_of_the_batch_axis(tmp_path):
    """Sequence-first style: the batch moves to axis 1 and back, softmax over the sequence. At batch 1 a
    Transpose that only moves the size-1 batch axis is a RESHAPE; the file is lowered at batch > 1 instead."""
    w = np.random.default_rng(2).standard_normal((16, 12)).astype(np.float32)
    model = _graph([helper.make_node("Transpose", ["x"], ["t"], name="to_seq_first", perm=[1, 0, 2]),
                    helper.make_node("MatMul", ["t", "w"], ["m"], name="proj"),
                    helper.make_node("Softmax", ["m"], ["s"], name="softmax", axis=0),
                    helper.make_node("Transpose", ["s"], ["y"], name="to_batch_first", perm=[1, 0, 2])],
                   {"x": [1, 8, 16]}, ["y"], {"w": w})
    check_batches(model, tmp_path, min_cos=0.99999)


@pytest.mark.parametrize("pads", [[0, 0, 0, 0], [1, 1, 0, 1]])
def test_conv_transpose_any_batch(pads, tmp_path):
    """TRANSPOSE_CONV's output_shape is computed at run time from its input's batch (SHAPE -> STRIDED_SLICE ->
    CONCATENATION); the crop for ONNX pads is a SLICE whose batch size is -1."""
    w = np.random.default_rng(4).standard_normal((2, 3, 3, 3)).astype(np.float32)
    model = _graph([helper.make_node("ConvTranspose", ["x", "w"], ["c"], name="deconv", strides=[2, 2], pads=pads),
                    helper.make_node("Relu", ["c"], ["y"], name="relu")], {"x": [1, 2, 5, 5]}, ["y"], {"w": w})
    res, _ = check_batches(model, tmp_path, min_cos=0.99999)
    assert res.op_histogram.get("SHAPE") == 1, res.op_histogram
