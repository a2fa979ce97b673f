"""Content-addressed build cache: an unchanged (model, target, profile, options, edgec + dependency versions)
build is restored from disk instead of lowered and validated again.

Layout: <cache>/builds/<key[:2]>/<key>/{entry.json, files/...}. An entry is written in a temp folder and
renamed into place, so a crashed or concurrent build never leaves half an entry. Only builds that passed
validation are stored: a failed budget is re-measured next time instead of replayed.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import onnx

from edgec import __version__
from edgec.artifact import ArtifactResult, ModelInfo
from edgec.config.models import Profile, Target

# bump when the entry layout changes so old entries are ignored, not misread
LAYOUT = 1
DEFAULT_MAX_MB = 2048  # EDGEC_CACHE_MAX_MB overrides; least recently used entries go first
_source_digest: str | None = None


def cache_root() -> Path:
    from edgec.paths import cache_dir

    return cache_dir() / "builds"


def edgec_source_digest() -> str:
    """Hash of edgec's own code and YAML: a changed lowering invalidates the cache even without a version bump."""
    global _source_digest
    if _source_digest is None:
        pkg = Path(__file__).parent
        h = hashlib.sha256()
        for f in sorted(p for p in pkg.rglob("*") if p.suffix in (".py", ".yaml") and p.is_file()):
            h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
        _source_digest = h.hexdigest()
    return _source_digest


def model_digest(path: Path) -> str:
    """sha256 of the model file and of every external-data file it names (weights can live outside the .onnx)."""
    h = hashlib.sha256(Path(path).read_bytes())
    model = onnx.load(str(path), load_external_data=False)
    locations = sorted({
        e.value
        for t in onnx.external_data_helper._get_all_tensors(model)
        if t.data_location == onnx.TensorProto.EXTERNAL
        for e in t.external_data if e.key == "location"
    })
    for loc in locations:
        f = (Path(path).parent / loc).resolve()
        h.update(loc.encode() + b"\0")
        h.update(f.read_bytes() if f.is_file() and f.is_relative_to(Path(path).parent.resolve()) else b"missing")
    return h.hexdigest()


def _strings(x):
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from _strings(v)
    elif isinstance(x, (list, tuple)):
        for v in x:
            yield from _strings(v)


def referenced_files_digest(profile_dump: dict) -> str:
    """Hash the contents of every file or folder a profile names (calibration images, classifier labels):
    editing the data behind an unchanged path must miss the cache."""
    h = hashlib.sha256()
    for value in sorted(set(_strings(profile_dump))):
        if "/" not in value and "\\" not in value:
            continue
        path = Path(value)
        try:
            files = [path] if path.is_file() else sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else []
            for f in files:
                h.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
        except OSError:
            h.update(value.encode() + b"\0unreadable\0")
    return h.hexdigest()


def build_key(model_sha: str, target: Target, profile: Profile, options: dict) -> str:
    from edgec.package.manifest import dependency_versions

    parts = {
        "layout": LAYOUT,
        "model": model_sha,
        "target": target.model_dump(mode="json"),
        "profile": profile.model_dump(mode="json", by_alias=True),
        "profile_files": referenced_files_digest(profile.model_dump(mode="json", by_alias=True)),
        "options": options,
        "edgec": __version__,
        "edgec_source": edgec_source_digest(),
        "versions": dependency_versions(),
        # host latency and some runtimes' kernels depend on the machine
        "machine": [platform.system(), platform.machine(), platform.python_version()],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class BuildCache:
    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root else cache_root()

    def _dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def lookup(self, key: str) -> dict | None:
        """The stored entry (artifact manifest entry + model info), or None on a miss or a damaged entry."""
        d = self._dir(key)
        try:
            entry = json.loads((d / "entry.json").read_text())
        except (OSError, ValueError):
            return None
        files = [entry["artifact"]["path"], *entry["artifact"]["extra_files"]]
        if not all((d / "files" / f).exists() for f in files):
            return None
        try:
            os.utime(d / "entry.json")  # recently used: pruned last
        except OSError:
            pass
        return entry

    def restore(self, key: str, entry: dict, stage: Path) -> list[Path]:
        """Copy an entry's files into a staging folder (the caller renames them into the output folder)."""
        src = self._dir(key) / "files"
        out = []
        for rel in [entry["artifact"]["path"], *entry["artifact"]["extra_files"]]:
            s, d = src / rel, stage / rel
            if s.is_dir():
                shutil.copytree(s, d)
            else:
                shutil.copy2(s, d)
            out.append(d)
        return out

    def store(self, key: str, result: ArtifactResult, info: ModelInfo, out_dir: Path) -> None:
        """Best effort: a full disk or read-only cache must never fail a build that succeeded."""
        from edgec.package.manifest import _artifact_entry

        final = self._dir(key)
        if final.exists():
            return
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-", dir=final.parent))
            (tmp / "files").mkdir()
            for p in [result.final_path, *result.artifact.extra_files]:
                if p.is_dir():
                    shutil.copytree(p, tmp / "files" / p.name)
                else:
                    shutil.copy2(p, tmp / "files" / p.name)
            info_d = asdict(info)
            info_d["path"] = str(info.path)
            entry = {"artifact": _artifact_entry(result, out_dir), "model": info_d}
            (tmp / "entry.json").write_text(json.dumps(entry, indent=1, default=str))
            try:
                os.replace(tmp, final)
            except OSError:  # another process stored the same key first
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            return
        self.prune(keep=final)

    def prune(self, max_bytes: int | None = None, keep: Path | None = None) -> int:
        """Delete least recently used entries until the cache is under max_bytes; returns bytes freed."""
        if max_bytes is None:
            try:
                max_bytes = int(float(os.environ.get("EDGEC_CACHE_MAX_MB", DEFAULT_MAX_MB)) * 1e6)
            except ValueError:
                max_bytes = DEFAULT_MAX_MB * 10**6
        entries = []
        for meta in self.root.glob("*/*/entry.json"):
            try:
                size = sum(f.stat().st_size for f in meta.parent.rglob("*") if f.is_file())
                entries.append((meta.stat().st_mtime, meta.parent, size))
            except OSError:
                continue
        total, freed = sum(e[2] for e in entries), 0
        for _, folder, size in sorted(entries, key=lambda e: e[0]):
            if total <= max_bytes:
                break
            if keep is not None and folder == keep:
                continue
            # rename first so a concurrent lookup never sees half an entry
            trash = folder.with_name(f".del-{folder.name}-{os.getpid()}")
            try:
                os.replace(folder, trash)
            except OSError:
                continue
            shutil.rmtree(trash, ignore_errors=True)
            total -= size
            freed += size
        return freed
