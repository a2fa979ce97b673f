"""Helpers for the hardening tests: run the CLI in a subprocess, and check an output folder is one whole build."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from edgec.hashing import sha256_path, size_of

REPO = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    e["EDGEC_NO_CACHE"] = "1"
    return e


def edgec(*args, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgec.cli", *map(str, args)], capture_output=True, text=True,
                          env=env(), timeout=timeout, **kw)


def _sha(p: Path) -> str:
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(x for x in p.rglob("*") if x.is_file()):
            h.update(f.relative_to(p).as_posix().encode() + b"\0" + f.read_bytes())
        return h.hexdigest()
    return hashlib.sha256(p.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """name -> content hash of everything in the folder (hidden entries included)."""
    return {p.name: _sha(p) for p in sorted(folder.iterdir())} if folder.exists() else {}


def assert_one_whole_build(folder: Path) -> dict:
    """The folder holds exactly the files its manifest lists (plus the reports), with the sizes it records, and
    no staging or temporary leftovers. Returns the manifest."""
    names = sorted(p.name for p in folder.iterdir())
    assert not [n for n in names if n.startswith(".")], f"leftover hidden entries: {names}"
    manifest = json.loads((folder / "manifest.json").read_text())
    listed = {"manifest.json", "report.md", "report.html"}
    for a in manifest["artifacts"]:
        listed.add(a["path"])
        listed.update(a["extra_files"])
        path = folder / a["path"]
        assert sha256_path(path) == a["sha256"] and size_of(path) == a["bytes"], a["path"]
    assert sorted(listed) == names, (sorted(listed), names)
    return manifest
