"""Where a node test's expected values cannot be used as they are, what the conformance run checks instead.

Three kinds, each found by the node and its inputs (never by case name), each stated in the docs:
- random outputs: Dropout in training mode draws its mask from numpy's RNG; no runtime reproduces those draws,
  so the defining property is checked (y = mask * x / (1 - ratio), a mask that is neither all kept nor all
  dropped);
- disputed reference values: the operator text reads two ways, the reference picks one, and ONNX Runtime,
  PyTorch and TFLite the other. An output matching either passes (the listed values first; the other reading
  is recomputed with onnx's own ReferenceEvaluator or numpy, and the case says so):
  * Resize, coordinate_transformation_mode align_corners, given `scales`: length_resized is "the length of
    the resized tensor" (an integer, floor(length * scale): ORT, TFLite) or length * scale (the reference,
    intended per onnx/onnx#2462: 2x4 -> 1x2 at scale 0.6 gives [1, 3.14] rather than the corners [1, 4]);
  * MaxUnpool with `output_shape`: MaxPool's indices as flat positions in the output_shape tensor (ORT,
    PyTorch) or in the shape inferred without it, padded after (the reference; onnx/onnx#2398,
    microsoft/onnxruntime#2193).
"""

from __future__ import annotations

import numpy as np
import onnx


def _single(model: onnx.ModelProto) -> onnx.NodeProto | None:
    return model.graph.node[0] if len(model.graph.node) == 1 else None


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _value(model: onnx.ModelProto, feeds: dict, name: str):
    if not name:
        return None
    if name in feeds:
        return feeds[name]
    for init in model.graph.initializer:
        if init.name == name:
            return onnx.numpy_helper.to_array(init)
    return None


# --- random outputs -----------------------------------------------------------------------------------------

def random_check(model: onnx.ModelProto, feeds: dict, actual: dict) -> tuple[bool, str] | None:
    """(ok, why-not) for a case whose outputs are random draws; None for every other case."""
    node = _single(model)
    if node is None or node.op_type != "Dropout" or len(node.input) < 3:
        return None
    training = _value(model, feeds, node.input[2])
    ratio = _value(model, feeds, node.input[1]) if len(node.input) > 1 else None
    ratio = 0.5 if ratio is None else float(np.asarray(ratio))
    if training is None or not bool(np.asarray(training)) or ratio == 0:
        return None  # inference mode or ratio 0: deterministic, compared as usual
    x = feeds[node.input[0]]
    y = actual.get(node.output[0])
    if not isinstance(y, np.ndarray) or y.shape != x.shape or y.dtype != x.dtype:
        return False, f"output y: {getattr(y, 'shape', None)} {getattr(y, 'dtype', None)}, want {x.shape} {x.dtype}"
    has_mask = len(node.output) > 1 and node.output[1]
    mask = actual.get(node.output[1]) if has_mask else (y != 0)
    if not isinstance(mask, np.ndarray) or mask.shape != x.shape or mask.dtype != np.bool_:
        return False, "mask: not a bool tensor of x's shape"
    want = np.where(mask, x.astype(np.float64) / (1 - ratio), 0.0)
    if not np.allclose(y.astype(np.float64), want, rtol=1e-6, atol=1e-6):
        return False, "y != mask * x / (1 - ratio)"
    if x.size >= 16 and (mask.all() or not mask.any()):
        return False, f"mask keeps {int(mask.sum())} of {x.size} at ratio {ratio:g}"
    return True, ""


# --- disputed reference values ------------------------------------------------------------------------------

def recomputed_expected(model: onnx.ModelProto, feeds: dict) -> tuple[dict, str] | None:
    """(expected outputs under the other reading, why) when the case's listed values are disputed (see the
    module text)."""
    node = _single(model)
    if node is None:
        return None
    if node.op_type == "Resize":
        return _resize_align_corners_scales(model, node, feeds)
    if node.op_type == "MaxUnpool":
        return _maxunpool_output_shape(model, node, feeds)
    return None


def _resize_align_corners_scales(model, node, feeds):
    if _attr(node, "coordinate_transformation_mode", b"half_pixel") != b"align_corners":
        return None
    x = feeds.get(node.input[0])
    scales = _value(model, feeds, node.input[2]) if len(node.input) > 2 else None
    if x is None or scales is None or scales.size == 0 or (len(node.input) > 3 and node.input[3]):
        return None
    sizes = np.floor(np.array(x.shape) * scales.astype(np.float64)).astype(np.int64)
    if np.allclose(sizes, np.array(x.shape) * scales.astype(np.float64)):
        return None  # integral output lengths: the reference already agrees with the text
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    sized = helper.make_node("Resize", [node.input[0], "", "", "sizes"], list(node.output), name=node.name)
    sized.attribute.extend(node.attribute)
    graph = helper.make_graph([sized], "g", [model.graph.input[0]], list(model.graph.output),
                              [onnx.numpy_helper.from_array(sizes, "sizes")])
    m = helper.make_model(graph, opset_imports=list(model.opset_import))
    (y,) = ReferenceEvaluator(m).run(None, {node.input[0]: x})
    return {node.output[0]: y}, (f"align_corners with scales: recomputed with the output length {sizes.tolist()} "
                                 "as length_resized (onnx/onnx#2462)")


def _maxunpool_output_shape(model, node, feeds):
    if len(node.input) < 3 or not node.input[2]:
        return None
    x, idx = feeds.get(node.input[0]), feeds.get(node.input[1])
    shape = _value(model, feeds, node.input[2])
    if x is None or idx is None or shape is None:
        return None
    y = np.zeros(int(np.prod(shape)), x.dtype)
    y[idx.reshape(-1)] = x.reshape(-1)
    return {node.output[0]: y.reshape(tuple(int(s) for s in shape))}, (
        "MaxUnpool with output_shape: indices scattered into output_shape (onnx/onnx#2398)")
