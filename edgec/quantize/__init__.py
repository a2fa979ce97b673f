"""Quantization, decided once in the ONNX domain so every target gets the same scales and zero points."""
