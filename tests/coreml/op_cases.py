"""Single-op ONNX models covering every lowered op and the attribute variants that change lowering."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from tests.coreml.helpers import single_op

R = np.random.default_rng(1)


def w(*shape, scale=0.3):
    return R.normal(0, scale, shape).astype(np.float32)


def i64(*v):
    return np.array(v, dtype=np.int64)


X4 = {"x": [1, 4, 9, 9]}

CASES = {
    # conv family
    "conv_basic": lambda: single_op("Conv", X4, {"pads": [1, 1, 1, 1]}, {"w": w(6, 4, 3, 3), "b": w(6)}),
    "conv_asym_pads_stride": lambda: single_op("Conv", X4, {"pads": [0, 1, 2, 1], "strides": [2, 1]}, {"w": w(5, 4, 3, 2)}),
    "conv_grouped": lambda: single_op("Conv", X4, {"group": 2, "pads": [1, 1, 1, 1]}, {"w": w(6, 2, 3, 3), "b": w(6)}),
    "conv_depthwise_dilated": lambda: single_op("Conv", X4, {"group": 4, "dilations": [2, 2], "pads": [2, 2, 2, 2]}, {"w": w(4, 1, 3, 3)}),
    "conv_same_upper": lambda: single_op("Conv", X4, {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, {"w": w(3, 4, 4, 4)}),
    "conv_same_lower": lambda: single_op("Conv", X4, {"auto_pad": "SAME_LOWER", "strides": [2, 2]}, {"w": w(3, 4, 4, 4)}),
    "conv_1d": lambda: single_op("Conv", {"x": [1, 3, 10]}, {"pads": [1, 2]}, {"w": w(4, 3, 3)}),
    "conv_dynamic_weight": lambda: single_op("Conv", {"x": [1, 2, 6, 6], "w": [3, 2, 3, 3]}, {}),
    "conv_transpose": lambda: single_op("ConvTranspose", X4, {"strides": [2, 2], "pads": [1, 1, 1, 1]}, {"w": w(4, 3, 3, 3), "b": w(3)}),
    "conv_transpose_output_padding": lambda: single_op("ConvTranspose", X4, {"strides": [2, 2], "output_padding": [1, 1]}, {"w": w(4, 2, 3, 3), "b": w(2)}),
    "conv_transpose_group": lambda: single_op("ConvTranspose", X4, {"strides": [2, 2], "group": 2, "pads": [0, 1, 1, 0]}, {"w": w(4, 3, 2, 2)}),
    # pooling
    "maxpool": lambda: single_op("MaxPool", X4, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    "maxpool_uint8": lambda: single_op("MaxPool", {"x": [1, 2, 6, 6]}, {"kernel_shape": [2, 2], "strides": [2, 2]},
                                       input_types={"x": TensorProto.UINT8}),
    "maxpool_ceil": lambda: single_op("MaxPool", {"x": [1, 2, 8, 8]}, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),
    "avgpool_exclude_pad": lambda: single_op("AveragePool", X4, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    "avgpool_include_pad": lambda: single_op("AveragePool", X4, {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    "avgpool_ceil_include_pad": lambda: single_op("AveragePool", {"x": [1, 2, 8, 8]}, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1, "count_include_pad": 1}),
    "avgpool_ceil": lambda: single_op("AveragePool", {"x": [1, 2, 8, 8]}, {"kernel_shape": [2, 2], "strides": [3, 3], "ceil_mode": 1}),
    "global_avg": lambda: single_op("GlobalAveragePool", X4),
    "global_max": lambda: single_op("GlobalMaxPool", X4),
    # normalisation
    "batchnorm": lambda: single_op("BatchNormalization", X4, {"epsilon": 1e-3}, {"s": w(4) + 1, "b": w(4), "m": w(4), "v": np.abs(w(4)) + 0.5}),
    "batchnorm_2d": lambda: single_op("BatchNormalization", {"x": [3, 4]}, {}, {"s": w(4) + 1, "b": w(4), "m": w(4), "v": np.abs(w(4)) + 0.5}),
    "layernorm": lambda: single_op("LayerNormalization", {"x": [2, 5, 8]}, {"axis": -1}, {"s": w(8) + 1, "b": w(8)}),
    "layernorm_two_axes": lambda: single_op("LayerNormalization", {"x": [2, 5, 8]}, {"axis": 1, "epsilon": 1e-3}, {"s": w(5, 8) + 1}),
    "lrn": lambda: single_op("LRN", {"x": [1, 7, 5, 5]}, {"size": 5, "alpha": 1e-3, "beta": 0.75, "bias": 2.0}),
    # activations
    "relu": lambda: single_op("Relu", X4),
    "clip": lambda: single_op("Clip", X4, {}, {"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32)}),
    "clip_min_only": lambda: single_op("Clip", X4, {}, {"lo": np.array(-0.5, np.float32)}),
    "leaky_relu": lambda: single_op("LeakyRelu", X4, {"alpha": 0.2}),
    "prelu_channel": lambda: single_op("PRelu", X4, {}, {"slope": w(4, 1, 1)}),
    "prelu_full": lambda: single_op("PRelu", X4, {}, {"slope": w(9)}),
    "sigmoid": lambda: single_op("Sigmoid", X4),
    "hard_sigmoid": lambda: single_op("HardSigmoid", X4, {"alpha": 0.3, "beta": 0.4}),
    "hard_swish": lambda: single_op("HardSwish", X4),
    "tanh": lambda: single_op("Tanh", X4),
    "elu": lambda: single_op("Elu", X4, {"alpha": 0.7}),
    "gelu": lambda: single_op("Gelu", X4, opset=20),
    "gelu_tanh": lambda: single_op("Gelu", X4, {"approximate": "tanh"}, opset=20),
    "erf": lambda: single_op("Erf", X4),
    "softmax": lambda: single_op("Softmax", {"x": [2, 3, 5]}, {"axis": 1}),
    "softmax_opset11": lambda: single_op("Softmax", {"x": [2, 3, 5]}, {"axis": 1}, opset=11),
    "log_softmax": lambda: single_op("LogSoftmax", {"x": [2, 3, 5]}),
    # elementwise
    "add_broadcast": lambda: single_op("Add", {"x": [2, 3, 4], "z": [3, 1]}),
    "sub": lambda: single_op("Sub", {"x": [2, 3, 4]}, {}, {"c": w(4)}),
    "mul": lambda: single_op("Mul", {"x": [2, 3, 4], "z": [2, 3, 4]}),
    "div": lambda: single_op("Div", {"x": [2, 3, 4]}, {}, {"c": np.abs(w(3, 1)) + 0.5}),
    "pow": lambda: single_op("Pow", {"x": [2, 3, 4]}, {}, {"e": np.array(2.0, np.float32)}),
    "sqrt": lambda: single_op("Sqrt", {"x": [2, 3]}, extra_inputs=["x"]),
    "exp": lambda: single_op("Exp", {"x": [2, 3, 4]}),
    "log": lambda: single_op("Log", {"x": [2, 3, 4]}),
    "max3": lambda: single_op("Max", {"a": [2, 3], "b": [2, 3], "c": [3]}),
    "min": lambda: single_op("Min", {"a": [2, 3], "b": [2, 3]}),
    "sum3": lambda: single_op("Sum", {"a": [2, 3], "b": [2, 3], "c": [2, 3]}),
    "abs": lambda: single_op("Abs", {"x": [2, 3]}),
    "neg": lambda: single_op("Neg", {"x": [2, 3]}),
    "floor": lambda: single_op("Floor", {"x": [2, 3]}),
    "ceil": lambda: single_op("Ceil", {"x": [2, 3]}),
    "reciprocal": lambda: single_op("Reciprocal", {"x": [2, 3]}, {}, extra_inputs=["x"]),
    # matmul
    "matmul": lambda: single_op("MatMul", {"x": [2, 3, 4], "z": [2, 4, 5]}),
    "matmul_1d_3d": lambda: single_op("MatMul", {"x": [4], "z": [2, 4, 3]}),
    "matmul_4d_1d": lambda: single_op("MatMul", {"x": [2, 1, 3, 4], "z": [4]}),
    "matmul_1d_1d": lambda: single_op("MatMul", {"x": [4], "z": [4]}),
    "matmul_const": lambda: single_op("MatMul", {"x": [3, 4]}, {}, {"m": w(4, 6)}),
    "gemm_transb": lambda: single_op("Gemm", {"x": [3, 4]}, {"transB": 1, "alpha": 0.5, "beta": 2.0}, {"b": w(6, 4), "c": w(6)}),
    "gemm_transa_dynamic": lambda: single_op("Gemm", {"x": [4, 3], "b": [4, 5], "c": [3, 5]}, {"transA": 1, "alpha": 1.5}),
    "gemm_row_bias": lambda: single_op("Gemm", {"x": [3, 4]}, {}, {"b": w(4, 5), "c": w(3, 1)}),
    # shape / data movement
    "reshape": lambda: single_op("Reshape", X4, {}, {"s": i64(0, -1, 9)}),
    "flatten": lambda: single_op("Flatten", X4, {"axis": 2}),
    "squeeze": lambda: single_op("Squeeze", {"x": [1, 3, 1, 4]}, {}, {"a": i64(2)}),
    "squeeze_all": lambda: single_op("Squeeze", {"x": [1, 3, 1, 4]}),
    "unsqueeze": lambda: single_op("Unsqueeze", {"x": [3, 4]}, {}, {"a": i64(0, -1)}),
    "transpose": lambda: single_op("Transpose", {"x": [2, 3, 4]}, {"perm": [2, 0, 1]}),
    "transpose_default": lambda: single_op("Transpose", {"x": [2, 3, 4]}),
    "concat": lambda: single_op("Concat", {"a": [2, 3], "b": [2, 5]}, {"axis": -1}, {"c": w(2, 1)}),
    "split": lambda: single_op("Split", {"x": [2, 7]}, {"axis": 1}, {"s": i64(2, 5)}, n_outputs=2),
    "split_even_opset18": lambda: single_op("Split", {"x": [2, 7]}, {"axis": 1, "num_outputs": 3}, n_outputs=3, opset=18),
    "slice": lambda: single_op("Slice", {"x": [4, 10]}, {}, {"st": i64(1, -8), "en": i64(100, -1), "ax": i64(0, 1), "sp": i64(1, 2)}),
    "slice_reverse": lambda: single_op("Slice", {"x": [4, 10]}, {}, {"st": i64(-1), "en": i64(-1000), "ax": i64(1), "sp": i64(-1)}),
    "gather_const_neg": lambda: single_op("Gather", {"x": [5, 3]}, {"axis": 0}, {"i": i64(0, -1, 2)}),
    "gather_dynamic": lambda: single_op("Gather", {"x": [3, 6], "i": [2, 2]}, {"axis": 1}, input_types={"i": TensorProto.INT64}),
    "add_scalar_input": lambda: single_op("Add", {"x": [3, 4], "s": []}),  # rank-0 graph input: fed as (1,)
    "pow_int_exponent": lambda: single_op("Pow", {"x": [3, 4], "e": [3, 4]}, input_types={"e": TensorProto.INT64}),
    "reduce_max_bool": lambda: single_op("ReduceMax", {"x": [3, 4]}, {"keepdims": 0}, {"a": i64(1)}, opset=20,
                                         input_types={"x": TensorProto.BOOL}),
    "quantize_linear": lambda: single_op("QuantizeLinear", {"x": [2, 3, 4]}, {"axis": 1},
                                         {"s": np.array([0.01, 0.02, 0.05], np.float32), "z": np.array([128, 100, 0], np.uint8)}),
    "dequantize_linear": lambda: single_op("DequantizeLinear", {"x": [2, 3]}, {},
                                           {"s": np.array(0.1, np.float32), "z": np.array(1, np.uint8)},
                                           input_types={"x": TensorProto.UINT8}),
    "gather_scalar": lambda: single_op("Gather", {"x": [3, 6]}, {"axis": 1}, {"i": np.array(4, np.int64)}),
    "pad_constant": lambda: single_op("Pad", X4, {"mode": "constant"}, {"p": i64(0, 0, 1, 2, 0, 0, 3, 0), "v": np.array(1.5, np.float32)}),
    "pad_reflect": lambda: single_op("Pad", X4, {"mode": "reflect"}, {"p": i64(0, 0, 2, 1, 0, 0, 1, 2)}),
    "pad_edge": lambda: single_op("Pad", X4, {"mode": "edge"}, {"p": i64(0, 0, 0, 2, 0, 0, 3, 0)}),
    "depth_to_space_dcr": lambda: single_op("DepthToSpace", {"x": [1, 8, 3, 3]}, {"blocksize": 2}),
    "depth_to_space_crd": lambda: single_op("DepthToSpace", {"x": [1, 8, 3, 3]}, {"blocksize": 2, "mode": "CRD"}),
    "space_to_depth": lambda: single_op("SpaceToDepth", {"x": [1, 2, 6, 4]}, {"blocksize": 2}),
    "cast_to_int": lambda: single_op("Cast", {"x": [2, 5]}, {"to": TensorProto.INT64}),
    "identity": lambda: single_op("Identity", X4),
    "dropout": lambda: single_op("Dropout", X4),
    # resize
    "resize_nearest_x2": lambda: single_op("Resize", X4, {"mode": "nearest"}, {"r": np.zeros(0, np.float32), "s": np.array([1, 1, 2, 3], np.float32)}),
    "resize_nearest_asym_floor": lambda: single_op("Resize", X4, {"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, {"r": np.zeros(0, np.float32), "s": np.array([1, 1, 2, 2], np.float32)}),
    "resize_linear_half_pixel": lambda: single_op("Resize", X4, {"mode": "linear"}, {"r": np.zeros(0, np.float32), "s": np.array([1, 1, 2, 2], np.float32)}),
    "resize_linear_align_corners_sizes": lambda: single_op("Resize", X4, {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, extra_inputs=["x", "", "", "sz"], inits={"sz": i64(1, 4, 13, 5)}),
    "resize_linear_asymmetric": lambda: single_op("Resize", X4, {"mode": "linear", "coordinate_transformation_mode": "asymmetric"}, {"r": np.zeros(0, np.float32), "s": np.array([1, 1, 2, 2], np.float32)}),
    "resize_linear_pytorch_half_pixel_down": lambda: single_op("Resize", X4, {"mode": "linear", "coordinate_transformation_mode": "pytorch_half_pixel"}, extra_inputs=["x", "", "", "sz"], inits={"sz": i64(1, 4, 4, 6)}),
    # reductions
    "reduce_mean": lambda: single_op("ReduceMean", {"x": [2, 3, 4]}, {"axes": [1], "keepdims": 0}),
    "reduce_sum": lambda: single_op("ReduceSum", {"x": [2, 3, 4]}, {}, {"a": i64(0, 2)}),
    "reduce_max_all": lambda: single_op("ReduceMax", {"x": [2, 3, 4]}, {"keepdims": 1}),
    "reduce_min_opset18": lambda: single_op("ReduceMin", {"x": [2, 3, 4]}, {"keepdims": 0}, {"a": i64(-1)}, opset=18),
    "argmin": lambda: single_op("ArgMin", {"x": [2, 3, 4]}, {"axis": -1}),
    "argmax": lambda: single_op("ArgMax", {"x": [2, 3, 4]}, {"axis": 1, "keepdims": 0}),
    # recurrent (every variant: tests/seq/test_recurrent.py)
    "lstm_fused_y_h_c": lambda: single_op("LSTM", {"x": [5, 2, 3]}, {"hidden_size": 4},
                                          {"w": w(1, 16, 3), "r": w(1, 16, 4), "b": w(1, 32)}, n_outputs=3),
    "gru_unrolled": lambda: single_op("GRU", {"x": [5, 2, 3]}, {"hidden_size": 4, "linear_before_reset": 1},
                                      {"w": w(1, 12, 3), "r": w(1, 12, 4), "b": w(1, 24)}, n_outputs=2),
    "rnn_reverse": lambda: single_op("RNN", {"x": [5, 2, 3]}, {"hidden_size": 4, "direction": "reverse"},
                                     {"w": w(1, 4, 3), "r": w(1, 4, 4)}, n_outputs=2),
}
