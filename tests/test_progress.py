"""A build says what it is doing while it runs: api.build's progress callback, the CLI's lines on a pipe, and
third-party output kept out of the terminal."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from edgec import api
from edgec.runtimes.native_log import capture_native_output

ROOT = Path(__file__).resolve().parents[1]


def test_api_build_reports_each_stage_and_target(conv_model_path, tmp_path):
    events = []
    opts = api.BuildOptions(target="all", out_dir=tmp_path / "out", validate=False,
                            progress=lambda stage, target, detail: events.append((stage, target)))
    outcome = api.build(conv_model_path, opts)
    assert outcome.result.passed
    assert events[0] == ("load", None) and events[-1] == ("report", None)
    for t in ("android", "ios", "ort-mobile"):
        stages = [s for s, target in events if target == t]
        assert stages[-2:] == ["lower", "done"], (t, events)
    assert [s for s, _ in events].count("prepare") == 1  # one prepared graph serves the three targets


def test_piped_cli_prints_a_timestamped_line_per_stage(conv_model_path, tmp_path):
    # `edgec build ... | cat`: stdout and stderr are pipes, as in a CI log
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-m", "edgec.cli", "build", str(conv_model_path), "--target", "all",
                        "-o", str(tmp_path / "out"), "--latency", "off", "--no-cache"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if " edgec [" in ln]
    assert all(re.match(r"^\d\d:\d\d:\d\d edgec \[ *\d+\.\d+s\] \w+", ln) for ln in lines), lines
    said = [" ".join(ln.split("] ", 1)[1].split(":")[0].split()[:2]) for ln in lines]
    for t in ("android", "ios", "ort-mobile"):
        assert said.index(f"lower {t}") < said.index(f"validate {t}") < said.index(f"done {t}"), said
    assert said[0].startswith("load") and said[-1].startswith("report")
    assert "edgec [" not in r.stdout  # stdout keeps the result table (and --json its JSON) only


def test_native_output_is_captured_not_printed(capfd):
    with capture_native_output() as lines:
        os.write(1, b"WARNING: failed to run Concat op (from C++)\n")
        os.write(2, b"more noise\n")
    assert lines == ["WARNING: failed to run Concat op (from C++)", "more noise"]
    out, err = capfd.readouterr()
    assert "failed to run" not in out + err and "noise" not in out + err


def test_onnxsim_lines_go_into_the_note():
    from edgec.graph.simplify import _said

    assert _said([]) == ""
    note = _said([f"WARNING: failed to run Concat op {i}" for i in range(5)])
    assert note.startswith("; onnxsim printed: WARNING: failed to run Concat op 0") and note.endswith("and 2 more")
