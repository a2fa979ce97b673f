"""Metadata and a deterministic .mlpackage on disk.

coremltools writes random UUIDs into Manifest.json and the conversion date into the model's metadata;
we replace the UUIDs with ones derived from each item's path (uuid5), drop the date, and re-serialise
model.mlmodel with deterministic protobuf map ordering. Same input -> byte-identical package files.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

_DATE_KEY = "com.github.apple.coremltools.conversion_date"
_NAMESPACE = uuid.UUID("6f1d3a52-6a43-4f0e-9a55-2f3c6b1e7d10")  # fixed: edgec's own uuid5 namespace


def set_metadata(mlmodel, metadata: dict[str, str], descriptions: dict[str, str], user: dict[str, str]) -> None:
    """Author/license/version/short description, per-feature descriptions, user-defined key/values."""
    mlmodel.author = metadata.get("author", "")
    mlmodel.license = metadata.get("license", "")
    mlmodel.version = metadata.get("version", "")
    mlmodel.short_description = metadata.get("description", metadata.get("short_description", ""))
    for name, text in descriptions.items():
        if name in mlmodel.input_description:
            mlmodel.input_description[name] = text
        else:
            mlmodel.output_description[name] = text
    for key, value in metadata.items():  # any other profile metadata key travels as user-defined metadata
        if key not in ("author", "license", "version", "description", "short_description"):
            mlmodel.user_defined_metadata[key] = value
    for key, value in user.items():
        mlmodel.user_defined_metadata[key] = value
    if _DATE_KEY in mlmodel.user_defined_metadata:
        del mlmodel.user_defined_metadata[_DATE_KEY]


def save_deterministic(mlmodel, path: Path) -> None:
    mlmodel.save(str(path))
    normalise_package(path)


def normalise_package(path: Path) -> None:
    """Rewrite Manifest.json ids and model.mlmodel bytes so two builds are byte-identical."""
    from coremltools.proto import Model_pb2

    manifest_path = path / "Manifest.json"
    manifest = json.loads(manifest_path.read_text())
    renamed = {}
    for old, item in manifest.get("itemInfoEntries", {}).items():
        renamed[old] = str(uuid.uuid5(_NAMESPACE, item["path"])).upper()
    manifest["itemInfoEntries"] = {renamed[k]: v for k, v in sorted(manifest["itemInfoEntries"].items(),
                                                                        key=lambda kv: renamed[kv[0]])}
    manifest["rootModelIdentifier"] = renamed.get(manifest.get("rootModelIdentifier"), manifest.get("rootModelIdentifier"))
    manifest_path.write_text(json.dumps(manifest, indent=4, sort_keys=True) + "\n")
    for spec_file in path.rglob("model.mlmodel"):
        spec = Model_pb2.Model()
        spec.ParseFromString(spec_file.read_bytes())
        spec_file.write_bytes(spec.SerializeToString(deterministic=True))
    for f in path.rglob("*"):  # coremltools leaves some files 0600 (mkstemp); make them like the rest
        os.chmod(f, 0o755 if f.is_dir() else 0o644)
