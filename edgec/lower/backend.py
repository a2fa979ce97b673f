"""The interface every target backend implements, and the lazy registry of backends by format.

Backends are imported lazily so an ORT build never pays for importing coremltools.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np
import onnx

from edgec.artifact import Artifact, LowerContext


class Runner(Protocol):
    """Runs one artifact on some runtime. `name` says which runtime ran (it goes into the report)."""

    name: str

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class Backend(Protocol):
    format: str

    def unsupported(self, model: onnx.ModelProto) -> list[tuple[str, str, str]]:
        """(op_type, node_name, why) for every node this backend cannot lower. Empty = all supported."""

    def lower(self, model: onnx.ModelProto, ctx: LowerContext) -> Artifact:
        """Write the artifact into ctx.staging_dir and describe it. Raises UnsupportedOp / LoweringError."""

    def runner(self, artifact: Artifact, threads: int) -> Runner:
        """A runner for numerics/latency on this machine (the real runtime where one exists)."""

    def supported_ops(self) -> dict[str, str]:
        """ONNX op type -> short note; the op-support table `edgec targets --ops` prints."""

    # optional hooks (the estimator reads backends through these, never their internals):
    # int8_ops() -> frozenset[str]: ONNX ops the format runs as int8 kernels between Q/DQ
    # as_built(model, artifact) -> (graph, program precision): the graph the artifact actually runs


_BACKENDS = {
    "ort": "edgec.lower.ort.backend:OrtBackend",
    "tflite": "edgec.lower.tflite.backend:TFLiteBackend",
    "coreml": "edgec.lower.coreml.backend:CoreMLBackend",
}


def get_backend(fmt: str) -> Backend:
    from edgec.errors import LoweringError

    spec = _BACKENDS.get(fmt)
    if spec is None:
        raise LoweringError(f"No backend for artifact format '{fmt}'. Known formats: {', '.join(_BACKENDS)}.")
    module, cls = spec.split(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise LoweringError(
            f"The '{fmt}' backend is not available in this installation ({e}). "
            f"Reinstall edgec with its dependencies (`pip install -e .`)."
        ) from e
    return getattr(mod, cls)()


def int8_kernel_ops(fmt: str | None = None) -> frozenset[str]:
    """ONNX ops that run as int8 kernels when every activation input is dequantized and only a Q reads them.
    Formats without an `int8_ops` hook (ORT's QLinear* fusions, CoreML's iOS17 ops) cover about the same ops
    as the TFLite int8 lowering, whose set stands for them."""
    hook = getattr(get_backend(fmt), "int8_ops", None) if fmt else None
    return hook() if hook is not None else get_backend("tflite").int8_ops()


def as_built(model: onnx.ModelProto, artifact) -> tuple[onnx.ModelProto, str | None]:
    """(graph, program precision) an artifact actually runs; the model itself where the backend has no hook."""
    hook = getattr(get_backend(artifact.format), "as_built", None) if artifact is not None else None
    return hook(model, artifact) if hook is not None else (model, None)
