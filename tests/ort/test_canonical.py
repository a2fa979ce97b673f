"""ORT-format canonicalisation: raw ORT conversions differ run to run, canonical ones never, and run identically."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from edgec import samples
from edgec.errors import LoweringError
from edgec.lower.ort import convert
from edgec.lower.ort.canonical import canonicalize_ort
from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import InferenceSession

TRIES = 10


def _raw_ort(model, tmp_path, monkeypatch, style="fixed", i=0, level="extended"):
    """What ONNX Runtime itself writes (edgec's converter with the canonical rewrite switched off)."""
    monkeypatch.setattr(convert, "canonicalize_ort", lambda data: data)
    path = tmp_path / f"raw{i}.ort"
    convert.to_ort_format(model, path, level, style, "ort-mobile")
    monkeypatch.undo()
    return path.read_bytes()


def _two_different_raw(model, tmp_path, monkeypatch, style="fixed", level="extended"):
    """Convert until two raw outputs differ in bytes: proves there is something to canonicalise."""
    raws = [_raw_ort(model, tmp_path, monkeypatch, style, 0, level)]
    for i in range(1, TRIES):
        raws.append(_raw_ort(model, tmp_path, monkeypatch, style, i, level))
        if raws[-1] != raws[0]:
            return raws
    pytest.fail(f"{TRIES} raw ORT conversions were all byte-identical: the canonicalisation test proves nothing")


def _run(data, feeds, **config):
    so = ort.SessionOptions()
    for k, v in config.items():
        so.add_session_config_entry(k, v)
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"]).run(None, feeds)


def _image_feeds(model, seed):
    (inp,) = [i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}]
    shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
    return {inp.name: np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


def _resolver(data):
    r = InferenceSession.InferenceSession.GetRootAs(data, 0).KernelTypeStrResolver()
    out = []
    for i in range(r.OpKernelTypeStrArgsLength()):
        e = r.OpKernelTypeStrArgs(i)
        ts = [e.KernelTypeStrArgs(j) for j in range(e.KernelTypeStrArgsLength())]
        out.append((e.OpId(), [(t.KernelTypeStr(), [(t.Args(k).ArgType(), t.Args(k).Index())
                                                    for k in range(t.ArgsLength())]) for t in ts]))
    return out


def _check(raws, feeds_list):
    canon = [canonicalize_ort(r) for r in raws]
    assert all(c == canon[0] for c in canon), "canonical bytes differ between conversions"
    assert canonicalize_ort(canon[0]) == canon[0]  # idempotent
    assert canon[0][4:8] == b"ORTM"
    # same resolver content, now sorted at both hash-map levels
    got, want = _resolver(canon[0]), _resolver(raws[0])
    assert sorted((op, sorted(ts)) for op, ts in want) == got
    assert [op for op, _ in got] == sorted(op for op, _ in got) and len(got) > 0
    for feeds in feeds_list:
        for raw in raws:
            for a, b in zip(_run(raw, feeds), _run(canon[0], feeds), strict=True):
                assert a.dtype == b.dtype and np.array_equal(a, b)
    return canon[0]


@pytest.mark.parametrize("name,style,level", [("squeezenet", "fixed", "extended"), ("shufflenet", "fixed", "all"),
                                              ("squeezenet", "runtime", "extended")])
def test_light_model_conversions_become_byte_identical(name, style, level, tmp_path, monkeypatch):
    model = onnx.load(str(samples.randomized(name)))
    raws = _two_different_raw(model, tmp_path, monkeypatch, style, level)
    canon = _check(raws, [_image_feeds(model, 0), _image_feeds(model, 1)])
    # the rewrite only touches the front: the Model (all initializers) is kept byte for byte at the back
    tail = len(raws[0]) // 2
    assert canon[-tail:] == raws[0][-tail:] and abs(len(canon) - len(raws[0])) < 4096


def test_large_initializers_keep_their_alignment(tmp_path, monkeypatch):
    """resnet50 (100 MB of weights): every raw_data vector keeps its address mod 64 (whatever alignment ORT gave
    it), and the canonical model runs exactly like the raw one.

    (ORT's in-place initializer option, session.use_ort_model_bytes_for_initializers, cannot be tested from
    Python: the binding does not keep the bytes alive, and it crashes on ORT's own raw output too.)"""
    model = onnx.load(str(samples.randomized("resnet50")))
    raws = _two_different_raw(model, tmp_path, monkeypatch)
    canon = canonicalize_ort(raws[1])
    assert canon == canonicalize_ort(raws[0])

    def raw_data_addresses(data):
        g = InferenceSession.InferenceSession.GetRootAs(data, 0).Model().Graph()
        tabs = [g.Initializers(i)._tab for i in range(g.InitializersLength())]
        return [t.Vector(t.Offset(12)) for t in tabs if t.Offset(12)]

    before, after = raw_data_addresses(raws[0]), raw_data_addresses(canon)
    assert len(before) > 50 and [a % 64 for a in before] == [a % 64 for a in after]
    feeds = _image_feeds(model, 0)
    for a, b in zip(_run(raws[0], feeds), _run(canon, feeds), strict=True):
        assert np.array_equal(a, b)


def _subgraph_model():
    """If + Loop whose branches/body use outer-scope values: the resolver covers the subgraphs' ops too."""
    f = TensorProto.FLOAT
    then_g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", f, [2, 3])])
    else_g = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", f, [2, 3])])
    body = helper.make_graph(
        [helper.make_node("Identity", ["c_in"], ["c_out"]),
         helper.make_node("Mul", ["acc_in", "x"], ["m"]),
         helper.make_node("Tanh", ["m"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", f, [2, 3])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_out", f, [2, 3])],
    )
    nodes = [
        helper.make_node("If", ["cond"], ["y_if"], then_branch=then_g, else_branch=else_g, name="if"),
        helper.make_node("Loop", ["trips", "", "y_if"], ["y"], body=body, name="loop"),
    ]
    graph = helper.make_graph(
        nodes, "sub",
        [helper.make_tensor_value_info("x", f, [2, 3]), helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", f, [2, 3])],
        [helper.make_tensor("trips", TensorProto.INT64, [], [3])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_model_with_subgraphs(tmp_path, monkeypatch):
    model = _subgraph_model()
    onnx.checker.check_model(model, full_check=True)
    raws = _two_different_raw(model, tmp_path, monkeypatch)
    x = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)
    feeds = [{"x": x, "cond": np.array(c)} for c in (True, False)]
    canon = _check(raws, feeds)
    ops = {op.split(b":")[1] for op, _ in _resolver(canon)}
    assert {b"If", b"Loop", b"Add", b"Sigmoid", b"Mul", b"Tanh"} <= ops
    # and the canonical model computes what the ONNX model means
    ref = _run(model.SerializeToString(), feeds[0])[0]
    assert np.allclose(_run(canon, feeds[0])[0], ref)


def test_edgec_conversion_is_deterministic(tmp_path):
    model = onnx.load(str(samples.randomized("squeezenet")))
    outs = []
    for i in range(3):
        convert.to_ort_format(model, tmp_path / f"{i}.ort", "extended", "fixed", "ort-mobile")
        outs.append((tmp_path / f"{i}.ort").read_bytes())
    assert outs[0] == outs[1] == outs[2]


def test_int8_at_level_all_gets_nhwc_kernels_and_stays_canonical(tmp_path, monkeypatch):
    """Level 'all' (the ort-mobile target's, NCHWc left out) turns QLinearConv/MaxPool into the CPU provider's
    NHWC kernels; those files canonicalise too, and compute what the QDQ model means."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from edgec.quantize.int8 import to_qdq_opset

    model = to_qdq_opset(onnx.load(str(samples.randomized("squeezenet"))))  # per-channel DQ needs opset >= 13
    feeds = [_image_feeds(model, s) for s in range(3)]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds[:2])

        def get_next(self):
            return next(self.it, None)

    onnx.save(model, str(tmp_path / "f.onnx"))
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    qdq = onnx.load(str(tmp_path / "q.onnx"))
    raws = _two_different_raw(qdq, tmp_path, monkeypatch, "fixed", "all")
    canon = _check(raws, feeds[2:])
    assert b"NhwcMaxPool" in canon
    ref = _run(qdq.SerializeToString(), feeds[2])[0]
    assert np.abs(_run(canon, feeds[2])[0] - ref).max() <= 0.02 * np.abs(ref).max()


def test_not_an_ort_model_is_an_error():
    with pytest.raises(LoweringError, match="ORTM"):
        canonicalize_ort(b"\x08\x07" + b"\x00" * 30)


def test_resolver_written_before_the_model_is_refused():
    """The rewrite relies on ORT writing the resolver after the Model; a file laid out otherwise is an error."""
    import flatbuffers
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import (
        KernelTypeStrResolver as R, Model as M, OpIdKernelTypeStrArgsEntry as E)

    b = flatbuffers.Builder(0)
    op_id = b.CreateString("ai.onnx:Relu:14")
    E.Start(b), E.AddOpId(b, op_id)
    entry = E.End(b)
    b.StartVector(4, 1, 4), b.PrependUOffsetTRelative(entry)
    entries = b.EndVector()
    R.Start(b), R.AddOpKernelTypeStrArgs(b, entries)
    resolver = R.End(b)
    M.Start(b), M.AddIrVersion(b, 8)
    model = M.End(b)
    InferenceSession.Start(b), InferenceSession.AddModel(b, model)
    InferenceSession.AddKernelTypeStrResolver(b, resolver)
    b.Finish(InferenceSession.End(b), file_identifier=b"ORTM")
    with pytest.raises(LoweringError, match="laid out"):
        canonicalize_ort(bytes(b.Output()))


def test_session_without_resolver_stays_without_one():
    import flatbuffers
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import Model as M

    b = flatbuffers.Builder(0)
    version = b.CreateString("6")
    M.Start(b), M.AddIrVersion(b, 8)
    model = M.End(b)
    InferenceSession.Start(b), InferenceSession.AddOrtVersion(b, version), InferenceSession.AddModel(b, model)
    b.Finish(InferenceSession.End(b), file_identifier=b"ORTM")
    out = canonicalize_ort(bytes(b.Output()))
    s = InferenceSession.InferenceSession.GetRootAs(out, 0)
    assert s.KernelTypeStrResolver() is None and s.OrtVersion() == b"6" and s.Model().IrVersion() == 8
    assert canonicalize_ort(out) == out
