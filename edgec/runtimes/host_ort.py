"""ONNX Runtime on this machine: the reference for numerics, and the runtime of .ort artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from edgec.errors import LoweringError


def session_options(threads: int, level: str = "all") -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # warnings about unused initializers are noise for users
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    return so


class OrtRunner:
    def __init__(self, model: Path | bytes | onnx.ModelProto, threads: int = 1, level: str = "all", name: str = "onnxruntime"):
        self.name = name
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
        source = str(source) if isinstance(source, Path) else source
        try:
            self.session = ort.InferenceSession(source, session_options(threads, level), providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
            raise LoweringError(f"ONNX Runtime cannot load {'the model' if not isinstance(source, str) else source}: {e}") from None
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
