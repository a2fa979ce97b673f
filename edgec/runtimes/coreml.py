"""Run a built .mlpackage with ONNX names: coremltools predict on macOS, the MIL interpreter elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgec.errors import DeviceError, LoweringError
from edgec.runtimes.ct_quiet import quiet_native_proxy_warnings
from edgec.runtimes.metadata import ImageSpec, NameMap

quiet_native_proxy_warnings()  # coremltools is imported lazily below; keep its Linux noise out

_COMPUTE_UNITS = {"all": "ALL", "cpu_only": "CPU_ONLY", "cpu_and_gpu": "CPU_AND_GPU", "cpu_and_ne": "CPU_AND_NE"}


class _MacPredict:
    name = "coreml (coremltools predict, macOS)"
    latency_meaningful = True  # the real CoreML runtime (on the Mac's own chip, not the target device's)

    def __init__(self, path: Path, compute_units: str, images: dict[str, str] | None = None):
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, _COMPUTE_UNITS[compute_units]))
        self.images = images or {}  # CoreML input name -> color (RGB | BGR | GRAY)

    def _pil(self, pixels: np.ndarray, color: str):
        """CoreML image inputs take a PIL image: pixels rounded and clipped to 0..255 (batch 1)."""
        from PIL import Image

        x = np.clip(np.rint(pixels[0]), 0, 255).astype(np.uint8)
        if color == "GRAY":
            return Image.fromarray(x[0], mode="L")
        if color == "BGR":  # CoreML reorders the RGB image's channels into B, G, R planes itself
            x = x[::-1]
        return Image.fromarray(np.ascontiguousarray(x.transpose(1, 2, 0)), mode="RGB")

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = {k: (self._pil(v, self.images[k]) if k in self.images else v) for k, v in feeds.items()}
        try:
            return {k: (v if isinstance(v, (dict, str)) else np.asarray(v)) for k, v in self.model.predict(feeds).items()}
        except Exception as e:  # CoreML's runtime raises plain RuntimeError
            raise DeviceError(f"CoreML failed to run the model: {e}") from None


def _interpreter(path: Path):
    try:
        from edgec.runtimes.mil_interp import MilInterpreterRunner
    except ImportError as e:
        raise LoweringError(
            f"CoreML cannot run on this machine ({sys.platform}) and the MIL interpreter is not available ({e}); "
            f"build without validation or validate on a Mac."
        ) from None
    return MilInterpreterRunner(path)


def name_map_of(path: Path) -> NameMap:
    """The name map a build stored in the package's user-defined metadata (for artifacts built earlier)."""
    import json

    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.ParseFromString((Path(path) / "Data" / "com.apple.CoreML" / "model.mlmodel").read_bytes())
    raw = spec.description.metadata.userDefined.get("edgec.name_map")
    if raw is None:
        raise LoweringError(f"{path} was not built by edgec (no edgec.name_map metadata); cannot map ONNX names.")
    return NameMap.from_json(json.loads(raw))


class CoreMLRunner:
    """Translates ONNX names/dtypes to CoreML's (int64 -> int32) and back, around the real runner."""

    def __init__(self, path: Path, name_map: NameMap, compute_units: str = "all", inner=None):
        self.name_map = name_map
        self.images = {o: ImageSpec.from_json(d) for o, d in name_map.images.items()}
        if inner is None:
            colors = {name_map.inputs[o]: spec.color for o, spec in self.images.items()}
            inner = _MacPredict(path, compute_units, colors) if sys.platform == "darwin" else _interpreter(path)
        self.inner = inner
        self.name = inner.name
        # False for the MIL interpreter: callers must not report its wall time as CoreML latency
        self.latency_meaningful = getattr(inner, "latency_meaningful", True)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        nm = self.name_map
        mil_feeds = {}
        for onnx_name, value in feeds.items():
            value = np.asarray(value)
            if value.ndim == 0:  # scalar inputs are (1,) features (see build_program)
                value = value.reshape(1)
            if value.dtype.kind in "iu" and value.dtype != np.int32:
                value = value.astype(np.int32)
            if onnx_name in self.images:  # the app passes pixels; CoreML normalises them into this tensor
                value = self.images[onnx_name].to_pixels(value)
            mil_feeds[nm.inputs[onnx_name]] = value
        outs = self.inner.run(mil_feeds)
        result = {}
        for o, m in nm.outputs.items():
            value = outs[m]
            if nm.classifier and o == nm.classifier["output"]:  # {label: score} back to the score vector
                value = np.array([value[label] for label in nm.classifier["labels"]]).reshape(nm.classifier["shape"])
            result[o] = np.asarray(value).astype(nm.output_dtypes[o], copy=False)
        return result
