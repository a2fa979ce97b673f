"""edgec: one compiler from ONNX to CoreML, TFLite/LiteRT and ONNX Runtime Mobile."""

__version__ = "0.1.0"
