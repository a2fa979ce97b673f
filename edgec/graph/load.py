"""Load an ONNX model as untrusted input: clear errors for bad files, external data only inside the model folder."""

from __future__ import annotations

from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from edgec.errors import ModelLoadError

HINT = "Re-export the model (e.g. torch.onnx.export) and check the file was copied completely."


def _check_external_data(model: onnx.ModelProto, path: Path) -> None:
    base = path.parent.resolve()
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (base / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(base):
            raise ModelLoadError(
                f"{path}: tensor '{tensor.name}' keeps its data at '{location}', outside the model's folder "
                f"{base}. edgec refuses external data outside the model folder (an untrusted model could read "
                f"any file). Move the data file next to the model and re-save it with a relative location."
            )
        if not target.is_file():
            raise ModelLoadError(
                f"{path}: tensor '{tensor.name}' keeps its data in '{location}', which does not exist in {base}. "
                f"Copy the external data file next to the model."
            )


def load_model(path: Path | str) -> onnx.ModelProto:
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file. Check the path to the .onnx model.")
    if path.is_dir():
        raise ModelLoadError(f"{path}: is a folder, not an .onnx file.")
    size = path.stat().st_size
    if size == 0:
        raise ModelLoadError(f"{path}: the file is empty (0 bytes). {HINT}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, UnicodeDecodeError) as e:
        raise ModelLoadError(
            f"{path}: not a readable ONNX model ({size} bytes; protobuf said: {e}). The file is truncated, "
            f"corrupt or not ONNX. {HINT}"
        ) from None
    except Exception as e:  # protobuf raises several internal types for garbage input
        raise ModelLoadError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e}). {HINT}") from None
    if not model.graph.node or not model.opset_import:
        raise ModelLoadError(
            f"{path}: parsed, but it has no graph nodes or no opset import ({size} bytes), so it is not an ONNX "
            f"model (a truncated or non-ONNX file can parse as an empty protobuf). {HINT}"
        )
    _check_external_data(model, path)
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read its external data ({e}).") from None
    try:
        onnx.checker.check_model(model, full_check=False)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        raise ModelLoadError(f"{path}: the ONNX checker rejects the model: {first.rstrip('.')}. {HINT}") from None
    return model


def opset_of(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return 0
