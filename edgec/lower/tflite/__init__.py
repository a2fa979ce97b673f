"""ONNX -> TFLite flatbuffer lowering: graph IR, NHWC layout pass, op registry, builder, writer."""
