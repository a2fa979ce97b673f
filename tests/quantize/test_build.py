"""Quantized builds through the real pipeline and ONNX Runtime: each mode, calibration errors, accuracy gates."""

import json

import numpy as np
import pytest

from edgec import api
from edgec.cli import app
from edgec.samples import randomized

from .helpers import classifier, npy_folder, save, write_profile

pytestmark = pytest.mark.filterwarnings("ignore::edgec.quantize.calibration.CalibrationWarning")


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def _build(model, tmp_path, out="out", **profile):
    prof = write_profile(tmp_path, **profile)
    return api.build(model, api.BuildOptions(target="ort-mobile", profile=str(prof), out_dir=tmp_path / out))


def test_int8_static_squeezenet_with_npy_calibration(tmp_path):
    calib = npy_folder(tmp_path / "calib", [1, 3, 224, 224], 10)  # 6 calibrate, 4 held out
    model = randomized("squeezenet")
    fp32 = _build(model, tmp_path, out="fp32", mode="none")
    outcome = _build(model, tmp_path, mode="int8", source=str(calib), samples=6, sensitivity=2)
    assert outcome.ok, outcome.result.artifacts[0].numerics.message
    entry = _manifest(tmp_path / "out")["artifacts"][0]
    assert entry["precision"] == "int8"
    q = entry["details"]["quantize"]
    assert q["calibration_samples"] == 6 and q["accuracy_measured"] and q["method"] == "minmax"
    assert len(q["sensitivity"]) == 2 and all(s["cosine_if_float"] for s in q["sensitivity"])
    n = entry["numerics"]
    assert n["samples"] == 4 and n["data"].startswith("4 held-out sample(s) of 10 tensor file(s)")
    out = next(iter(n["outputs"].values()))
    assert 0.99 < out["cosine"] < 0.99999  # int8: close, but not float-exact
    assert out["top1"] == 1.0 and n["thresholds"]["min_cosine"] == 0.99
    assert entry["bytes"] < 0.35 * fp32.result.artifacts[0].bytes
    # the artifact is a QDQ model that ONNX Runtime runs; it agrees with the held-out numbers
    import onnxruntime as ort

    sess = ort.InferenceSession(str(tmp_path / "out" / entry["path"]))
    x = np.load(calib / "sample_009.npy")
    ref = ort.InferenceSession(str(model)).run(None, {"data_0": x})[0]
    got = sess.run(None, {"data_0": x})[0]
    cos = float(np.dot(ref.ravel(), got.ravel()) / np.linalg.norm(ref) / np.linalg.norm(got))
    assert cos > 0.99


@pytest.mark.parametrize("mode,precision,max_ratio", [
    ("fp16", "fp16", 0.6), ("int8", "int8", 0.4), ("int8-dynamic", "int8-dynamic", 0.4),
    ("int8-weights", "int8-weights", 0.4),
])
def test_each_mode_size_and_precision_in_manifest(mode, precision, max_ratio, tmp_path):
    model = save(classifier(), tmp_path / "clf.onnx")
    fp32 = _build(model, tmp_path, out="fp32", mode="none").result.artifacts[0]
    outcome = _build(model, tmp_path, mode=mode, source="random", samples=8)
    assert outcome.ok, outcome.result.artifacts[0].numerics.message
    entry = _manifest(tmp_path / "out")["artifacts"][0]
    assert entry["precision"] == precision
    assert entry["bytes"] < max_ratio * fp32.bytes, (entry["bytes"], fp32.bytes)
    assert "UNMEASURED" in entry["numerics"]["data"]
    logits = entry["numerics"]["outputs"]["logits"]
    assert logits["top1"] is not None and logits["cosine"] > (0.999 if mode == "fp16" else 0.99)
    assert "UNMEASURED" in (tmp_path / "out" / "report.md").read_text()


def test_output_softmax_stays_float_and_build_is_deterministic(tmp_path):
    model = save(classifier(softmax=True), tmp_path / "clf.onnx")
    a = _build(model, tmp_path, out="a", mode="int8", source="random", samples=4)
    b = _build(model, tmp_path, out="b", mode="int8", source="random", samples=4)
    assert a.ok and b.ok
    assert a.result.artifacts[0].sha256 == b.result.artifacts[0].sha256
    kept = _manifest(tmp_path / "a")["artifacts"][0]["details"]["quantize"]["kept_float"]
    assert "softmax" in kept and "Softmax" in kept["softmax"]


def test_unreachable_int8_threshold_fails_the_build_after_trying_float_nodes(tmp_path):
    model = save(classifier(), tmp_path / "clf.onnx")
    strict = "  numerics:\n    precision:\n      int8: {min_cosine: 0.9999999}\n"
    prof = write_profile(tmp_path, mode="int8", source="random", samples=4, sensitivity=3)
    prof.write_text(prof.read_text().replace("validate:\n", "validate:\n" + strict))
    outcome = api.build(model, api.BuildOptions(target="ort-mobile", profile=str(prof), out_dir=tmp_path / "o"))
    art = outcome.result.artifacts[0]
    assert not outcome.ok and "cosine" in art.numerics.message and "< 0.9999999" in art.numerics.message
    q = art.artifact.details["quantize"]
    # it tried leaving nodes float: each measured node's output cosine with it float (kept only where that helped;
    # with bias correction none of this tiny net's nodes does)
    assert any(s["cosine_if_float"] is not None for s in q["sensitivity"])
    assert len([w for w in q["kept_float"].values() if "sensitivity" in w]) <= 4  # max_float_nodes default


def _calib_cli(cli, model, tmp_path, calib, *extra):
    from edgec.cli import app

    out = tmp_path / "out"
    prof = write_profile(tmp_path, mode="int8", source="random")
    r = cli.invoke(app, ["build", str(model), "--target", "ort-mobile", "--profile", str(prof), "--out", str(out),
                         "--calibration", str(calib), *extra])
    return r, out


@pytest.mark.parametrize("case", ["missing", "empty", "wrong-shape"])
def test_calibration_errors_through_cli(case, cli, tmp_path):
    model = save(classifier(), tmp_path / "clf.onnx")
    calib = tmp_path / "calib"
    if case == "empty":
        calib.mkdir()
    if case == "wrong-shape":
        npy_folder(calib, [1, 3, 16, 16], 3)
    r, out = _calib_cli(cli, model, tmp_path, calib)
    assert r.exit_code == 7, r.output
    msg = " ".join(r.stderr.split())
    assert "Traceback" not in r.output and "calibration error" in msg and str(calib) in msg
    want = {"missing": "does not exist", "empty": "has no .npy, .npz or image",
            "wrong-shape": "has shape [1, 3, 16, 16] for input 'x', which expects [1, 3, 32, 32]"}[case]
    assert want in msg
    assert not out.exists() or not [p for p in out.iterdir() if p.suffix == ".ort"]


def test_qdq_to_a_backend_without_qdq_is_an_error_not_a_float_build(cli, tmp_path, monkeypatch):
    """A backend that cannot take Q/DQ nodes must say so (exit 6, every node listed), never lower float and call
    it int8. A float-only backend is the ORT backend with Q/DQ ops refused, as a float-only lowering would."""
    from edgec import api as api_mod
    from edgec.lower.backend import get_backend

    class FloatOnly:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def unsupported(self, model):
            return [(n.op_type, n.name, "no int8 lowering") for n in model.graph.node
                    if n.op_type in ("QuantizeLinear", "DequantizeLinear")] + self.inner.unsupported(model)

    monkeypatch.setattr(api_mod, "get_backend", lambda fmt: FloatOnly(get_backend(fmt)))
    m = classifier()
    m.doc_string = str(tmp_path)  # not in the build cache
    model = save(m, tmp_path / "clf.onnx")
    out = tmp_path / "out"
    r = cli.invoke(app, ["build", str(model), "--target", "ort-mobile", "--out", str(out),
                         "--quantize", "int8", "--calibration", "random"])
    assert r.exit_code == 6, r.output
    msg = " ".join(r.stderr.split())
    # conv1 reads the model input and stays float (quantize.float_input_layers): int8 starts at its output
    assert "QuantizeLinear node 'r1_QuantizeLinear'" in msg and "DequantizeLinear node 'w2_DequantizeLinear'" in msg
    assert not out.exists() or not list(out.glob("*.ort"))


def test_dynamic_int8_to_coreml_is_weight_only(cli, tmp_path):
    """CoreML has no run-time (dynamic) activation quantization: int8-dynamic gives it the int8 weights alone
    (constexpr dequantize, float activations), not ORT's ConvInteger/MatMulInteger graph it cannot lower."""
    model = save(classifier(), tmp_path / "clf.onnx")
    out = tmp_path / "out"
    r = cli.invoke(app, ["build", str(model), "--target", "ios", "--out", str(out), "--quantize", "int8-dynamic"])
    assert r.exit_code == 0, r.output
    assert list(out.glob("*.mlpackage"))
    assert "int8 weight/embedding tensors" in (out / "report.md").read_text()


def test_bad_quantize_flag(cli, tmp_path):
    model = save(classifier(), tmp_path / "clf.onnx")
    r = cli.invoke(app, ["build", str(model), "--target", "ort-mobile", "--out", str(tmp_path / "o"),
                         "--quantize", "int4"])
    assert r.exit_code == 2 and "int8-dynamic" in r.stderr


def test_random_calibration_is_one_warning_line(cli, tmp_path):
    import warnings

    from edgec.quantize.calibration import CalibrationWarning

    warnings.simplefilter("default", CalibrationWarning)  # undo this module's ignore (pytest restores filters)
    m = classifier()
    m.doc_string = str(tmp_path)  # a model the build cache has never seen, so quantization really runs
    model = save(m, tmp_path / "clf.onnx")
    r = cli.invoke(app, ["build", str(model), "--target", "ort-mobile", "--out", str(tmp_path / "o"),
                         "--profile", str(write_profile(tmp_path, mode="none")),
                         "--quantize", "int8", "--calibration", "random"])
    assert r.exit_code == 0, r.output
    assert "edgec: warning: calibrating on random data" in r.stderr and "CalibrationWarning" not in r.stderr
    assert _manifest(tmp_path / "o")["artifacts"][0]["precision"] == "int8"


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_other_calibration_methods(method, tmp_path):
    model = save(classifier(), tmp_path / "clf.onnx")
    calib = npy_folder(tmp_path / "calib", [1, 3, 32, 32], 6)
    prof = write_profile(tmp_path, mode="int8", source=str(calib), samples=4, sensitivity=0)
    prof.write_text(prof.read_text().replace("samples: 4}", f"samples: 4, method: {method}}}"))
    outcome = api.build(model, api.BuildOptions(target="ort-mobile", profile=str(prof), out_dir=tmp_path / "o"))
    art = outcome.result.artifacts[0]
    assert outcome.ok, art.numerics.message
    assert art.artifact.details["quantize"]["method"] == method and art.numerics.samples == 2


def test_json_stdout_stays_json_with_histogram_calibration(cli, tmp_path):
    m = classifier()
    m.doc_string = str(tmp_path)  # not in the build cache
    model = save(m, tmp_path / "clf.onnx")
    calib = npy_folder(tmp_path / "calib", [1, 3, 32, 32], 4)
    prof = write_profile(tmp_path, mode="int8", source=str(calib), samples=3, sensitivity=0)
    prof.write_text(prof.read_text().replace("samples: 3}", "samples: 3, method: percentile}"))
    r = cli.invoke(app, ["build", str(model), "--profile", str(prof), "--out", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["artifacts"][0]["precision"] == "int8"  # no calibrator progress lines


def test_int8_from_an_image_folder_with_profile_preprocessing(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    calib = tmp_path / "imgs"
    calib.mkdir()
    rng = np.random.default_rng(1)
    for i in range(6):  # 40x48 JPEGs resized to the input's 32x32
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(calib / f"img_{i}.jpg")
    model = save(classifier(), tmp_path / "clf.onnx")
    extra = "inputs:\n  x: {layout: NCHW, preprocess: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}}\n"
    prof = write_profile(tmp_path, mode="int8", source=str(calib), samples=4, sensitivity=0, extra=extra)
    outcome = api.build(model, api.BuildOptions(target="ort-mobile", profile=str(prof), out_dir=tmp_path / "o"))
    art = outcome.result.artifacts[0]
    assert outcome.ok, art.numerics.message
    assert art.numerics.data.startswith("2 held-out sample(s) of 6 image file(s)")
    assert art.artifact.details["quantize"]["accuracy_measured"]
