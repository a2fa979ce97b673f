"""bench/published_latency.yaml: every published figure carries its source, date and the source's own line,
names a built-in profile, and names an edgec model that exists (or none, then it stays out of the median)."""

from pathlib import Path

import pytest
import yaml

from edgec.config.loader import builtin_profile_names
from edgec.samples import LIGHT_MODELS
from tests.zoo import INPUT_SHAPES

DATA = Path(__file__).resolve().parents[2] / "bench" / "published_latency.yaml"
FIGURES = yaml.safe_load(DATA.read_text())["figures"]


@pytest.mark.parametrize("fig", FIGURES, ids=[f"{f['profile']}-{f.get('model') or f['published_model']}" for f in FIGURES])
def test_figure_is_sourced_and_buildable(fig):
    for key in ("device", "published_model", "runtime", "precision", "source", "date", "quote"):
        assert str(fig.get(key) or "").strip(), f"{key} missing"
    assert fig["profile"] in builtin_profile_names()
    assert float(fig["ms"]) > 0
    assert str(fig["ms"]) in fig["quote"]  # the number is the source's, as printed there
    if fig.get("model") is None:
        assert fig.get("compare") is False  # nothing to estimate: cannot count in the median
    else:
        # a light sample, a torch zoo export, or an architecture bench/ writes as ONNX (bench/mobilenet_v1.py)
        bench_model = (DATA.parent / f"{fig['model']}.py").exists()
        assert fig["model"] in LIGHT_MODELS or fig["model"] in INPUT_SHAPES or bench_model
        if fig.get("input"):
            assert len(fig["input"]) == 4 and fig["input"][:2] == [1, 3]


def test_at_least_six_cpu_figures_count():
    counted = [f for f in FIGURES if f.get("model") and f.get("compare", True)]
    assert len(counted) >= 6


def test_bench_mobilenet_v1_is_the_published_architecture():
    """bench/mobilenet_v1.py: MobileNetV1 1.0 224 (569M multiply-adds, 4.2M weights), deterministic bytes."""
    import sys

    import numpy as np
    import onnxruntime as ort

    sys.path.insert(0, str(DATA.parent))
    import mobilenet_v1

    model = mobilenet_v1.build()
    assert model.SerializeToString() == mobilenet_v1.build().SerializeToString()
    weights = sum(int(np.prod(i.dims)) for i in model.graph.initializer if len(i.dims) == 4)
    assert 4.2e6 < weights < 4.25e6
    macs, size = 0, 112  # per conv: output pixels x kernel taps x in/group x out channels
    shapes = {i.name: list(i.dims) for i in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Conv":
            cout, cin_g, k, _ = shapes[n.input[1]]
            stride = dict((a.name, a.ints) for a in n.attribute)["strides"][0]
            if n.input[1] != "conv0_w" and stride == 2:
                size //= 2
            out = 1 if n.input[1] == "logits_w" else size
            macs += out * out * k * k * cin_g * cout
    assert 568e6 < macs < 572e6
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    probs = sess.run(None, {"input": np.zeros((1, 3, 224, 224), np.float32)})[0]
    assert probs.shape == (1, 1001) and abs(float(probs.sum()) - 1) < 1e-4
