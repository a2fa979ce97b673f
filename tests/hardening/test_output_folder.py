"""Issue 21, the output folder as a whole: interrupted (SIGINT, SIGTERM) and concurrent rebuilds, a read-only or
full disk, a symlinked --out, leftovers of a killed build. Each leaves one build's complete set of files."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from edgec import api
from edgec.errors import OutputError
from tests.hardening.models import cnn
from tests.hardening.util import REPO, assert_one_whole_build, edgec, env, snapshot


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A model and a folder holding a complete fp32 --target all build of it (copied per test)."""
    root = tmp_path_factory.mktemp("built")
    model = root / "m.onnx"
    onnx.save(cnn(), str(model))
    r = edgec("build", model, "--target", "all", "--out", root / "out", "--latency", "off")
    assert r.returncode == 0, r.stderr
    return model, root / "out"


def _copy(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest, symlinks=True)
    return dest


def _inject(stage: str, action: str, nth: int, *args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.hardening.inject", stage, action, str(nth), "--", *map(str, args)],
                          capture_output=True, text=True, env=env(), cwd=REPO, timeout=300, **kw)


REBUILD = ("--target", "all", "--quantize", "fp16", "--latency", "off")  # different bytes from the fp32 set


# every stage, with both signals (lower and validate run in the build's worker process: the signal reaches the
# CLI's process while the worker is in that step)
STAGES = [("load", 1), ("prepare", 1), ("lower", 2), ("validate", 1), ("report", 1), ("manifest", 1),
          ("before-commit", 1)]


@pytest.mark.parametrize("stage,nth,sig,code", [(stage, nth, sig, code) for stage, nth in STAGES
                                                for sig, code in (("SIGINT", 130), ("SIGTERM", 143))])
def test_interrupted_rebuild_leaves_the_previous_set(built, tmp_path, stage, nth, sig, code):
    # main: an fp16 rebuild interrupted at 75 s left the new .tflite beside the old manifest; at 25 s a .tflite
    # and an .mlpackage with no manifest; SIGTERM killed the process with no cleanup at all
    model, previous = built
    out = _copy(previous, tmp_path / "out")
    before = snapshot(out)
    r = _inject(stage, sig, nth, "build", model, "--out", out, *REBUILD)
    assert r.returncode == code, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert lines[-1].startswith("edgec: " + ("terminated" if sig == "SIGTERM" else "interrupted"))
    assert "Traceback" not in r.stderr
    assert snapshot(out) == before
    assert_one_whole_build(out)


def test_interrupt_during_the_commit_finishes_it_first(built, tmp_path):
    model, previous = built
    out = _copy(previous, tmp_path / "out")
    r = _inject("mid-commit", "SIGINT", 2, "build", model, "--out", out, *REBUILD)
    assert r.returncode == 130, r.stderr
    manifest = assert_one_whole_build(out)
    assert {a["precision"] for a in manifest["artifacts"]} == {"fp16"}  # the new set, complete


def test_sigint_at_a_real_moment_leaves_one_whole_build(built, tmp_path):
    model, previous = built
    out = _copy(previous, tmp_path / "out")
    p = subprocess.Popen([sys.executable, "-m", "edgec.cli", "build", str(model), "--out", str(out), *REBUILD],
                         env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # wait for the build's own progress line saying it lowers (a real moment mid-build, past the imports)
    seen = []
    for line in p.stderr:
        seen.append(line)
        if " lower " in line:
            break
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, rest = p.communicate(timeout=120)
    err = "".join(seen) + rest
    assert p.returncode in (0, 130), err
    assert "Traceback" not in err
    assert_one_whole_build(out)


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_after_the_outcome_keeps_the_exit_code(built, tmp_path, sig):
    # the build finished and said so; a Ctrl-C while the interpreter exits used to kill it with -SIGINT (Python
    # restores the default handlers during finalization), turning a finished build into a failed exit status
    model, previous = built
    out = _copy(previous, tmp_path / "out")
    r = _inject("exit", sig, 1, "build", model, "--out", out, *REBUILD)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    manifest = assert_one_whole_build(out)
    assert {a["precision"] for a in manifest["artifacts"]} == {"fp16"}


def test_concurrent_builds_into_one_folder_take_turns(built, tmp_path):
    # the first build holds the folder's lock for 3 s in the middle of its commit; the second one must wait and
    # then replace the whole set: never a mix of the two
    model, _ = built
    out = tmp_path / "out"
    first = subprocess.Popen(
        [sys.executable, "-m", "tests.hardening.inject", "mid-commit", "sleep:3", "2", "--", "build", str(model),
         "--target", "android", "--out", str(out), "--no-validate"],
        env=env(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / "m.tflite").exists() and time.time() < deadline:  # the first commit is under way
        time.sleep(0.02)
    second = edgec("build", model, "--target", "ort-mobile", "--out", out, "--no-validate")
    first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    manifest = assert_one_whole_build(out)
    assert [a["target"] for a in manifest["artifacts"]] == ["ort-mobile"]


def test_two_builds_at_once_leave_one_whole_build(built, tmp_path):
    model, _ = built
    out = tmp_path / "out"
    procs = [subprocess.Popen([sys.executable, "-m", "edgec.cli", "build", str(model), "--target", t, "--out", str(out),
                               "--no-validate"], env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for t in ("android", "ort-mobile")]
    for p in procs:
        p.communicate(timeout=300)
        assert p.returncode == 0
    assert_one_whole_build(out)


def test_failed_rename_during_the_commit_puts_the_previous_set_back(built, tmp_path, monkeypatch):
    # a fault-injecting file system: the third rename of the commit fails as on a file system that went read-only
    import edgec.package.publish as publish

    model, previous = built
    out = _copy(previous, tmp_path / "out")
    before = snapshot(out)
    real, calls = os.replace, [0]

    def flaky(src, dst):
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(src, dst)

    swap = publish.OutputFolder._swap

    def swap_flaky(self, names):
        monkeypatch.setattr(publish.os, "replace", flaky)
        try:
            return swap(self, names)
        finally:
            monkeypatch.setattr(publish.os, "replace", real)

    monkeypatch.setattr(publish.OutputFolder, "_swap", swap_flaky)
    with pytest.raises(OutputError, match="read-only"):
        api.build(model, api.BuildOptions(target="android", out_dir=out, validate=False))
    assert snapshot(out) == before


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    if not _mount_tmpfs(mnt, "2m"):
        pytest.skip("needs root and mount (a small tmpfs)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_read_only_out_folder_is_an_output_error(built, tmpfs):
    model, _ = built
    out = tmpfs / "out"
    assert edgec("build", model, "--target", "android", "--out", out, "--no-validate").returncode == 0
    before = snapshot(out)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    r = edgec("build", model, "--target", "all", "--out", out, "--no-validate")
    assert r.returncode == OutputError.exit_code and "read-only" in r.stderr, r.stderr
    assert snapshot(out) == before


def test_disk_full_is_an_output_error_and_keeps_the_previous_set(built, tmpfs):
    model, _ = built
    out = tmpfs / "out"
    assert edgec("build", model, "--target", "android", "--out", out, "--no-validate").returncode == 0
    before = snapshot(out)
    fd = os.open(tmpfs / "filler", os.O_WRONLY | os.O_CREAT)  # fill the disk up to the last block
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    for target in ("android", "all"):
        r = edgec("build", model, "--target", target, "--out", out, "--no-validate")
        assert r.returncode == OutputError.exit_code, r.stderr
        assert "Traceback" not in r.stderr and "space" in r.stderr
        assert snapshot(out) == before


def test_symlinked_out_is_followed(built, tmp_path):
    model, _ = built
    real = tmp_path / "real"
    real.mkdir()
    (real / "notes.txt").write_text("mine")  # files edgec did not write stay
    link = tmp_path / "link"
    link.symlink_to(real)
    for target in ("android", "ort-mobile"):
        r = edgec("build", model, "--target", target, "--out", link, "--no-validate")
        assert r.returncode == 0, r.stderr
    assert link.is_symlink() and sorted(p.name for p in real.iterdir()) == [
        "m.ort", "m.required_operators.config", "manifest.json", "notes.txt", "report.html", "report.md"]


def test_failed_build_leaves_no_folder_and_cleans_a_killed_builds_stage(built, tmp_path):
    model, previous = built
    r = edgec("build", tmp_path / "missing.onnx", "--target", "all", "--out", tmp_path / "a" / "b")
    assert r.returncode == 4 and not (tmp_path / "a").exists()
    out = _copy(previous, tmp_path / "out")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / f".edgec-stage-{dead.stdout.strip()}-x"
    (stale / "half").mkdir(parents=True)
    assert edgec("build", model, "--target", "android", "--out", out, "--no-validate").returncode == 0
    assert_one_whole_build(out)


def test_sigint_while_the_worker_lowers_leaves_the_previous_set(built, tmp_path):
    # a float --target all build lowers in the worker process (edgec/worker.py): Ctrl-C there still unwinds
    model, previous = built
    out = _copy(previous, tmp_path / "out")
    before = snapshot(out)
    p = subprocess.Popen([sys.executable, "-m", "edgec.cli", "build", str(model), "--out", str(out), "--target", "all",
                          "--latency", "off", "--input-shape", "x=1,3,16,16"],
                         env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(out.glob(".edgec-stage-*/.edgec-staging-*")) and time.time() < deadline and p.poll() is None:
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in err, err
    assert snapshot(out) == before


def test_two_processes_sharing_the_build_cache(built, tmp_path):
    # two builds of one model at once, one cache folder, separate --out: both build, each stores the same keys
    # (the second store finds the first one's entry and drops its own copy); a third build is all cache hits with
    # the same bytes, and the cache holds no half-written entry
    model, _ = built
    cache_env = {**env(), "EDGEC_CACHE_DIR": str(tmp_path / "cache")}
    cache_env.pop("EDGEC_NO_CACHE")
    outs = [tmp_path / "a", tmp_path / "b"]
    procs = [subprocess.Popen([sys.executable, "-m", "edgec.cli", "build", str(model), "--target", "all", "--out",
                               str(o), "--latency", "off"], env=cache_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for o in outs]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    third = subprocess.run([sys.executable, "-m", "edgec.cli", "build", str(model), "--target", "all", "--out",
                            str(tmp_path / "c"), "--latency", "off"], env=cache_env, capture_output=True, text=True,
                           timeout=300)
    assert third.returncode == 0, third.stderr
    assert third.stderr.count("restored an unchanged build") == 3, third.stderr
    built_sets = [{a["path"]: a["sha256"] for a in assert_one_whole_build(o)["artifacts"]}
                  for o in [*outs, tmp_path / "c"]]
    assert built_sets[0] == built_sets[1] == built_sets[2]
    entries = list((tmp_path / "cache" / "builds").glob("*/*"))
    assert len(entries) == 3 and not [e.name for e in entries if e.name.startswith(".")]
