"""ONNX -> CoreML ML Program, lowered by hand through coremltools' MIL Builder."""

from edgec.runtimes.ct_quiet import quiet_native_proxy_warnings

# every module below this package imports coremltools; silence its native-library noise first
quiet_native_proxy_warnings()
