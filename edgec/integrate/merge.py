"""`edgec merge`: fold the output folders of several `edgec build` jobs (one per matrix entry) into one folder
with every artifact, one manifest.json, report.md, report.html and optionally JUnit XML."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from edgec.artifact import BuildResult
from edgec.errors import EdgecError, UsageError
from edgec.hashing import sha256_path
from edgec.package.files import ensure_out_dir, place, staging_dir
from edgec.package.html import write_html
from edgec.package.junit import read_failed_build, write_junit
from edgec.package.manifest import manifest_dict, read_manifest, result_from_manifest, write_manifest
from edgec.package.report import write_report


@dataclass
class MergeOutcome:
    result: BuildResult
    errors: list[dict]  # targets that failed in their job, as recorded in that job's manifest
    html_path: Path
    junit_path: Path | None

    @property
    def ok(self) -> bool:
        return self.result.passed and not self.errors


class _RecordedError(EdgecError):
    """A failure read back from a job's manifest: keeps that job's error kind and message."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _copy_into(src: Path, stage: Path) -> Path:
    dest = stage / src.name
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)
    return dest


def merge(folders: list[Path], out_dir: Path, junit: Path | None = None) -> MergeOutcome:
    folders = [Path(f) for f in folders]
    out_dir = Path(out_dir)
    if not folders:
        raise UsageError("edgec merge: give the per-job output folders, e.g. `edgec merge dist-*/ --out dist`.")
    if out_dir.resolve() in {f.resolve() for f in folders}:
        raise UsageError(f"edgec merge: --out {out_dir} is also one of the inputs; pick a new folder.")
    manifests, job_failures = [], []
    for f in sorted(folders):
        if f.is_dir() and not (f / "manifest.json").exists():
            # the job failed before writing a manifest (single-target build): keep its reason from the JUnit
            # file `edgec build --junit` still writes, or say that it is unknown
            found = [e for j in sorted(f.glob("*.xml")) for e in read_failed_build(j)]
            job_failures += found or [{"target": f.name, "profile": "-", "kind": "missing output",
                                       "message": f"{f} has no manifest.json: that job failed before writing one; "
                                                  "see its log."}]
            continue
        manifests.append((f, read_manifest(f)))
    if not manifests:
        raise UsageError(f"edgec merge: none of {', '.join(map(str, folders))} has a manifest.json; every job failed "
                         "or these are not `edgec build` output folders.")
    model = manifests[0][1]["model"]
    for f, m in manifests[1:]:
        if m["model"]["sha256"] != model["sha256"]:
            raise UsageError(
                f"edgec merge: {f} was built from a different model (sha256 {m['model']['sha256'][:12]}) than "
                f"{manifests[0][0]} ({model['sha256'][:12]}); merge only the outputs of one model's matrix.")

    out_dir = ensure_out_dir(out_dir)
    entries, errors, origin, stage = [], [], {}, staging_dir(out_dir)
    try:
        staged: dict[str, tuple[Path, str]] = {}
        for folder, m in manifests:
            for e in m["artifacts"]:
                pair = (e["target"], e["profile"])
                if pair in origin:
                    raise UsageError(f"edgec merge: {pair[0]}/{pair[1]} is in both {origin[pair]} and {folder}.")
                origin[pair] = folder
                for rel in [e["path"], *e.get("extra_files", [])]:
                    src = folder / rel
                    if not src.exists():
                        raise UsageError(f"edgec merge: {folder}/manifest.json lists {rel}, but the file is missing "
                                         "(was the job's upload incomplete?).")
                    digest = sha256_path(src)
                    if rel in staged:
                        if staged[rel][1] != digest:
                            raise UsageError(f"edgec merge: {rel} differs between {staged[rel][0]} and {folder}; "
                                             "two jobs wrote different files under the same name.")
                        continue
                    _copy_into(src, stage)
                    staged[rel] = (folder, digest)
                entries.append(e)
            errors += m.get("errors", [])
        for rel in staged:
            place(stage / rel, out_dir / rel)
    finally:
        shutil.rmtree(stage, ignore_errors=True)

    # a pair that failed in one job but was built by another (a re-run) is not an error of the merged build
    errors = [er for er in errors + job_failures if (er["target"], er["profile"]) not in origin]
    entries.sort(key=lambda e: (e["target"], e["profile"]))
    result = result_from_manifest({"model": model, "artifacts": entries}, out_dir)
    failures = [(er["target"], er["profile"], _RecordedError(er["kind"], er["message"])) for er in errors]
    result.manifest_path = write_manifest(result, failures)
    result.report_path = write_report(result, failures)
    data = manifest_dict(result, failures)
    html_path = write_html(data, out_dir)
    junit_path = write_junit(data, junit) if junit else None
    return MergeOutcome(result, errors, html_path, junit_path)
