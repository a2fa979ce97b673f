"""manifest.json: the contract every target fills in (hashes, sizes, metrics, versions)."""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from edgec import __version__
from edgec.artifact import (
    Artifact, ArtifactResult, BuildResult, LatencyResult, ModelInfo, NumericsResult, OutputMetrics,
)
from edgec.package.files import write_text_atomic

VERSIONED = ("onnx", "onnxruntime", "onnxsim", "numpy", "coremltools", "ai-edge-litert", "flatbuffers")


def dependency_versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _finite(x):
    """JSON has no inf/NaN: write them as strings so every JSON reader can load the manifest."""
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return str(x)
    return x


def _numerics_entry(n: NumericsResult) -> dict:
    return {
        "ran_on": n.ran_on,
        "samples": n.samples,
        "thresholds": n.thresholds,
        "outputs": {name: {k: _finite(v) for k, v in asdict(m).items()} for name, m in n.outputs.items()},
        "passed": n.passed,
        "message": n.message,
        "data": n.data,
    }


def _artifact_entry(a: ArtifactResult, out_dir: Path) -> dict:
    entry = {
        "target": a.artifact.target,
        "profile": a.artifact.profile,
        "format": a.artifact.format,
        "path": a.final_path.relative_to(out_dir).as_posix(),
        "sha256": a.sha256,
        "bytes": a.bytes,
        "precision": a.artifact.precision,
        "extra_files": [p.name for p in a.artifact.extra_files],
        "numerics": None,
        "latency": None,
        "passed": a.passed,
        "notes": a.artifact.notes,
        "details": a.artifact.details,
        "seconds": {k: round(v, 3) for k, v in a.seconds.items()},
    }
    if a.numerics is not None:
        entry["numerics"] = _numerics_entry(a.numerics)
    if a.numerics_arm is not None:  # --emulator: ARM-kernel numerics beside the host-kernel ones
        entry["numerics_arm"] = _numerics_entry(a.numerics_arm)
    if a.latency is not None:
        entry["latency"] = {k: _finite(v) for k, v in asdict(a.latency).items()}
    return entry


def manifest_dict(result: BuildResult, failures: list[tuple[str, str, Exception]] = ()) -> dict:
    m = result.model
    return {
        "edgec_version": __version__,
        "model": {
            "path": str(m.path),
            "sha256": m.sha256,
            "opset": m.opset,
            "ir_version": m.ir_version,
            "inputs": m.inputs,
            "outputs": m.outputs,
            "bytes": m.bytes,
            "producer": m.producer,
            "nodes": m.nodes,
            "parameters": m.parameters,
            "op_histogram": m.op_histogram,
            **({"renamed": m.renamed} if m.renamed else {}),
        },
        "versions": dependency_versions(),
        "passed": result.passed and not failures,
        "artifacts": [_artifact_entry(a, result.out_dir) for a in result.artifacts],
        **({"cross_target": result.cross_target} if result.cross_target else {}),
        # targets that produced no artifact, with the reason
        "errors": [
            {"target": t, "profile": p, "kind": getattr(e, "kind", "error"), "message": str(e)}
            for t, p, e in failures
        ],
    }


def write_manifest(result: BuildResult, failures: list[tuple[str, str, Exception]] = ()) -> Path:
    text = json.dumps(manifest_dict(result, failures), indent=2, sort_keys=False, default=str) + "\n"
    return write_text_atomic(result.out_dir / "manifest.json", text)


# ---------------------------------------------------------------- reading back (build cache, `edgec merge`)


def _num(x):
    """Undo _finite: "inf"/"nan" strings back to floats."""
    return float(x) if isinstance(x, str) and x in ("inf", "-inf", "nan") else x


def model_info_from_dict(d: dict) -> ModelInfo:
    return ModelInfo(
        path=Path(d["path"]), sha256=d["sha256"], opset=d["opset"], ir_version=d["ir_version"],
        producer=d.get("producer", ""), inputs=d["inputs"], outputs=d["outputs"],
        op_histogram=d.get("op_histogram", {}), bytes=d["bytes"], nodes=d.get("nodes", 0),
        parameters=d.get("parameters", 0), renamed=d.get("renamed", {}),
    )


def artifact_result_from_entry(e: dict, out_dir: Path) -> ArtifactResult:
    """The inverse of _artifact_entry, with paths resolved inside out_dir."""
    artifact = Artifact(
        target=e["target"], profile=e["profile"], format=e["format"], path=out_dir / e["path"],
        precision=e["precision"], extra_files=[out_dir / f for f in e["extra_files"]],
        notes=list(e.get("notes", [])), details=e.get("details", {}),
    )
    numerics = _numerics_from(e["numerics"]) if e.get("numerics") else None
    latency = LatencyResult(**{k: _num(v) for k, v in e["latency"].items()}) if e.get("latency") else None
    return ArtifactResult(
        artifact=artifact, final_path=out_dir / e["path"], sha256=e["sha256"], bytes=e["bytes"],
        numerics=numerics, latency=latency, seconds=dict(e.get("seconds", {})),
        numerics_arm=_numerics_from(e["numerics_arm"]) if e.get("numerics_arm") else None,
    )


def _numerics_from(n: dict) -> NumericsResult:
    return NumericsResult(
        ran_on=n["ran_on"], passed=n["passed"], thresholds=n.get("thresholds", {}), samples=n.get("samples", 1),
        message=n.get("message", ""), data=n.get("data", ""),
        outputs={k: OutputMetrics(**{f: _num(v) for f, v in m.items()}) for k, m in n["outputs"].items()},
    )


def read_manifest(folder: Path) -> dict:
    from edgec.errors import UsageError

    path = Path(folder) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except OSError:
        raise UsageError(f"{path}: no manifest.json in {folder}; is it the --out folder of an `edgec build`?") from None
    except ValueError as e:
        raise UsageError(f"{path}: not valid JSON ({e}); the build that wrote it was interrupted or it was edited.") from None


def result_from_manifest(data: dict, out_dir: Path) -> BuildResult:
    return BuildResult(
        model=model_info_from_dict(data["model"]), out_dir=out_dir,
        artifacts=[artifact_result_from_entry(e, out_dir) for e in data["artifacts"]],
    )
