"""Build cache, byte-identical rebuilds, report.html / JUnit outputs and the CLI's cache message."""

from __future__ import annotations

import json
from pathlib import Path
import time
import xml.etree.ElementTree as ET

import pytest

from edgec import api, cache
from edgec.cli import app
from edgec.package import html as html_mod
from edgec.package import junit as junit_mod

from conftest import files_in


@pytest.fixture
def cache_root(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setattr(cache, "cache_root", lambda: root)
    monkeypatch.delenv("EDGEC_NO_CACHE", raising=False)
    return root


def _opts(out, **kw):
    return api.BuildOptions(target="ort-mobile", out_dir=out, **kw)


def _artifact_bytes(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in (".ort", ".config")}


def test_unchanged_build_hits_cache_fast_and_restores_same_bytes(conv_model_path, tmp_path, cache_root):
    first = api.build(conv_model_path, _opts(tmp_path / "a", cache=True))
    assert first.ok and first.cache_hits == []
    assert any(cache_root.rglob("entry.json")), "a passing build is stored"

    t0 = time.perf_counter()
    second = api.build(conv_model_path, _opts(tmp_path / "b", cache=True))
    wall = time.perf_counter() - t0
    assert second.cache_hits == [("ort-mobile", first.result.artifacts[0].artifact.profile)]
    assert wall < 1.0, f"cache hit took {wall:.2f} s"
    assert _artifact_bytes(tmp_path / "a") == _artifact_bytes(tmp_path / "b")
    restored = second.result.artifacts[0]
    assert restored.numerics is not None and restored.numerics.passed  # the validation record comes back too
    assert any("build cache" in n for n in restored.artifact.notes)
    assert {"manifest.json", "report.md", "report.html"} <= set(files_in(tmp_path / "b"))


def test_changed_model_or_options_miss_the_cache(conv_model_path, tmp_path, cache_root):
    api.build(conv_model_path, _opts(tmp_path / "a", cache=True))
    # different options (no validation) -> different key
    other = api.build(conv_model_path, _opts(tmp_path / "b", cache=True, validate=False))
    assert other.cache_hits == []
    # one flipped weight bit -> different key
    import onnx

    m = onnx.load(str(conv_model_path))
    raw = bytearray(m.graph.initializer[0].raw_data)
    raw[0] ^= 1
    m.graph.initializer[0].raw_data = bytes(raw)
    changed = tmp_path / "changed.onnx"
    onnx.save(m, str(changed))
    third = api.build(changed, _opts(tmp_path / "c", cache=True, model_name="conv"))
    assert third.cache_hits == []
    # cache off -> never consulted
    off = api.build(conv_model_path, _opts(tmp_path / "d", cache=False))
    assert off.cache_hits == []


def test_damaged_cache_entry_is_a_miss(conv_model_path, tmp_path, cache_root):
    api.build(conv_model_path, _opts(tmp_path / "a", cache=True))
    for f in cache_root.rglob("*.ort"):
        f.unlink()
    again = api.build(conv_model_path, _opts(tmp_path / "b", cache=True))
    assert again.cache_hits == [] and again.ok


def _tree_bytes(folder):
    """Every file of the build (folders such as .mlpackage walked), manifest/report excluded: they hold timings."""
    skip = {"manifest.json", "report.md", "report.html"}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] not in skip}


@pytest.mark.parametrize("target", ["ort-mobile", "android", "ios"])
def test_two_clean_builds_are_byte_identical(target, tmp_path):
    from edgec.samples import randomized

    model = randomized("squeezenet")
    opts = dict(target=target, model_name="squeezenet", validate=False, jobs=1)
    a = api.build(model, api.BuildOptions(out_dir=tmp_path / "a", **opts))
    b = api.build(model, api.BuildOptions(out_dir=tmp_path / "b", **opts))
    assert a.cache_hits == b.cache_hits == [] and not a.failures
    got_a, got_b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert any(k.startswith("squeezenet.") for k in got_a)
    assert got_a.keys() == got_b.keys()
    assert [k for k in got_a if got_a[k] != got_b[k]] == []


def test_cli_prints_cache_hit_and_no_cache_forces(conv_model_path, tmp_path, cache_root, cli):
    args = ["build", str(conv_model_path), "--target", "ort-mobile", "--out", str(tmp_path / "o")]
    r1 = cli.invoke(app, args)
    assert r1.exit_code == 0, r1.output
    assert "cache hit" not in r1.stderr and "built in" in r1.stderr
    r2 = cli.invoke(app, args + ["--junit", str(tmp_path / "j.xml")])
    assert r2.exit_code == 0, r2.output
    assert "cache hit for ort-mobile/" in r2.stderr and " s." in r2.stderr
    assert (tmp_path / "j.xml").exists()
    r3 = cli.invoke(app, args + ["--no-cache", "--json"])
    assert r3.exit_code == 0, r3.output
    assert "cache hit" not in r3.stderr
    json.loads(r3.stdout)  # stdout stays pure JSON with the time on stderr


def _manifest(numerics_ok=True, latency_ok=True, errors=()):
    art = {
        "target": "ort-mobile", "profile": "raspberry-pi-5", "format": "ort", "path": "m.ort",
        "sha256": "ab" * 32, "bytes": 1_500_000, "precision": "fp32", "passed": numerics_ok and latency_ok,
        "notes": ["a <note>"], "seconds": {"prepare": 0.5, "lower": 1.0, "validate": 2.0},
        "numerics": {"ran_on": "onnxruntime", "passed": numerics_ok, "message": None if numerics_ok else "cos low",
                     "thresholds": {"min_cosine": 0.999},
                     "outputs": {"prob": {"max_abs": 1e-5, "cosine": 0.9999999 if numerics_ok else 0.9,
                                          "delta_cosine": 0.99999}}},
        "latency": {"mode": "host", "median_ms": 12.5, "p90_ms": 14.0, "runs": 20, "threads": 2,
                    "budget_ms": 10.0 if not latency_ok else 50.0, "passed": latency_ok,
                    "message": None if latency_ok else "over budget"},
    }
    return {
        "edgec_version": "0.1.0", "passed": numerics_ok and latency_ok and not errors,
        "model": {"path": "/x/m.onnx", "opset": 13, "nodes": 5, "parameters": 1234, "bytes": 2_000_000,
                  "sha256": "cd" * 32},
        "artifacts": [art], "errors": list(errors), "versions": {"onnxruntime": "1.32"},
    }


def test_junit_has_one_case_per_check_with_failures_and_errors():
    err = {"target": "ios", "profile": "iphone-15-pro", "kind": "unsupported op", "message": "Foo (node f)"}
    root = ET.fromstring(junit_mod.render(_manifest(numerics_ok=False, latency_ok=False, errors=[err])))
    cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
    assert set(cases) == {("edgec.ort-mobile.raspberry-pi-5", n) for n in ("build", "numerics", "latency")} | {
        ("edgec.ios.iphone-15-pro", "build")}
    assert cases[("edgec.ort-mobile.raspberry-pi-5", "numerics")].find("failure").get("message") == "cos low"
    assert cases[("edgec.ort-mobile.raspberry-pi-5", "latency")].find("failure") is not None
    assert cases[("edgec.ios.iphone-15-pro", "build")].find("error").get("type") == "unsupported op"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "2", "1")

    ok = ET.fromstring(junit_mod.render(_manifest()))
    assert ok.get("failures") == "0" and not list(ok.iter("failure"))


def test_html_is_self_contained_and_escaped():
    page = html_mod.render(_manifest(latency_ok=False, errors=[
        {"target": "ios", "profile": "p", "kind": "lowering error", "message": "<script>x</script>"}]))
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    assert "<script" not in page and "&lt;script&gt;" in page  # user text is escaped, and no JavaScript at all
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
    assert "FAILED" in page and "a &lt;note&gt;" in page


def test_key_sees_the_contents_of_files_a_profile_names(tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    (calib / "a.npy").write_bytes(b"one")
    dump = {"quantize": {"calibration": {"source": str(calib)}}, "name": "p"}
    before = cache.referenced_files_digest(dump)
    assert cache.referenced_files_digest(dump) == before
    (calib / "a.npy").write_bytes(b"two")
    assert cache.referenced_files_digest(dump) != before
    (calib / "b.npy").write_bytes(b"new")
    assert len({before, cache.referenced_files_digest(dump)}) == 2


def test_target_all_lowers_in_workers_and_matches_the_in_process_build(conv_model_path, tmp_path):
    opts = dict(target="all", validate=False)
    par = api.build(conv_model_path, api.BuildOptions(out_dir=tmp_path / "par", jobs=2, **opts))
    seq = api.build(conv_model_path, api.BuildOptions(out_dir=tmp_path / "seq", jobs=1, **opts))
    assert not par.failures and not seq.failures
    assert sorted(a.artifact.target for a in par.result.artifacts) == ["android", "ios", "ort-mobile"]
    assert _tree_bytes(tmp_path / "par") == _tree_bytes(tmp_path / "seq")
    assert {"manifest.json", "report.md", "report.html"} <= set(files_in(tmp_path / "par"))
    assert not [n for n in files_in(tmp_path / "par") if n.startswith(".edgec-staging")]


def test_target_all_second_run_is_all_cache_hits(conv_model_path, tmp_path, cache_root):
    first = api.build(conv_model_path, api.BuildOptions(target="all", out_dir=tmp_path / "a", cache=True))
    assert first.ok and first.cache_hits == []
    t0 = time.perf_counter()
    second = api.build(conv_model_path, api.BuildOptions(target="all", out_dir=tmp_path / "b", cache=True))
    assert time.perf_counter() - t0 < 1.0
    assert sorted(t for t, _ in second.cache_hits) == ["android", "ios", "ort-mobile"]
    assert _tree_bytes(tmp_path / "a") == _tree_bytes(tmp_path / "b")
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["passed"] and m["model"]["sha256"] == first.result.model.sha256 and len(m["artifacts"]) == 3


def test_failed_budget_exits_nonzero_with_every_report_written(conv_model_path, tmp_path, cache_root, cli):
    out = tmp_path / "o"
    r = cli.invoke(app, ["build", str(conv_model_path), "--target", "ort-mobile", "--out", str(out),
                         "--budget-ms", "0.0001", "--junit", str(out / "junit.xml")])
    assert r.exit_code != 0 and "validation failed" in r.stderr
    assert {"conv.ort", "manifest.json", "report.md", "report.html", "junit.xml"} <= set(files_in(out))
    root = ET.parse(out / "junit.xml").getroot()
    assert root.get("failures") == "1"
    assert not any(cache_root.rglob("entry.json")), "a failed build is not cached"


def test_cache_prunes_least_recently_used_entries(conv_model_path, tmp_path, cache_root, monkeypatch):
    import os

    monkeypatch.setenv("EDGEC_CACHE_MAX_MB", "1000")
    api.build(conv_model_path, _opts(tmp_path / "a", cache=True))
    api.build(conv_model_path, _opts(tmp_path / "b", cache=True, validate=False))
    # entries[0]: the validated build (made oldest below), entries[1]: the --no-validate one
    entries = sorted(cache_root.glob("*/*/entry.json"),
                     key=lambda e: json.loads(e.read_text())["artifact"].get("numerics") is None)
    assert len(entries) == 2
    for i, e in enumerate(entries):  # make ages explicit: entries[0] oldest
        os.utime(e, (1_000_000 + i, 1_000_000 + i))
    store = cache.BuildCache(cache_root)
    one = sum(f.stat().st_size for f in entries[1].parent.rglob("*") if f.is_file())
    assert store.prune(max_bytes=one) > 0
    left = list(cache_root.glob("*/*/entry.json"))
    assert left == [entries[1]]
    # the surviving build still hits
    assert api.build(conv_model_path, _opts(tmp_path / "c", cache=True, validate=False)).cache_hits


def test_workers_that_cannot_start_fall_back_to_lowering_in_process(conv_model_path, tmp_path):
    """Spawned workers re-import __main__; from stdin they cannot, and every target must still build."""
    import subprocess
    import sys

    script = (f"from pathlib import Path\nfrom edgec import api\n"
              f"o = api.build(Path({str(conv_model_path)!r}), api.BuildOptions(target='all', jobs=2, validate=False, "
              f"out_dir=Path({str(tmp_path / 'o')!r})))\n"
              f"print(sorted(a.artifact.target for a in o.result.artifacts), len(o.failures))\n")
    done = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**__import__("os").environ,
                                             "PYTHONPATH": str(Path(api.__file__).parents[1])})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['android', 'ios', 'ort-mobile'] 0"


def test_edgec_no_cache_env_turns_the_cache_off(conv_model_path, tmp_path, cache_root, monkeypatch):
    api.build(conv_model_path, _opts(tmp_path / "a", cache=True))
    monkeypatch.setenv("EDGEC_NO_CACHE", "1")
    assert api.build(conv_model_path, _opts(tmp_path / "b", cache=True)).cache_hits == []
    monkeypatch.setenv("EDGEC_NO_CACHE", "0")
    assert api.build(conv_model_path, _opts(tmp_path / "c", cache=True)).cache_hits
