"""The first divergent layer (edgec.validate.layers): one op's lowering broken on purpose (Sigmoid lowered as
Tanh) is pinpointed as that op on android (LiteRT, all tensors kept), ios (MIL interpreter, every var) and
ort-mobile (the .ort's own graph read back), through channels-last layouts and fused ops."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec import api
from edgec.validate.layers import find_divergence


def _net() -> onnx.ModelProto:
    rng = np.random.default_rng(0)

    def w(*s):
        return (rng.standard_normal(s) * 0.3).astype(np.float32)

    c = {"w1": w(8, 3, 3, 3), "b1": w(8), "w2": w(8, 8, 3, 3), "b2": w(8), "w3": w(8, 8, 1, 1), "b3": w(8)}
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"), n("Relu", ["c1"], ["r1"], name="relu1"),
             n("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
             n("Sigmoid", ["c2"], ["s"], name="gate"), n("Conv", ["s", "w3", "b3"], ["c3"], name="conv3"),
             n("Add", ["c3", "r1"], ["y"], name="residual")]
    g = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 12, 12])],
                          [numpy_helper.from_array(v, k) for k, v in c.items()])
    return onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


def _break(monkeypatch, target):
    from edgec.lower.backend import get_backend

    get_backend({"android": "tflite", "ios": "coreml"}.get(target, "ort")).supported_ops()  # registries filled
    if target == "android":
        from edgec.lower.tflite import registry

        monkeypatch.setitem(registry.REGISTRY, "Sigmoid", registry.REGISTRY["Tanh"])
    elif target == "ios":
        from edgec.lower.coreml import registry

        monkeypatch.setitem(registry.REGISTRY, "Sigmoid", registry.REGISTRY["Tanh"])
    else:
        from edgec.lower.ort import backend

        real = backend.to_ort_format

        def wrong(model, *a, **k):
            m = onnx.ModelProto.FromString(model.SerializeToString())
            next(x for x in m.graph.node if x.op_type == "Sigmoid").op_type = "Tanh"
            return real(m, *a, **k)

        monkeypatch.setattr(backend, "to_ort_format", wrong)


@pytest.mark.parametrize("target", ["android", "ios", "ort-mobile"])
def test_broken_lowering_is_pinpointed(tmp_path, monkeypatch, target):
    path = tmp_path / "net.onnx"
    onnx.save(_net(), str(path))
    out = tmp_path / "ok"
    good = api.build(path, api.BuildOptions(target=target, out_dir=out, latency="off"))
    art = good.result.artifacts[0]
    feed = {"x": np.random.default_rng(1).standard_normal((1, 3, 12, 12)).astype(np.float32)}
    assert good.ok and find_divergence(_net(), art.artifact.format, art.final_path, feed, 0.999,
                                       art.artifact.details) is None

    _break(monkeypatch, target)
    bad = api.build(path, api.BuildOptions(target=target, out_dir=tmp_path / "bad", latency="off"))
    art = bad.result.artifacts[0]
    assert not bad.ok
    d = find_divergence(_net(), art.artifact.format, art.final_path, feed, 0.999, art.artifact.details)
    assert d is not None and (d.tensor, d.op, d.node) == ("s", "Sigmoid", "gate"), d
    assert d.inputs == ["Conv 'conv2'"] and d.consumers == ["Conv 'conv3'"]
    # the failed check names it too
    assert "first divergent tensor 's', output of Sigmoid 'gate'" in art.numerics.message


def test_validate_layers_on_demand(tmp_path, monkeypatch):
    """`edgec validate --layers` names the first divergent layer, pass or fail."""
    from typer.testing import CliRunner

    from edgec.cli import app

    path = tmp_path / "net.onnx"
    onnx.save(_net(), str(path))
    _break(monkeypatch, "android")
    api.build(path, api.BuildOptions(target="android", out_dir=tmp_path / "bad", latency="off"))
    r = CliRunner().invoke(app, ["validate", str(path), str(tmp_path / "bad" / "net.tflite"), "--layers"])
    assert r.exit_code == 11, r.output
    assert "layers: first divergent tensor 's', output of Sigmoid 'gate'" in " ".join(r.output.split())
