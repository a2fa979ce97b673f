"""The repository as shipped: a wheel built from it installs and builds; no stray files; one --debug; ruff-clean."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_builtin_yaml_lives_at_the_top_level():
    assert sorted(p.name for p in (ROOT / "targets").glob("*.yaml")) == ["android.yaml", "ios.yaml", "ort-mobile.yaml"]
    assert (ROOT / "profiles" / "pixel-8.yaml").is_file()
    assert not (ROOT / "edgec" / "targets").exists() and not (ROOT / "edgec" / "profiles").exists()


def test_no_stray_onnxruntime_profiles(tmp_path, monkeypatch):
    # ORT writes onnxruntime_profile__*.json into the working directory when profiling is on; edgec must never
    # turn it on (six such files were once committed at the repository's root)
    from edgec.runtimes.host_ort import OrtRunner, session_options

    assert not list(ROOT.glob("onnxruntime_profile__*.json"))
    assert session_options(1).enable_profiling is False
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    monkeypatch.chdir(tmp_path)
    import numpy as np

    OrtRunner(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])).run({"x": np.ones(2, np.float32)})
    assert not list(tmp_path.glob("onnxruntime_profile__*.json"))


def test_debug_is_declared_once():
    text = (ROOT / "edgec" / "cli.py").read_text()
    assert text.count('"--debug"') == 1, "declare --debug once (the shared option set) and reuse it"


def test_the_tree_passes_ruff():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]' installs it)")
    r = subprocess.run([ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-3000:]


@pytest.mark.slow  # ~1 min: .ci/run runs it after the main suite
def test_wheel_installs_and_builds_in_a_fresh_venv(tmp_path):
    """pip wheel from a copy of the repo; a venv that sees the system's dependencies (no downloads beyond pip's
    build backend) but not this checkout; `edgec build --sample squeezenet --target all` from there."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("edgec", "targets", "profiles"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    wheels = tmp_path / "wheels"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(src)],
                       capture_output=True, text=True, env=env, timeout=600)
    if r.returncode != 0 and "Could not find a version that satisfies" in r.stderr:
        pytest.skip(f"pip cannot fetch the build backend (no package index): {r.stderr.strip()[-200:]}")
    assert r.returncode == 0, r.stderr
    wheel = next(wheels.glob("edgec-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "edgec/targets/ios.yaml" in names and "edgec/profiles/pixel-8.yaml" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run([str(py), "-c", "import edgec; print(edgec.__file__)"], capture_output=True, text=True,
                           env=env, cwd=work, timeout=60).stdout.strip()
    assert where.startswith(str(venv)), where  # the wheel, not this checkout or an editable install
    r = subprocess.run([str(venv / "bin" / "edgec"), "build", "--sample", "squeezenet", "--target", "all",
                        "--latency", "off", "--no-cache", "-o", str(work / "dist")],
                       capture_output=True, text=True, env=env, cwd=work, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    built = sorted(p.name for p in (work / "dist").iterdir())
    assert {"squeezenet.tflite", "squeezenet.ort", "squeezenet.mlpackage", "report.html"} <= set(built), built
