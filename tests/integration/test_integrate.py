"""`edgec integrate`: the Xcode build phase runs for real (sh + edgec, no Xcode needed); the Gradle task and the
workflow are checked for the wiring that makes them incremental (they cannot run without Gradle/GitHub)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
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


XCODE_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"  # what a Run Script phase gets (plus Xcode's own tool folders)


def _resolve_xcfilelist(listfile: Path, env: dict, dest: Path) -> list[Path]:
    """What Xcode does with a file list: expand $(VAR) / ${VAR} and write the *-resolved.xcfilelist it passes as
    SCRIPT_*_FILE_LIST_n."""
    def expand(line: str) -> str:
        return re.sub(r"\$[({](\w+)[)}]", lambda m: env[m.group(1)], line)

    paths = [expand(ln.strip()) for ln in listfile.read_text().splitlines() if ln.strip()]
    dest.write_text("\n".join(paths) + "\n")
    return [Path(p) for p in paths]


def _xcode_env(src: Path, build: Path) -> dict:
    """The environment Xcode gives a Run Script phase that uses file lists (no single input/output files)."""
    inter = build / "Intermediates.noindex" / "MyApp.build" / "Debug-iphonesimulator" / "MyApp.build"
    env = {
        "HOME": os.environ["HOME"], "USER": os.environ.get("USER", "root"), "PATH": XCODE_PATH,
        "TMPDIR": str(build / "tmp"), "SHELL": "/bin/sh", "ACTION": "build", "CONFIGURATION": "Debug",
        "PLATFORM_NAME": "iphonesimulator", "PROJECT_NAME": "MyApp", "TARGET_NAME": "MyApp", "PRODUCT_NAME": "MyApp",
        "SRCROOT": str(src), "PROJECT_DIR": str(src), "PROJECT_FILE_PATH": str(src / "MyApp.xcodeproj"),
        "OBJROOT": str(build / "Intermediates.noindex"), "SYMROOT": str(build / "Products"),
        "BUILT_PRODUCTS_DIR": str(build / "Products" / "Debug-iphonesimulator"),
        "TARGET_BUILD_DIR": str(build / "Products" / "Debug-iphonesimulator"),
        "TEMP_DIR": str(inter), "TARGET_TEMP_DIR": str(inter), "PROJECT_TEMP_DIR": str(inter.parent),
        "DERIVED_FILE_DIR": str(inter / "DerivedSources"), "DERIVED_FILES_DIR": str(inter / "DerivedSources"),
        "SCRIPT_INPUT_FILE_COUNT": "0", "SCRIPT_OUTPUT_FILE_COUNT": "0",
        "SCRIPT_INPUT_FILE_LIST_COUNT": "1", "SCRIPT_OUTPUT_FILE_LIST_COUNT": "1",
        "EDGEC_FLAGS": "--no-cache",
    }
    for d in ("TMPDIR", "TEMP_DIR", "DERIVED_FILE_DIR", "BUILT_PRODUCTS_DIR"):
        Path(env[d]).mkdir(parents=True, exist_ok=True)
    return env


def _run_phase(env: dict) -> subprocess.CompletedProcess:
    """Xcode writes the phase's body to $TEMP_DIR/Script-<id>.sh and runs it with the phase's shell from
    $SRCROOT, in exactly the environment above (nothing inherited)."""
    body = Path(env["TEMP_DIR"]) / "Script-0A1B2C3D4E5F.sh"
    body.write_text('#!/bin/sh\n"${SRCROOT}/edgec-build-phase.sh"\n')
    body.chmod(0o755)
    return subprocess.run(["/bin/sh", "-c", str(body)], env=env, cwd=env["SRCROOT"], capture_output=True,
                          text=True, timeout=300)


def test_xcode_build_phase_script_builds_the_mlpackage(cli, conv_model_path, tmp_path):
    src = tmp_path / "My App"  # Xcode projects live in folders with spaces
    (src / "Resources").mkdir(parents=True)
    (src / "Resources" / "conv.onnx").write_bytes(conv_model_path.read_bytes())
    r = cli.invoke(app, ["integrate", "xcode", "Resources/conv.onnx", "--dest", "MyApp/Models", "--out", str(src)])
    assert r.exit_code == 0, r.output
    script = src / "edgec-build-phase.sh"
    assert os.access(script, os.X_OK)
    assert (src / "edgec-inputs.xcfilelist").read_text() == "$(SRCROOT)/Resources/conv.onnx\n"
    assert (src / "edgec-outputs.xcfilelist").read_text() == "$(SRCROOT)/MyApp/Models/conv.mlpackage\n"

    # edgec where the script looks first under Xcode's minimal PATH: the project's virtualenv
    venv_bin = src / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    _edgec_wrapper(tmp_path).rename(venv_bin / "edgec")
    env = _xcode_env(src, tmp_path / "DerivedData" / "MyApp-abc" / "Build")
    inter = Path(env["TARGET_TEMP_DIR"])
    env["SCRIPT_INPUT_FILE_LIST_0"] = str(inter / "InputFileList-0A1B-edgec-inputs-resolved.xcfilelist")
    env["SCRIPT_OUTPUT_FILE_LIST_0"] = str(inter / "OutputFileList-0A1B-edgec-outputs-resolved.xcfilelist")
    inputs = _resolve_xcfilelist(src / "edgec-inputs.xcfilelist", env, Path(env["SCRIPT_INPUT_FILE_LIST_0"]))
    outputs = _resolve_xcfilelist(src / "edgec-outputs.xcfilelist", env, Path(env["SCRIPT_OUTPUT_FILE_LIST_0"]))
    assert all(p.is_file() for p in inputs)
    assert outputs == [src / "MyApp" / "Models" / "conv.mlpackage"] and not outputs[0].exists()

    done = _run_phase(env)
    assert done.returncode == 0, done.stdout + done.stderr
    pkg = outputs[0]  # the declared output, as Xcode resolved it
    assert (pkg / "Manifest.json").is_file()
    assert not pkg.with_name("conv.mlpackage.tmp").exists()
    assert (Path(env["DERIVED_FILE_DIR"]) / "edgec" / "report.md").is_file()
    assert f"note: edgec: {pkg}" in done.stdout

    # a model edgec cannot build fails the phase and leaves the previous package in place
    (src / "Resources" / "conv.onnx").write_bytes(b"not onnx")
    bad = _run_phase(env)
    assert bad.returncode != 0 and (pkg / "Manifest.json").is_file()

    # without Xcode's variables the script stops with a message, not half a build
    bare = subprocess.run(["/bin/sh", str(script)], env={"PATH": XCODE_PATH}, capture_output=True, text=True)
    assert bare.returncode != 0 and "Run Script build phase" in bare.stderr


SHELLCHECK = shutil.which("shellcheck")
needs_shellcheck = pytest.mark.skipif(SHELLCHECK is None, reason="shellcheck not installed "
                                      "(apt-get install -y shellcheck)")


@needs_shellcheck
@pytest.mark.parametrize("args", [["Resources/net.onnx"],
                                  ["Models/my net.onnx", "--profile", "Config/board.yaml", "--dest", "App/ML"]])
def test_xcode_build_phase_passes_shellcheck(cli, tmp_path, args):
    r = cli.invoke(app, ["integrate", "xcode", *args, "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    done = subprocess.run([SHELLCHECK, "--shell=sh", "--severity=style", str(tmp_path / "edgec-build-phase.sh")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


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


# ------------------------------------------------------------------ the workflow's `run:` steps

def _workflow(cli, tmp_path) -> dict:
    r = cli.invoke(app, ["integrate", "github-actions", "models/net.onnx", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    return yaml.safe_load((tmp_path / "edgec.yml").read_text())


def _run_steps(wf: dict, matrix_entry: dict) -> list[str]:
    """Every `run:` script with GitHub's `${{ ... }}` expressions replaced as the runner would (textually)."""
    def expr(m):
        e = m.group(1).strip()
        return matrix_entry[e.split(".", 1)[1]] if e.startswith("matrix.") else "EXPR"

    return [re.sub(r"\$\{\{(.*?)\}\}", expr, s["run"]) for j in wf["jobs"].values() for s in j["steps"] if "run" in s]


def _simple_commands(script: str) -> list[list[str]]:
    """Split a one-level shell script into simple commands: `$(...)` bodies, then on && || | ; with redirections
    dropped. Enough for the workflow's one-liners; anything fancier fails the test loudly."""
    subs = re.findall(r"\$\(([^()]*)\)", script)
    out = []
    for text in [re.sub(r"\$\([^()]*\)", "SUBST", script), *subs]:
        lex = shlex.shlex(text, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        cmd: list[str] = []
        skip = False
        for tok in [*lex, ";"]:
            if skip:
                skip = False
            elif tok in (">", ">>", "<"):
                skip = True
            elif tok in ("&&", "||", "|", ";"):
                if cmd:
                    out.append(cmd)
                cmd = []
            else:
                assert not set(tok) & set("()<>&|;`"), f"unexpected shell syntax {tok!r} in {script!r}"
                cmd.append(tok)
    return out


def _check_edgec_call(argv: list[str]) -> None:
    """The subcommand exists in the Typer app, every option exists there, values and positionals fit."""
    cmd = typer.main.get_command(app)
    args = list(argv[1:])
    while hasattr(cmd, "commands"):  # a group (Typer vendors its own click: duck-type, not isinstance)
        name = args.pop(0)
        assert name in cmd.commands, f"`edgec {name}` does not exist: {argv}"
        cmd = cmd.commands[name]
    options = {o: p for p in cmd.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)}
    positionals, i = [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("-"):
            name = a.split("=", 1)[0]
            assert name in options, f"edgec {cmd.name} has no option {name}: {argv}"
            if not options[name].is_flag and "=" not in a:
                i += 1
                assert i < len(args) and not args[i].startswith("--"), f"{name} needs a value: {argv}"
        else:
            positionals.append(a)
        i += 1
    arguments = [p for p in cmd.params if p.param_type_name == "argument"]
    required = sum(1 for p in arguments if p.required)
    many = any(p.nargs == -1 for p in arguments)
    assert required <= len(positionals) and (many or len(positionals) <= len(arguments)), argv


def test_github_workflow_runs_only_commands_that_exist(cli, tmp_path):
    wf = _workflow(cli, tmp_path)
    # the plan step for real: its output is the matrix the build job reads
    (plan,) = [s for s in wf["jobs"]["plan"]["steps"] if s.get("id") == "matrix"]
    out_file = tmp_path / "github_output"
    env = {**os.environ, **{k: str(v) for k, v in wf["env"].items()}, "GITHUB_OUTPUT": str(out_file),
           "PATH": f"{_edgec_wrapper(tmp_path).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-e", "-c", plan["run"]], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    key, _, value = out_file.read_text().strip().partition("=")
    assert key == "matrix"
    entries = json.loads(value)["include"]
    assert [e["target"] for e in entries] == ["ios", "android", "ort-mobile"]
    used = set(re.findall(r"matrix\.(\w+)", yaml.safe_dump(wf["jobs"]["build"])))
    assert used and all(used <= set(e) for e in entries), used
    pattern = wf["jobs"]["report"]["steps"][2]["with"]["pattern"]
    assert all(fnmatch.fnmatch(e["out"], pattern) for e in entries)  # merge downloads every job's upload

    commands = [c for run in _run_steps(wf, entries[0]) for c in _simple_commands(run)]
    names = {c[0] for c in commands}
    assert {"edgec", "pip", "echo", "test", "cat"} == names, names
    for c in commands:
        if c[0] == "edgec":
            _check_edgec_call(c)
        else:  # a builtin or a program on the runner (ubuntu-latest has these; so does this machine)
            kind = subprocess.run(["bash", "-c", f"type -t {shlex.quote(c[0])}"], capture_output=True, text=True)
            assert kind.stdout.strip() in ("builtin", "file"), c
    assert sorted(c[1] for c in commands if c[0] == "edgec") == ["build", "matrix", "merge"]
    # the checker itself rejects what does not exist
    for bad in (["edgec", "bulid", "m.onnx"], ["edgec", "build", "m.onnx", "--targets", "ios"],
                ["edgec", "merge", "d", "--out"]):
        with pytest.raises(AssertionError):
            _check_edgec_call(bad)


@needs_shellcheck
def test_github_workflow_run_steps_pass_shellcheck(cli, tmp_path):
    """GitHub runs each `run:` with `bash -e {0}`: shellcheck every script as bash."""
    wf = _workflow(cli, tmp_path)
    entry = {"name": "ios-p", "target": "ios", "profile": "p", "out": "dist-ios-p"}
    for i, run in enumerate(_run_steps(wf, entry)):
        f = tmp_path / f"step{i}.sh"
        f.write_text(run + "\n")
        done = subprocess.run([SHELLCHECK, "--shell=bash", "--severity=style", str(f)], capture_output=True, text=True)
        assert done.returncode == 0, run + "\n" + done.stdout


def test_xcode_build_phase_passes_input_shapes_on(cli, dynamic_model_path, tmp_path):
    """A model with a dynamic input: `integrate xcode --input-shape` writes a phase whose build fixes it (without
    the flag the build inside Xcode fails with exit 5)."""
    src = tmp_path / "App"
    (src / "Resources").mkdir(parents=True)
    (src / "Resources" / "net.onnx").write_bytes(dynamic_model_path.read_bytes())
    r = cli.invoke(app, ["integrate", "xcode", "Resources/net.onnx", "--input-shape", "images=1,3,16,16",
                         "--out", str(src)])
    assert r.exit_code == 0, r.output
    assert "--input-shape images=1,3,16,16" in (src / "edgec-build-phase.sh").read_text()
    venv_bin = src / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    _edgec_wrapper(tmp_path).rename(venv_bin / "edgec")
    env = _xcode_env(src, tmp_path / "DerivedData" / "App-x" / "Build")
    done = _run_phase(env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (src / "Models" / "net.mlpackage" / "Manifest.json").is_file()
    bad = cli.invoke(app, ["integrate", "xcode", "m.onnx", "--input-shape", "images=1,x", "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and not (tmp_path / "o" / "edgec-build-phase.sh").exists()
