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
    # exact int32 accumulation for int8 on every x86 CPU (an ARM device's arithmetic): without it, CPUs with AVX2
    # but no VNNI saturate U8S8 products in int16 (edgec.validate.runners.ort_exact)
    so.add_session_config_entry("session.x64quantprecision", "1")
    return so


class OrtRunner:
    def __init__(self, model: Path | bytes | onnx.ModelProto, threads: int = 1, level: str = "all", name: str = "onnxruntime"):
        self.name = name
        source = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
        source = str(source) if isinstance(source, Path) else source
        self.kernels = "onnxruntime CPU"  # which arithmetic produced the outputs (for reports)
        source, level = self._exact_int8(source, level)
        try:
            self.session = ort.InferenceSession(source, session_options(threads, level), providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
            raise LoweringError(f"ONNX Runtime cannot load {'the model' if not isinstance(source, str) else source}: {e}") from None
        self.output_names = [o.name for o in self.session.get_outputs()]

    def _exact_int8(self, source, level: str):
        """An ORT-format file with int8 kernels, on a CPU whose U8S8 kernels saturate: its own graph with the
        weights widened to uint8 (ort_exact), since a saved .ort is not transformed again at load."""
        from edgec.validate.runners import ort_exact

        data = Path(source).read_bytes() if isinstance(source, str) else source
        if len(data) < 8 or data[4:8] != b"ORTM":
            if ort_exact.u8s8_saturates():
                self.kernels += " (int8 GEMMs as exact U8U8: session.x64quantprecision)"
            return source, level
        if not ort_exact.u8s8_saturates():
            return source, level
        twin, changed = ort_exact.exact_twin(ort_exact.ort_to_onnx(data))
        if not changed:
            return source, level
        self.kernels += (f" on the .ort's own graph with {changed} int8 kernel(s)' weights widened to uint8 "
                         "(this CPU's U8S8 kernels saturate; an ARM device's do not)")
        self.name += " [exact int8]"
        return twin.SerializeToString(), "disable"

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
