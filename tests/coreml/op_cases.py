"""Single-op ONNX models covering every lowered op and the attribute variants that change lowering."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, numpy_helper

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

# comparisons and logic (bool)
B = TensorProto.BOOL
CASES.update({
    "equal_bool": lambda: single_op("Equal", {"a": [2, 3], "b": [3]}, input_types={"a": B, "b": B}),
    "less_int": lambda: single_op("Less", {"a": [2, 3], "b": [2, 3]}, input_types={"a": TensorProto.INT64, "b": TensorProto.INT64}),
    "less_equal": lambda: single_op("LessOrEqual", {"a": [2, 3], "b": [1, 3]}),
    "greater": lambda: single_op("Greater", {"a": [2, 3]}, {}, {"c": w(3)}),
    "greater_equal": lambda: single_op("GreaterOrEqual", {"a": [2, 3], "b": [2, 3]}),
    "and": lambda: single_op("And", {"a": [2, 3], "b": [2, 3]}, input_types={"a": B, "b": B}),
    "or": lambda: single_op("Or", {"a": [2, 3], "b": [3]}, input_types={"a": B, "b": B}),
    "xor": lambda: single_op("Xor", {"a": [2, 3], "b": [2, 3]}, input_types={"a": B, "b": B}),
    "not": lambda: single_op("Not", {"a": [2, 3]}, input_types={"a": B}),
    "where": lambda: single_op("Where", {"c": [2, 3], "a": [2, 3], "b": [3]}, input_types={"c": B}),
    "where_cond_widest": lambda: single_op("Where", {"c": [2, 3], "a": [1], "b": [3]}, input_types={"c": B}),
    "isnan": lambda: single_op("IsNaN", {"a": [2, 3]}),
    "isinf_neg": lambda: single_op("IsInf", {"a": [2, 3]}, {"detect_positive": 0}),
    # unary math and formula activations
    **{op.lower(): (lambda op=op: single_op(op, {"x": [2, 3, 4]})) for op in (
        "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Atanh", "Asinh", "Acosh", "Sign", "Round",
        "Softplus", "Softsign")},
    "mish": lambda: single_op("Mish", {"x": [2, 3, 4]}, opset=18),
    "swish": lambda: single_op("Swish", {"x": [2, 3, 4]}, {"alpha": 0.7}, opset=24),
    "selu": lambda: single_op("Selu", {"x": [2, 3, 4]}, {"alpha": 1.5, "gamma": 2.0}),
    "celu": lambda: single_op("Celu", {"x": [2, 3, 4]}, {"alpha": 0.5}),
    "thresholded_relu": lambda: single_op("ThresholdedRelu", {"x": [2, 3, 4]}, {"alpha": 0.3}),
    "shrink": lambda: single_op("Shrink", {"x": [2, 3, 4]}, {"lambd": 0.4, "bias": 0.1}),
    "mean3": lambda: single_op("Mean", {"a": [2, 3], "b": [2, 3], "c": [3]}),
    "mod_int": lambda: single_op("Mod", {"a": [2, 3]}, {}, {"c": np.array([2, -3, 5], np.int32)}, input_types={"a": TensorProto.INT32}),
    "mod_fmod": lambda: single_op("Mod", {"a": [2, 3], "b": [2, 3]}, {"fmod": 1}),
    "castlike_double": lambda: single_op("CastLike", {"x": [2, 3]}, {}, {"t": np.zeros(1, np.float64)}),
    "cast_int8_wraps": lambda: single_op("Cast", {"x": [2, 3]}, {"to": TensorProto.INT8}, input_types={"x": TensorProto.INT32}),
})

# indexing, generated tensors, scans, sorting
I64 = TensorProto.INT64
CASES.update({
    "gather_elements_neg": lambda: single_op("GatherElements", {"x": [3, 4], "i": [3, 2]}, {"axis": 1}, input_types={"i": I64}),
    "gather_nd_batch": lambda: single_op("GatherND", {"x": [2, 3, 4]}, {"batch_dims": 1}, {"i": np.array([[[1, -1]], [[2, 0]]], np.int64)}),
    "scatter_nd_add": lambda: single_op("ScatterND", {"x": [4, 3], "u": [2, 3]}, {"reduction": "add"}, extra_inputs=["x", "i", "u"],
                                        inits={"i": np.array([[1], [-1]], np.int64)}, opset=18),
    "scatter_elements": lambda: single_op("ScatterElements", {"x": [3, 4], "u": [3, 1]}, {"axis": 1}, extra_inputs=["x", "i", "u"],
                                          inits={"i": np.array([[0], [-1], [2]], np.int64)}),
    "scatter_opset9": lambda: single_op("Scatter", {"x": [3, 4], "u": [1, 4]}, {"axis": 0}, extra_inputs=["x", "i", "u"],
                                        inits={"i": np.array([[2, 0, 1, 2]], np.int64)}, opset=9),
    "one_hot": lambda: single_op("OneHot", {"i": [2, 3]}, {"axis": 1}, {"d": np.array(4, np.int64), "v": np.array([0.5, 2], np.float32)},
                                 input_types={"i": I64}),
    "hardmax": lambda: single_op("Hardmax", {"x": [2, 3, 4]}, {"axis": 1}),
    "trilu_lower": lambda: single_op("Trilu", {"x": [2, 4, 5]}, {"upper": 0}, {"k": np.array(1, np.int64)}),
    "cumsum_reverse_exclusive": lambda: single_op("CumSum", {"x": [2, 5]}, {"reverse": 1, "exclusive": 1}, {"a": np.array(1, np.int64)}),
    "topk_smallest": lambda: single_op("TopK", {"x": [3, 6]}, {"largest": 0, "axis": 1}, {"k": np.array([2], np.int64)}, n_outputs=2),
    "shape_start_end": lambda: single_op("Shape", {"x": [2, 3, 4, 5]}, {"start": 1, "end": -1}, opset=15),
    "size": lambda: single_op("Size", {"x": [2, 3]}),
    "range_const": lambda: single_op("Range", {}, {}, {"a": np.array(1.0, np.float32), "b": np.array(4.0, np.float32), "c": np.array(0.5, np.float32)}),
    "constant_of_shape": lambda: single_op("ConstantOfShape", {}, {"value": numpy_helper.from_array(np.array([3], np.int64))}, {"s": np.array([2, 3], np.int64)}),
    "eye_like": lambda: single_op("EyeLike", {"x": [3, 4]}, {"k": 1}),
    "expand": lambda: single_op("Expand", {"x": [3, 1]}, {}, {"s": np.array([2, 1, 4], np.int64)}),
    "tile": lambda: single_op("Tile", {"x": [2, 3]}, {}, {"r": np.array([2, 1], np.int64)}),
    "reduce_log_sum_exp": lambda: single_op("ReduceLogSumExp", {"x": [2, 3, 4]}, {"keepdims": 0}, {"a": np.array([1], np.int64)}, opset=18),
    "reduce_prod": lambda: single_op("ReduceProd", {"x": [2, 3, 4]}, {"axes": [2]}),
    "reduce_l1": lambda: single_op("ReduceL1", {"x": [2, 3, 4]}),
    "reduce_l2": lambda: single_op("ReduceL2", {"x": [2, 3, 4]}, {"axes": [0, 2]}),
    "reduce_sum_square": lambda: single_op("ReduceSumSquare", {"x": [2, 3, 4]}, {"axes": [1]}),
    "reduce_log_sum": lambda: single_op("ReduceLogSum", {"x": [2, 3, 4]}, {"axes": [1]}),
    "argmax_last_index": lambda: single_op("ArgMax", {"x": [3, 4]}, {"axis": 1, "select_last_index": 1}, input_types={"x": TensorProto.INT32}),
    "div_int_trunc": lambda: single_op("Div", {"a": [2, 3]}, {}, {"c": np.array([2, -3, 4], np.int32)}, input_types={"a": TensorProto.INT32}),
})


def _typed_output(model, shape, elem=TensorProto.FLOAT):
    """ONNX shape inference leaves some function ops' outputs untyped: declare it."""
    from onnx import helper

    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info("y0", elem, shape))
    return model


def _mvn():
    """MeanVarianceNormalization (strict shape inference trips over its function body's Constant)."""
    from onnx import helper

    node = helper.make_node("MeanVarianceNormalization", ["x"], ["y0"], name="the_mvn")
    graph = helper.make_graph([node], "mvn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 5])],
                              [helper.make_tensor_value_info("y0", TensorProto.FLOAT, [2, 3, 4, 5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


# normalisation (composed) and run-time bounds
CASES.update({
    "layernorm_all_outputs": lambda: single_op("LayerNormalization", {"x": [2, 5, 8]}, {"axis": 1}, {"s": w(5, 8) + 1, "b": w(5, 8)}, n_outputs=3),
    "rms_norm": lambda: single_op("RMSNormalization", {"x": [2, 5, 8]}, {"axis": -1, "epsilon": 1e-3}, {"s": w(8) + 1}, opset=23),
    "instance_norm": lambda: single_op("InstanceNormalization", {"x": [2, 3, 4, 5]}, {}, {"s": w(3) + 1, "b": w(3)}),
    "group_norm": lambda: _typed_output(single_op("GroupNormalization", {"x": [2, 6, 4, 5]}, {"num_groups": 3},
                                                  {"s": w(6) + 1, "b": w(6)}, opset=21), [2, 6, 4, 5]),
    "lp_norm_l1": lambda: single_op("LpNormalization", {"x": [2, 3, 4]}, {"axis": 1, "p": 1}),
    "mean_variance_norm": lambda: _mvn(),
    "clip_runtime_bounds": lambda: single_op("Clip", {"x": [2, 3, 4], "lo": [], "hi": []}),
})

# attention (opset 23): composed, every mask kind
def _attention(inputs: dict, attrs: dict, n_outputs: int = 1, types: dict | None = None, extra=None):
    return single_op("Attention", inputs, attrs, n_outputs=n_outputs, opset=23, input_types=types, extra_inputs=extra)


CASES.update({
    "attention_4d_gqa_causal": lambda: _attention({"q": [2, 4, 3, 8], "k": [2, 2, 5, 8], "v": [2, 2, 5, 6]}, {"is_causal": 1}),
    "attention_3d_bool_mask_scaled": lambda: _attention({"q": [2, 3, 16], "k": [2, 5, 16], "v": [2, 5, 8], "m": [3, 5]},
                                                        {"q_num_heads": 2, "kv_num_heads": 2, "scale": 0.3}, types={"m": B}),
    "attention_past_present_qk": lambda: _attention(
        {"q": [1, 2, 2, 4], "k": [1, 2, 2, 4], "v": [1, 2, 2, 4], "m": [2, 5], "pk": [1, 2, 3, 4], "pv": [1, 2, 3, 4]},
        {"softcap": 2.0, "qk_matmul_output_mode": 2}, n_outputs=4),  # ORT writes a masked score as -3.4e38, ONNX -inf
})

# losses and einsum
CASES.update({
    "nll_loss_weight_ignore": lambda: single_op("NegativeLogLikelihoodLoss", {"x": [3, 4, 2]}, {"ignore_index": 1},
                                                {"t": np.array([[0, 1], [2, 3], [1, 1]], np.int64), "w": np.abs(w(4)) + 0.1}, opset=13),
    "sce_log_prob": lambda: single_op("SoftmaxCrossEntropyLoss", {"x": [3, 5]}, {"reduction": "sum"},
                                      {"t": np.array([4, 0, 2], np.int64)}, n_outputs=2, opset=13),
    "einsum_batch_matmul": lambda: single_op("Einsum", {"a": [2, 3, 4], "b": [2, 4, 5]}, {"equation": "bij,bjk->bki"}, opset=12),
    "einsum_sum_implicit": lambda: single_op("Einsum", {"a": [3, 4]}, {"equation": "ij"}, opset=12),
})

# windows, scans, pooling, cropping, shifts, dropout masks
CASES.update({
    "hann_window": lambda: single_op("HannWindow", {}, {}, {"n": np.array(10, np.int64)}),
    "hamming_window_symmetric": lambda: single_op("HammingWindow", {}, {"periodic": 0}, {"n": np.array(7, np.int64)}),
    "blackman_window": lambda: single_op("BlackmanWindow", {}, {}, {"n": np.array(9, np.int64)}),
    "lp_pool": lambda: single_op("LpPool", {"x": [1, 2, 7, 7]}, {"kernel_shape": [3, 3], "p": 3, "pads": [1, 1, 1, 1], "strides": [2, 2]}, opset=18),
    "compress": lambda: single_op("Compress", {"x": [3, 4]}, {"axis": 1}, {"c": np.array([True, False, True], bool)}),
    "center_crop_pad": lambda: single_op("CenterCropPad", {"x": [5, 8, 3]}, {}, {"s": np.array([7, 5, 3], np.int64)}, opset=18),
    "bitshift_left_uint8": lambda: single_op("BitShift", {"x": [2, 3]}, {"direction": "LEFT"}, {"s": np.array([1, 7, 3], np.uint8)},
                                             input_types={"x": TensorProto.UINT8}),
    "dropout_mask": lambda: single_op("Dropout", {"x": [2, 3]}, {}, n_outputs=2, opset=13),
})

# Resize beyond CoreML's native resize: one interpolation matrix per axis
CASES.update({
    "resize_cubic_fractional": lambda: single_op("Resize", X4, {"mode": "cubic"}, {"r": np.zeros(0, np.float32), "s": np.array([1, 1, 0.8, 1.5], np.float32)}, opset=13),
    "resize_nearest_sizes_ceil": lambda: single_op("Resize", X4, {"mode": "nearest", "nearest_mode": "ceil"}, extra_inputs=["x", "", "", "sz"], inits={"sz": i64(1, 4, 5, 13)}, opset=13),
    "resize_linear_antialias_down": lambda: single_op("Resize", X4, {"mode": "linear", "antialias": 1}, extra_inputs=["x", "", "", "sz"], inits={"sz": i64(1, 4, 4, 6)}, opset=18),
    "upsample_nearest": lambda: single_op("Upsample", {"x": [1, 2, 3, 3]}, {"mode": "nearest"}, {"s": np.array([1, 1, 2, 3], np.float32)}, opset=9),
})

# 16-bit, blocked and read-only-type quantization
CASES.update({
    "quantize_int16": lambda: single_op("QuantizeLinear", {"x": [2, 3]}, {}, {"s": np.array(0.001, np.float32), "z": np.array(-100, np.int16)}, opset=21),
    "dequantize_blocked": lambda: single_op("DequantizeLinear", {"x": [3, 4]}, {"axis": 1, "block_size": 2},
                                            {"s": np.abs(w(3, 2)) + 0.1, "z": np.array([[1, 2], [0, 3], [2, 2]], np.uint8)},
                                            input_types={"x": TensorProto.UINT8}, opset=21),
})

# DFT as a matmul with the reference transform's matrix
CASES.update({
    "dft_rfft": lambda: single_op("DFT", {"x": [2, 8, 3, 1]}, {"onesided": 1}, extra_inputs=["x", "", "a"], inits={"a": np.array(1, np.int64)}, opset=20),
    "dft_inverse_axis2": lambda: single_op("DFT", {"x": [2, 3, 6, 2]}, {"inverse": 1, "axis": 2}, opset=19),
})

CASES.update({
    "rotary_interleaved_partial": lambda: single_op("RotaryEmbedding", {"x": [2, 2, 3, 8], "c": [6, 2], "s": [6, 2]},
                                                    {"interleaved": 1, "rotary_embedding_dim": 4},
                                                    {"p": np.array([[0, 1, 2], [3, 4, 5]], np.int64)}, opset=23),
})

CASES.update({
    "maxpool_dilated_ceil": lambda: single_op("MaxPool", {"x": [1, 2, 9, 9]}, {"kernel_shape": [3, 3], "dilations": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    "avgpool_dilated_include_pad": lambda: single_op("AveragePool", {"x": [1, 2, 9, 9]}, {"kernel_shape": [3, 3], "dilations": [2, 3], "pads": [1, 2, 1, 2], "count_include_pad": 1}, opset=19),
    "avgpool_dilated_exclude_pad_ceil": lambda: single_op("AveragePool", {"x": [1, 2, 9, 9]}, {"kernel_shape": [3, 3], "dilations": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}, opset=19),
})

CASES.update({
    "reverse_sequence": lambda: single_op("ReverseSequence", {"x": [4, 3, 2]}, {"time_axis": 0, "batch_axis": 1},
                                          {"l": np.array([4, 1, 3], np.int64)}),
    "affine_grid_2d": lambda: single_op("AffineGrid", {"t": [2, 2, 3]}, {"align_corners": 0}, {"s": np.array([2, 3, 4, 5], np.int64)}, opset=20),
})

CASES.update({
    "bitwise_and_int16": lambda: single_op("BitwiseAnd", {"a": [2, 3], "b": [3]}, input_types={"a": TensorProto.INT16, "b": TensorProto.INT16}, opset=18),
    "bitwise_or_uint8": lambda: single_op("BitwiseOr", {"a": [2, 3], "b": [2, 3]}, input_types={"a": TensorProto.UINT8, "b": TensorProto.UINT8}, opset=18),
    "bitwise_xor_int8": lambda: single_op("BitwiseXor", {"a": [2, 3], "b": [2, 3]}, input_types={"a": TensorProto.INT8, "b": TensorProto.INT8}, opset=18),
    "bitwise_not_int32": lambda: single_op("BitwiseNot", {"a": [2, 3]}, input_types={"a": TensorProto.INT32}, opset=18),
})

CASES.update({
    "global_lp_pool": lambda: single_op("GlobalLpPool", {"x": [1, 3, 4, 5]}, {"p": 3}),
    "dynamic_quantize_linear": lambda: single_op("DynamicQuantizeLinear", {"x": [3, 4]}, n_outputs=3),
})
