"""`edgec matrix` -> one `edgec build` per entry -> `edgec merge`: the CI fan-out/fan-in, run for real."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

from edgec.cli import app


def test_matrix_json_is_a_github_include_list(cli):
    r = cli.invoke(app, ["matrix", "--profiles", "pixel-8,raspberry-pi-5", "--json"])
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 1  # one line, so it fits `echo "matrix=..." >> $GITHUB_OUTPUT`
    m = json.loads(r.stdout)
    assert m["include"] == [
        {"target": "android", "profile": "pixel-8", "name": "android-pixel-8", "out": "dist-android-pixel-8"},
        {"target": "ort-mobile", "profile": "raspberry-pi-5", "name": "ort-mobile-raspberry-pi-5",
         "out": "dist-ort-mobile-raspberry-pi-5"},
    ]
    both = json.loads(cli.invoke(app, ["matrix", "--profiles", "host", "--targets", "ort-mobile,android",
                                       "--json"]).stdout)
    assert [(e["target"], e["profile"]) for e in both["include"]] == [("ort-mobile", "host"), ("android", "host")]
    assert len({e["out"] for e in both["include"]}) == 2


def test_matrix_unknown_profile_is_a_config_error(cli):
    r = cli.invoke(app, ["matrix", "--profiles", "pixel-8,nope", "--json"])
    assert r.exit_code != 0 and "nope" in r.stderr and r.stdout == ""


def _build_matrix(cli, model, tmp_path, profiles):
    jobs = json.loads(cli.invoke(app, ["matrix", "--profiles", profiles, "--json"]).stdout)["include"]
    for job in jobs:
        r = cli.invoke(app, ["build", str(model), "--target", job["target"], "--profile", job["profile"],
                             "--out", str(tmp_path / job["out"]), "--no-cache"])
        assert r.exit_code == 0, r.output
    return jobs


def test_merge_folds_job_outputs_into_one_manifest_and_report(cli, conv_model_path, tmp_path):
    jobs = _build_matrix(cli, conv_model_path, tmp_path, "pixel-8,raspberry-pi-5")
    dist = tmp_path / "dist"
    r = cli.invoke(app, ["merge", *[str(tmp_path / j["out"]) for j in jobs], "--out", str(dist),
                         "--junit", str(dist / "junit.xml")])
    assert r.exit_code == 0, r.output
    manifest = json.loads((dist / "manifest.json").read_text())
    assert [(a["target"], a["profile"]) for a in manifest["artifacts"]] == [
        ("android", "pixel-8"), ("ort-mobile", "raspberry-pi-5")]
    assert manifest["passed"] and manifest["errors"] == []
    for a in manifest["artifacts"]:
        job = next(j for j in jobs if j["target"] == a["target"])
        original = json.loads((tmp_path / job["out"] / "manifest.json").read_text())["artifacts"][0]
        assert (dist / a["path"]).read_bytes() == (tmp_path / job["out"] / a["path"]).read_bytes()
        assert a["sha256"] == original["sha256"] and a["numerics"] == original["numerics"]
    report = (dist / "report.md").read_text()
    assert "android" in report and "ort-mobile" in report
    assert (dist / "report.html").read_text().count("<svg") == 3
    assert ET.parse(dist / "junit.xml").getroot().get("tests") == "6"


def test_merge_keeps_a_failed_job_and_exits_nonzero(cli, conv_model_path, tmp_path):
    jobs = _build_matrix(cli, conv_model_path, tmp_path, "raspberry-pi-5")
    # a second job whose target failed: its manifest has no artifact and one error
    failed = tmp_path / "dist-ios-iphone-15-pro"
    failed.mkdir()
    data = json.loads((tmp_path / jobs[0]["out"] / "manifest.json").read_text())
    data.update(artifacts=[], passed=False,
                errors=[{"target": "ios", "profile": "iphone-15-pro", "kind": "unsupported op", "message": "X"}])
    (failed / "manifest.json").write_text(json.dumps(data))
    r = cli.invoke(app, ["merge", str(tmp_path / jobs[0]["out"]), str(failed), "--out", str(tmp_path / "dist")])
    assert r.exit_code != 0
    merged = json.loads((tmp_path / "dist" / "manifest.json").read_text())
    assert not merged["passed"] and merged["errors"][0]["kind"] == "unsupported op"
    assert len(merged["artifacts"]) == 1
    report = (tmp_path / "dist" / "report.md").read_text()
    assert "**Result: FAILED**" in report and "| ios | iphone-15-pro | - |" in report and "unsupported op: X" in report


def test_merge_refuses_different_models_and_missing_files(cli, conv_model_path, tmp_path):
    jobs = _build_matrix(cli, conv_model_path, tmp_path, "raspberry-pi-5")
    job = tmp_path / jobs[0]["out"]
    other = tmp_path / "dist-other"
    shutil.copytree(job, other)
    data = json.loads((other / "manifest.json").read_text())
    data["model"]["sha256"] = "0" * 64
    data["artifacts"][0]["profile"] = "host"
    (other / "manifest.json").write_text(json.dumps(data))
    r = cli.invoke(app, ["merge", str(job), str(other), "--out", str(tmp_path / "dist")])
    assert r.exit_code != 0 and "different model" in r.stderr

    (job / "conv.ort").unlink()
    r = cli.invoke(app, ["merge", str(job), "--out", str(tmp_path / "dist2")])
    assert r.exit_code != 0 and "missing" in r.stderr
    r = cli.invoke(app, ["merge", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "dist3")])
    assert r.exit_code != 0 and "manifest.json" in r.stderr


def test_a_job_that_failed_before_its_manifest_still_shows_in_the_merge(cli, conv_model_path, tmp_path):
    jobs = _build_matrix(cli, conv_model_path, tmp_path, "raspberry-pi-5")
    # a single-target build that fails writes no manifest, but --junit still records why
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    failed = tmp_path / "dist-android-pixel-8"
    r = cli.invoke(app, ["build", str(bad), "--target", "android", "--profile", "pixel-8", "--out", str(failed),
                         "--junit", str(failed / "junit.xml")])
    assert r.exit_code != 0 and not (failed / "manifest.json").exists()
    case = ET.parse(failed / "junit.xml").getroot().find(".//testcase")
    assert case.get("classname") == "edgec.android.pixel-8" and case.find("error") is not None
    empty = tmp_path / "dist-ios-iphone-15-pro"
    empty.mkdir()  # a job that uploaded nothing usable

    r = cli.invoke(app, ["merge", str(tmp_path / jobs[0]["out"]), str(failed), str(empty), "--out",
                         str(tmp_path / "dist")])
    assert r.exit_code != 0
    merged = json.loads((tmp_path / "dist" / "manifest.json").read_text())
    assert len(merged["artifacts"]) == 1
    errs = {(e["target"], e["profile"]): e for e in merged["errors"]}
    assert "not a readable ONNX model" in errs[("android", "pixel-8")]["message"]
    assert errs[("dist-ios-iphone-15-pro", "-")]["kind"] == "missing output"
    assert "**Result: FAILED**" in (tmp_path / "dist" / "report.md").read_text()
