"""What a lowering records in an artifact for the runners to read back (TFLite metadata, CoreML name maps).

Writers (edgec.lower) and runners (edgec.runtimes) both import this module, so the runtime layer never
imports a backend.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

# TFLite Model.metadata entries
IO_LAYOUT_KEY = "edgec_io_layout"  # Model.metadata: JSON {ONNX name: "NHWC"} for channels-last inputs/outputs
IO_QUANT_KEY = "edgec_io_quantized"  # Model.metadata: JSON [ONNX names] of float I/O made int8 (tflite.io_dtype)


def read_metadata(path, name: str) -> bytes | None:
    """One Model.metadata entry of a .tflite file (None when absent); maps the file instead of reading it."""
    import mmap

    from ai_edge_litert import schema_py_generated as S

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        model = S.Model.GetRootAs(mm, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if entry.Name().decode() == name:
                buf = model.Buffers(entry.Buffer())
                if buf.DataLength():
                    return bytes(buf.DataAsNumpy())
                return bytes(mm[buf.Offset():buf.Offset() + buf.Size()]) if buf.Size() else b""
    return None


@dataclass
class NameMap:
    """ONNX <-> CoreML names and the ONNX dtypes callers expect back (CoreML has no int64)."""

    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    input_dtypes: dict[str, str] = field(default_factory=dict)
    output_dtypes: dict[str, str] = field(default_factory=dict)
    tensors: dict[str, str] = field(default_factory=dict)  # every ONNX tensor that got a MIL name
    images: dict[str, dict] = field(default_factory=dict)  # ONNX input -> features.ImageSpec json (image inputs)
    classifier: dict | None = None  # features.ClassifierSpec json + "label_output" (the predicted-label feature)

    def to_json(self) -> dict:
        d = {"inputs": self.inputs, "outputs": self.outputs, "input_dtypes": self.input_dtypes,
             "output_dtypes": self.output_dtypes}
        if self.images:
            d["images"] = self.images
        if self.classifier:
            d["classifier"] = self.classifier
        return d

    @classmethod
    def from_json(cls, d: dict) -> "NameMap":
        return cls(d["inputs"], d["outputs"], d["input_dtypes"], d["output_dtypes"],
                   images=d.get("images", {}), classifier=d.get("classifier"))


@dataclass
class ImageSpec:
    color: str  # RGB | BGR | GRAY
    scale: float
    bias: list[float]
    post_scale: list[float] | None  # per-channel multiply inside the program, or None

    def to_pixels(self, y: np.ndarray) -> np.ndarray:
        """The pixel tensor (float, NCHW) CoreML turns into this ONNX-domain tensor y."""
        y = np.asarray(y, np.float64)
        if self.post_scale is not None:
            y = y / np.asarray(self.post_scale).reshape(1, -1, 1, 1)
        return ((y - np.asarray(self.bias).reshape(1, -1, 1, 1)) / self.scale).astype(np.float32)

    @classmethod
    def from_json(cls, d: dict) -> "ImageSpec":
        return cls(**d)

    def to_json(self) -> dict:
        return asdict(self)
