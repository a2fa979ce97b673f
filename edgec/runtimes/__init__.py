"""Where a model runs on this host: ONNX Runtime, LiteRT, the numpy MIL interpreter (and its ops), CoreML on macOS."""
