"""End-to-end ort-mobile builds of the ONNX light zoo: originals (it builds) and random-weight copies (numerics)."""

import json

import pytest

from edgec import api, samples
from edgec.cli import app

SMALL = ["squeezenet", "shufflenet", "inception_v1", "densenet121", "resnet50"]


def _manifest(out):
    return json.loads((out / "manifest.json").read_text())


@pytest.mark.parametrize("name", SMALL)
def test_random_weight_light_model_builds_and_matches(name, tmp_path):
    outcome = api.build(samples.randomized(name), api.BuildOptions(target="ort-mobile", out_dir=tmp_path, model_name=name))
    assert outcome.ok, outcome.result.artifacts[0].numerics
    m = _manifest(tmp_path)
    art = m["artifacts"][0]
    assert art["format"] == "ort" and art["path"] == f"{name}.ort" and art["bytes"] > 1e5
    assert (tmp_path / f"{name}.ort").read_bytes()[4:8] == b"ORTM"  # ORT format flatbuffer identifier
    (out_name, metrics), = art["numerics"]["outputs"].items()
    assert metrics["cosine"] > 0.9999 and metrics["delta_cosine"] > 0.9999
    # raspberry-pi-5 (ort-mobile's default profile) emulates: a host run scaled by the roofline
    assert art["latency"]["mode"] == "emulate" and art["latency"]["median_ms"] > 0
    assert art["latency"]["details"]["host_median_ms"] > 0
    assert (tmp_path / f"{name}.required_operators.config").read_text().count("ai.onnx;") >= 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("name", SMALL)
def test_original_light_model_builds(name, tmp_path):
    """The stock light models (constant weights): proves the graph builds, not that numerics are right."""
    outcome = api.build(samples.light_model_path(name), api.BuildOptions(target="ort-mobile", out_dir=tmp_path))
    assert outcome.ok
    assert (tmp_path / f"light_{name}.ort").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", samples.BIG_MODELS + ("inception_v2",))
def test_big_light_models_build(name, tmp_path):
    outcome = api.build(samples.randomized(name), api.BuildOptions(target="ort-mobile", out_dir=tmp_path, model_name=name))
    assert outcome.ok


def test_two_builds_are_byte_identical(tmp_path):
    model = samples.randomized("squeezenet")
    for sub in ("a", "b"):
        api.build(model, api.BuildOptions(target="ort-mobile", out_dir=tmp_path / sub, model_name="sq"))
    for f in ("sq.ort", "sq.required_operators.config"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_ep_coverage_in_manifest_and_report(tmp_path):
    api.build(samples.randomized("squeezenet"), api.BuildOptions(target="ort-mobile", out_dir=tmp_path, model_name="sq"))
    cov = _manifest(tmp_path)["artifacts"][0]["details"]["ep_coverage"]
    assert set(cov) == {"NNAPI", "CoreML (ML Program)", "CoreML (NeuralNetwork)"}
    # after the shared passes nothing in squeezenet is unsupported (Dropout is removed)
    assert cov["NNAPI"]["supported_nodes"] == cov["NNAPI"]["nodes"]
    report = (tmp_path / "report.md").read_text()
    assert "NNAPI EP:" in report and "| ort-mobile | raspberry-pi-5 |" in report


def test_dynamic_batch_fixed_from_flag(dynamic_model_path, tmp_path, cli):
    out = tmp_path / "out"
    r = cli.invoke(app, ["build", str(dynamic_model_path), "--target", "ort-mobile", "--out", str(out),
                         "--input-shape", "images=3,3,16,16"])
    assert r.exit_code == 0, r.output
    m = _manifest(out)
    assert m["model"]["inputs"][0]["shape"] == ["batch", 3, 16, 16]
    assert m["artifacts"][0]["numerics"]["passed"]


def test_dynamic_batch_fixed_from_user_profile(dynamic_model_path, tmp_path, cli):
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: board\ntarget: ort-mobile\nhardware:\n  cpu: {cores: 2, peak_gflops_fp32: 10}  # test\n"
        "  memory_bandwidth_gbps: 5  # test\ninputs:\n  images: {shape: [2, 3, 16, 16]}\n"
        "validate:\n  latency: {mode: off}\n"
    )
    r = cli.invoke(app, ["build", str(dynamic_model_path), "--profile", str(profile), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    art = _manifest(tmp_path / "o")["artifacts"][0]
    assert art["profile"] == "board" and art["latency"] is None


def test_latency_budget_miss_fails_the_build(conv_model_path, tmp_path, cli):
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: tight\ntarget: ort-mobile\nhardware:\n  cpu: {cores: 2, peak_gflops_fp32: 10}  # test\n"
        "  memory_bandwidth_gbps: 5  # test\nvalidate:\n  latency: {mode: host, budget_ms: 0.000001, runs: 3}\n"
    )
    r = cli.invoke(app, ["build", str(conv_model_path), "--profile", str(profile), "--out", str(tmp_path / "o")])
    assert r.exit_code == 11, r.output
    assert "exceeds the budget" in r.output
    m = _manifest(tmp_path / "o")
    assert m["passed"] is False and m["artifacts"][0]["latency"]["passed"] is False


def test_numerics_mismatch_fails_the_build(conv_model_path, tmp_path, cli, monkeypatch):
    """The gate itself: an artifact whose runtime returns wrong numbers must fail the build (exit 11).

    The wrong numbers come from wrapping the real ORT runner and perturbing its outputs - the only way to get a
    deterministic wrong artifact out of a correct backend."""
    from edgec.lower.ort.backend import OrtBackend

    real_runner = OrtBackend.runner

    class Perturbed:
        def __init__(self, inner):
            self.inner, self.name = inner, inner.name

        def run(self, feeds):
            return {k: v[..., ::-1].copy() for k, v in self.inner.run(feeds).items()}  # reversed channels

    monkeypatch.setattr(OrtBackend, "runner", lambda self, a, t: Perturbed(real_runner(self, a, t)))
    r = cli.invoke(app, ["build", str(conv_model_path), "--target", "ort-mobile", "--out", str(tmp_path / "o")])
    assert r.exit_code == 11, r.output
    assert "cosine" in r.stderr
    m = _manifest(tmp_path / "o")
    assert m["passed"] is False and m["artifacts"][0]["numerics"]["passed"] is False


def test_ort_level_all_for_int8_on_the_cpu_provider(tmp_path):
    """An int8 graph is saved at level 'all' (NCHWc left out): the CPU provider's NHWC int8 kernels. Float graphs
    keep the target's 'extended' (level 'all' folds fp16 weights back to fp32), and so does int8 for a profile
    whose runtime hands nodes to NNAPI or CoreML (they cannot take those kernels)."""
    from edgec.artifact import LowerContext
    from edgec.config.loader import load_profile, load_target
    from edgec.lower.ort.backend import optimization_level

    target, pi = load_target("ort-mobile"), load_profile("raspberry-pi-5")

    def level(profile, precision):
        return optimization_level(LowerContext(target=target, profile=profile, model_name="m", staging_dir=tmp_path,
                                               precision=precision))

    assert level(pi, "int8")[0] == "all"
    assert level(pi, "fp32") == ("extended", "") and level(pi, "fp16") == ("extended", "")
    nnapi = pi.model_copy(update={"runtime": pi.runtime.model_copy(update={"delegate": "nnapi"})})
    got, note = level(nnapi, "int8")
    assert got == "extended" and "nnapi" in note
