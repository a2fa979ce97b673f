"""Run a built .mlpackage with ONNX names: coremltools predict on macOS, the MIL interpreter elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgec.errors import DeviceError, LoweringError
from edgec.lower.coreml.build import NameMap

_COMPUTE_UNITS = {"all": "ALL", "cpu_only": "CPU_ONLY", "cpu_and_gpu": "CPU_AND_GPU", "cpu_and_ne": "CPU_AND_NE"}


class _MacPredict:
    name = "coreml (coremltools predict, macOS)"
    latency_meaningful = True  # the real CoreML runtime (on the Mac's own chip, not the target device's)

    def __init__(self, path: Path, compute_units: str):
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, _COMPUTE_UNITS[compute_units]))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return {k: np.asarray(v) for k, v in self.model.predict(feeds).items()}
        except Exception as e:  # CoreML's runtime raises plain RuntimeError
            raise DeviceError(f"CoreML failed to run the model: {e}") from None


def _interpreter(path: Path):
    try:
        from edgec.validate.runners.mil_interp import MilInterpreterRunner
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
        if inner is None:
            inner = _MacPredict(path, compute_units) if sys.platform == "darwin" else _interpreter(path)
        self.inner = inner
        self.name = inner.name
        # False for the MIL interpreter: callers must not report its wall time as CoreML latency
        self.latency_meaningful = getattr(inner, "latency_meaningful", True)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        nm = self.name_map
        mil_feeds = {}
        for onnx_name, value in feeds.items():
            value = np.asarray(value)
            if value.dtype.kind in "iu" and value.dtype != np.int32:
                value = value.astype(np.int32)
            mil_feeds[nm.inputs[onnx_name]] = value
        outs = self.inner.run(mil_feeds)
        return {o: np.asarray(outs[m]).astype(nm.output_dtypes[o], copy=False) for o, m in nm.outputs.items()}
