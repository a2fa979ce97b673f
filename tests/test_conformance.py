"""ONNX node-test conformance harness: cases that must pass on ORT and CoreML, and honest classification."""

from __future__ import annotations

import os
import re

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


def test_sequence_case_refused_by_a_tensor_only_backend():
    (case,) = [c for c in conf.collect(["SequenceInsert"]) if c.name == "test_sequence_insert_at_back"]
    r = conf.run_case(_FakeBackend("ok"), case, "SequenceInsert")
    assert r.outcome == "unsupported", (r.outcome, r.detail)
    assert "SequenceInsert node 'SequenceInsert_0'" in r.detail and "sequence" in r.detail


@pytest.mark.parametrize("name,op", [("test_sequence_insert_at_back", "SequenceInsert"),
                                     ("test_identity_sequence", "Identity"), ("test_split_to_sequence_1", "SplitToSequence")])
def test_ort_runs_sequences(name, op):
    """Sequences in and out (the harness used to skip these)."""
    (r,) = conf.run("ort", ops=[op], names=[name])
    assert r.outcome == "pass", (r.outcome, r.detail)


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
    text = bench.render("ort", results, bench.kept_why(doc), "x", ["Relu"])
    assert "- Conv: because" in text and "| Relu | 2 | 1 | 1 | 0 | 0 | 0 |" in text and "test_b" in text
    assert "| 2 | 1 | 1 | 0 | 0 | 50.0% |" in text  # totals: the rate is over every counted case
    assert text == bench.render("ort", results, bench.kept_why(doc), "x", ["Relu"])  # no dates or timings


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


# --- the population and the comparison -----------------------------------------------------------------------

def test_population_is_every_non_expanded_case():
    cases = conf.collect(["Softmax"])
    pop = conf.population(cases)
    assert pop and all(not conf.is_expanded(c.name) for c in pop)
    assert len(pop) == len([c for c in cases if "_expanded" not in c.name])


def test_sample_is_stratified_and_seeded():
    cases = conf.population(conf.collect(["Relu", "Softmax", "Add"]))
    fam = conf.family_map(cases)
    a = conf.sample(cases, per_op=1, seed=3)
    assert sorted(fam[c.name] for c in a) == ["Add", "Relu", "Softmax"]
    assert [c.name for c in a] == [c.name for c in conf.sample(cases, per_op=1, seed=3)]


def test_compare_rejects_inf_where_a_finite_value_is_expected():
    """It used to pass: the finite-only comparison dropped the element and the inf check only looked at
    expected infinities."""
    assert not conf.compare(np.array([1.0, 2.0], np.float32), np.array([1.0, np.inf], np.float32))[0]


def test_compare_saturated_infinity_and_narrow_types():
    lowest = np.finfo(np.float32).min
    assert conf.compare(np.array([-np.inf, 1], np.float32), np.array([lowest, 1], np.float32))[0]
    assert not conf.compare(np.array([-np.inf, 1], np.float32), np.array([-3.0, 1], np.float32))[0]
    half = np.array([0.75, 0.5], np.float16)
    assert conf.compare(half, half + np.float16(0.00048828125))[0]  # one fp16 unit in the last place
    assert not conf.compare(half, half + np.float16(0.01))[0]
    big = np.array([540.0, 0.0], np.float32)  # a near-zero bin of a long sum, judged at the sum's scale
    assert conf.compare(big, np.array([540.0, 3e-4], np.float32))[0]
    assert not conf.compare(big, np.array([540.0, 3e-2], np.float32))[0]


def test_compare_sequences_and_empty_optionals():
    a = [np.array([1.0], np.float32), np.array([2, 3], np.int64)]
    assert conf.compare(a, [x.copy() for x in a])[0]
    assert not conf.compare(a, a[:1])[0]
    assert not conf.compare(a, [a[0], np.array([2, 4], np.int64)])[0]
    assert conf.compare(None, None)[0] and not conf.compare(None, a[0])[0]


# --- a seeded, stratified sample of the full count, every target (the full run: bench/conformance.py) ---------

SAMPLE_SEED = int(os.environ.get("EDGEC_CONFORMANCE_SEED", "0"))
REFUSAL = re.compile(r"^\S+ node '[^']+': \S.{10,}")  # "<Op> node '<name>': <why, with what to do>"


@pytest.fixture(scope="module")
def sampled():
    everything = conf.collect()
    return conf.sample(conf.population(everything), per_op=1, seed=SAMPLE_SEED), conf.family_map(everything)


@pytest.mark.parametrize("fmt", ["ort", "tflite", "coreml"])
def test_sampled_conformance(sampled, fmt):
    """One case of every op type (seeded; EDGEC_CONFORMANCE_SEED picks another sample): nothing wrong, nothing
    crashing, and every refusal names the node, the op and why. No pass count: other branches add ops."""
    from edgec.lower.backend import get_backend

    cases, fam = sampled
    backend = get_backend(fmt)
    results = [conf.run_case(backend, c, fam[c.name]) for c in cases]
    assert len(results) == len({fam[c.name] for c in cases}) > 150
    bad = [(r.name, r.outcome, r.detail) for r in results if r.outcome in ("fail", "error")]
    assert not bad, f"seed {SAMPLE_SEED}: {bad}"
    unnamed = [(r.name, r.detail) for r in results if r.outcome == "unsupported" and not REFUSAL.match(r.detail)]
    assert not unnamed, unnamed
