"""sample_apps: the edge-python app runs an edgec-built .ort on an image and agrees with ONNX Runtime on the
original model; the committed CI/Xcode glue is exactly what `edgec integrate` writes today (no drift)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from edgec import api
from edgec.integrate import templates

APPS = Path(__file__).resolve().parents[2] / "sample_apps"


def _load_classify():
    spec = importlib.util.spec_from_file_location("edge_classify", APPS / "edge-python" / "classify.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def photo(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:300, 0:400]
    rgb = np.stack([xx * 255 / 400, yy * 255 / 300, 128 + 60 * np.sin(xx / 17.0)], -1) + rng.normal(0, 12, (300, 400, 3))
    path = tmp_path / "photo.png"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


def test_edge_python_app_matches_onnxruntime_on_the_original(tmp_path, photo):
    from edgec.samples import randomized

    model = randomized("squeezenet")
    out = tmp_path / "dist"
    outcome = api.build(model, api.BuildOptions(target="ort-mobile", out_dir=out, model_name="squeezenet",
                                                validate=False))
    assert outcome.ok
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"class-{i}" for i in range(1000)))
    done = subprocess.run([sys.executable, str(APPS / "edge-python" / "classify.py"), str(out / "squeezenet.ort"),
                           str(photo), "--labels", str(labels), "--json", "--top", "5"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)

    # the reference: the same preprocessing through ONNX Runtime on the original .onnx
    classify = _load_classify()
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    x = classify.preprocess(photo, 224, 224)
    assert x.shape == (1, 3, 224, 224) and abs(float(x.mean())) < 3
    ref = sess.run(None, {inp.name: x})[0].reshape(-1).astype(np.float64)
    ref_probs = ref if np.all(ref >= 0) and abs(ref.sum() - 1) < 1e-3 else classify.softmax(ref)
    want = np.argsort(-ref_probs, kind="stable")[:5]
    assert [t["index"] for t in got["top"]] == [int(i) for i in want]
    assert [t["label"] for t in got["top"]] == [f"class-{int(i)}" for i in want]
    np.testing.assert_allclose([t["probability"] for t in got["top"]], ref_probs[want], rtol=1e-4, atol=1e-6)
    assert got["ms"] > 0


def test_committed_glue_is_what_edgec_integrate_writes(tmp_path):
    wf = templates.github_actions("models/squeezenet.onnx", tmp_path / "ci")[0]
    assert (APPS / "ci" / ".github" / "workflows" / "edgec.yml").read_text() == wf.read_text()
    for f in templates.xcode("Resources/squeezenet.onnx", tmp_path / "ios", dest="EdgecDemo/Models"):
        assert (APPS / "ios" / f.name).read_text() == f.read_text(), f.name
    kts = templates.gradle("src/main/ml/squeezenet.onnx", tmp_path / "android")[0].read_text()
    app_build = (APPS / "android" / "app" / "build.gradle.kts").read_text()
    assert kts in app_build, "app/build.gradle.kts must embed `edgec integrate gradle` output verbatim"
