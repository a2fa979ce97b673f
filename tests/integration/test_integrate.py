"""`edgec integrate`: the Xcode build phase runs for real (sh + edgec, no Xcode needed); the Gradle task and the
workflow are checked for the wiring that makes them incremental (they cannot run without Gradle/GitHub)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from edgec.cli import app

REPO = Path(__file__).resolve().parents[2]


def _edgec_wrapper(tmp_path: Path) -> Path:
    """An `edgec` executable for this checkout, whatever the installed entry point points at."""
    exe = tmp_path / "bin" / "edgec"
    exe.parent.mkdir()
    exe.write_text(f"#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -c "
                   f"'from edgec.cli import main; main()' \"$@\"\n")
    exe.chmod(0o755)
    return exe


def test_xcode_build_phase_script_builds_the_mlpackage(cli, conv_model_path, tmp_path):
    src = tmp_path / "MyApp"
    (src / "Resources").mkdir(parents=True)
    (src / "Resources" / "conv.onnx").write_bytes(conv_model_path.read_bytes())
    r = cli.invoke(app, ["integrate", "xcode", "Resources/conv.onnx", "--dest", "MyApp/Models", "--out", str(src)])
    assert r.exit_code == 0, r.output
    script = src / "edgec-build-phase.sh"
    assert os.access(script, os.X_OK)
    assert (src / "edgec-inputs.xcfilelist").read_text() == "$(SRCROOT)/Resources/conv.onnx\n"
    assert (src / "edgec-outputs.xcfilelist").read_text() == "$(SRCROOT)/MyApp/Models/conv.mlpackage\n"

    env = {**os.environ, "SRCROOT": str(src), "DERIVED_FILE_DIR": str(tmp_path / "derived"),
           "EDGEC": str(_edgec_wrapper(tmp_path)), "EDGEC_FLAGS": "--no-cache"}
    done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    pkg = src / "MyApp" / "Models" / "conv.mlpackage"
    assert (pkg / "Manifest.json").is_file()
    assert not (src / "MyApp" / "Models" / "conv.mlpackage.tmp").exists()
    assert (tmp_path / "derived" / "edgec" / "report.md").is_file()

    # a model edgec cannot build fails the phase and leaves the previous package in place
    (src / "Resources" / "conv.onnx").write_bytes(b"not onnx")
    bad = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and (pkg / "Manifest.json").is_file()


def test_xcode_refuses_to_overwrite_changed_files(cli, tmp_path):
    args = ["integrate", "xcode", "m.onnx", "--out", str(tmp_path)]
    assert cli.invoke(app, args).exit_code == 0
    assert cli.invoke(app, args).exit_code == 0  # same content: fine
    (tmp_path / "edgec-build-phase.sh").write_text("# mine\n")
    r = cli.invoke(app, args)
    assert r.exit_code != 0 and "--force" in r.stderr
    assert cli.invoke(app, args + ["--force"]).exit_code == 0


def test_gradle_task_declares_inputs_outputs_and_runs_before_prebuild(cli, tmp_path):
    r = cli.invoke(app, ["integrate", "gradle", "src/main/ml/net.onnx", "--profile", "pixel-8", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    kts = (tmp_path / "edgec.gradle.kts").read_text()
    for needle in ("@get:InputFile", "@get:OutputDirectory", 'layout.projectDirectory.file("src/main/ml/net.onnx")',
                   '"--target", "android"', 'profile.set("pixel-8")', "addGeneratedSourceDirectory(edgecBuild",
                   'tasks.named("preBuild") { dependsOn(edgecBuild) }', 'include("*.tflite")'):
        assert needle in kts, needle
    assert kts.count("{") == kts.count("}")


def test_github_workflow_fans_out_and_merges(cli, tmp_path):
    r = cli.invoke(app, ["integrate", "github-actions", "models/net.onnx", "--profiles", "pixel-8,raspberry-pi-5",
                         "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    wf = yaml.safe_load((tmp_path / "edgec.yml").read_text())
    jobs = wf["jobs"]
    assert set(jobs) == {"plan", "build", "report"}
    assert jobs["build"]["strategy"]["matrix"] == "${{ fromJson(needs.plan.outputs.matrix) }}"
    runs = "\n".join(s.get("run", "") for j in jobs.values() for s in j["steps"])
    assert 'edgec matrix --profiles "$PROFILES" --json' in runs and "$GITHUB_OUTPUT" in runs
    assert "edgec merge dist-*/ --out dist --junit dist/junit.xml" in runs and "$GITHUB_STEP_SUMMARY" in runs
    assert jobs["report"]["if"] == "always()" and wf["env"]["PROFILES"] == "pixel-8,raspberry-pi-5"
    r = cli.invoke(app, ["integrate", "github-actions", "m.onnx", "--profiles", "nope", "--out", str(tmp_path / "x")])
    assert r.exit_code != 0 and not (tmp_path / "x" / "edgec.yml").exists()
