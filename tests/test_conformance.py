"""ONNX node-test conformance harness: cases that must pass on ORT and CoreML, and honest classification."""

from __future__ import annotations

import numpy as np
import pytest

from edgec import conformance as conf
from edgec.artifact import Artifact
from edgec.errors import UnsupportedOp

MUST_PASS = ["test_relu", "test_conv_with_strides_padding", "test_add_bcast", "test_basic_conv_with_padding"]
OPS = ["Relu", "Conv", "Add"]


@pytest.fixture(scope="module")
def cases():
    return {c.name: c for c in conf.collect(OPS)}


@pytest.mark.parametrize("fmt", ["ort", "coreml"])
def test_must_pass_cases(fmt):
    results = {r.name: r for r in conf.run(fmt, ops=OPS, names=MUST_PASS + ["test_add_uint64"])}
    assert set(MUST_PASS) <= set(results), sorted(results)
    for name in MUST_PASS:
        r = results[name]
        assert r.outcome == "pass", (fmt, name, r.outcome, r.detail)
        assert r.max_abs is not None and r.max_abs < 1e-4
        assert r.ran_on


def test_coreml_uint64_is_unsupported_not_error():
    (r,) = conf.run("coreml", ops=["Add"], names=["test_add_uint64"])
    assert r.outcome == "unsupported", (r.outcome, r.detail)
    assert "UINT64" in r.detail


def test_ort_uint64_add_passes():
    (r,) = conf.run("ort", ops=["Add"], names=["test_add_uint64"])
    assert r.outcome == "pass", r.detail


def test_expanded_cases_belong_to_their_op():
    fam = conf.family_map(conf.collect(["Softmax"]))
    assert fam["test_softmax_axis_0_expanded"] == "Softmax"
    assert fam["test_softmax_axis_0"] == "Softmax"


class _FakeBackend:
    """Stands in for a backend whose lowering misbehaves in one specific way."""

    format = "ort"

    def __init__(self, mode: str):
        self.mode = mode

    def unsupported(self, model):
        return [("Relu", "n0", "no Relu here")] if self.mode == "precheck" else []

    def supported_ops(self):
        return {"Relu": ""}

    def lower(self, model, ctx):
        if self.mode == "unsupported":
            raise UnsupportedOp("fake", [("Relu", "n0", "attribute 'x' not supported")])
        if self.mode == "error":
            raise RuntimeError("boom\nsecond line")
        return Artifact(target="fake", profile="p", format="ort", path=ctx.staging_dir / "m", precision="fp32")

    def runner(self, artifact, threads):
        mode = self.mode

        class R:
            name = "fake-runner"

            def run(self, feeds):
                x = feeds["x"]
                y = np.maximum(x, 0)
                if mode == "wrong":
                    y = y + 0.01
                if mode == "shape":
                    y = y[:1]
                if mode == "dtype":
                    y = y.astype(np.float64)
                return {"y": y}

        return R()


@pytest.mark.parametrize("mode,outcome,needle", [
    ("ok", "pass", ""),
    ("precheck", "unsupported", "no Relu here"),
    ("unsupported", "unsupported", "attribute 'x'"),
    ("error", "error", "RuntimeError: boom"),
    ("wrong", "fail", "max_abs 0.01"),
    ("shape", "fail", "shape"),
    ("dtype", "fail", "dtype float64"),
])
def test_classification(cases, mode, outcome, needle):
    r = conf.run_case(_FakeBackend(mode), cases["test_relu"], "Relu")
    assert r.outcome == outcome, (r.outcome, r.detail)
    assert needle in r.detail
    assert "second line" not in r.detail


def test_compare_nan_inf_and_ints():
    a = np.array([1.0, np.nan, np.inf], np.float32)
    assert conf.compare(a, a.copy())[0]
    assert not conf.compare(a, np.array([1.0, 0.0, np.inf], np.float32))[0]
    assert not conf.compare(a, np.array([1.0, np.nan, -np.inf], np.float32))[0]
    assert not conf.compare(np.array([1, 2], np.int64), np.array([1, 3], np.int64))[0]


def test_sequence_case_is_skipped():
    (case,) = [c for c in conf.collect(["SequenceInsert"]) if c.name == "test_sequence_insert_at_back"]
    r = conf.run_case(_FakeBackend("ok"), case, "SequenceInsert")
    assert r.outcome == "skipped"


def test_isolated_worker_runs_cases():
    results = conf.run("ort", ops=["Relu"], isolate=True, timeout=120)
    assert [r.outcome for r in results] == ["pass"] * len(results) and results


def test_render_keeps_hand_written_why(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("bench_conf", Path(__file__).parent.parent / "bench" / "conformance.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    doc = tmp_path / "c.md"
    doc.write_text(f"old\n{bench.WHY_START}\n- Conv: because\n{bench.WHY_END}\nold\n")
    results = [conf.CaseResult("test_a", "Relu", "pass", 0.0), conf.CaseResult("test_b", "Relu", "fail", 0.5, "y: max_abs 0.5")]
    text = bench.render("ort", results, 1.0, bench.kept_why(doc), "x")
    assert "- Conv: because" in text and "| Relu | 2 | 1 | 1 | 0 | 0 | 0 | 0 |" in text and "test_b" in text


class _ConstantsOnlyBackend:
    """Refuses any graph input but the first (like a backend that needs Reshape's shape as a constant);
    runs what it accepts on ONNX Runtime."""

    format = "ort"

    def unsupported(self, model):
        names = [i.name for i in model.graph.input]
        return [("Reshape", "n", f"shape (input '{n}') must be a constant") for n in names[1:]]

    def supported_ops(self):
        return {"Reshape": ""}

    def lower(self, model, ctx):
        path = ctx.staging_dir / "m.onnx"
        path.write_bytes(model.SerializeToString())
        return Artifact(target="t", profile="p", format="ort", path=path, precision="fp32")

    def runner(self, artifact, threads):
        from edgec.runtimes.host_ort import OrtRunner

        return OrtRunner(artifact.path.read_bytes(), name="onnxruntime")


def test_parameter_inputs_fold_into_constants_when_refused():
    """Refused as given (shape is a graph input), run and right once the shape is an initializer."""
    (case,) = [c for c in conf.collect(["Reshape"]) if c.name == "test_reshape_reordered_all_dims"]
    as_given = conf.run_case(_ConstantsOnlyBackend(), case, "Reshape", fold=False)
    assert as_given.outcome == "unsupported" and not as_given.folded and "must be a constant" in as_given.detail
    folded = conf.run_case(_ConstantsOnlyBackend(), case, "Reshape")
    assert folded.outcome == "pass" and folded.folded, folded.detail


def test_error_text_has_no_temp_paths():
    err = RuntimeError("cannot load /tmp/edgec-conf-abc123/x.mlpackage: bad")
    assert conf._first_line(err) == "RuntimeError: cannot load <staging>/x.mlpackage: bad"
