"""ONNX -> CoreML ML Program, lowered by hand through coremltools' MIL Builder."""
