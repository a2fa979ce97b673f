"""Empirical bias correction (Nagel et al. 2019, "Data-Free Quantization", section 4.2, with calibration means).

Rounding a conv's weights to int8 shifts the mean of each output channel by sum(dW * E[x]); on trained depthwise
convs (9 weights per channel) that shift is systematic and the next layers amplify it. This subtracts it from the
int32 bias the quantizer wrote, using the weights as actually rounded (read back from the QDQ graph) and the
per-channel means of each conv's float input on calibration samples. The spatial mean stands in for every tap's
mean (exact for 1x1 convs, off only at the borders for k x k).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from edgec.quantize.activations import run_named, session_with_outputs


def input_means(float_model: onnx.ModelProto, feeds: list[dict]) -> dict[str, np.ndarray]:
    """Per-channel mean of every Conv's data input over `feeds`, by conv node name."""
    convs = [n for n in float_model.graph.node if n.op_type == "Conv" and n.name]
    sess = session_with_outputs(float_model, sorted({n.input[0] for n in convs}))
    sums: dict[str, np.ndarray] = {}
    for feed in feeds:
        out = run_named(sess, feed)
        for n in convs:
            a = out[n.input[0]]
            m = a.reshape(a.shape[0], a.shape[1], -1).mean(axis=(0, 2))
            sums[n.name] = sums.get(n.name, 0) + m
    return {k: v / max(len(feeds), 1) for k, v in sums.items()}


def correct_biases(qdq: onnx.ModelProto, float_model: onnx.ModelProto, means: dict[str, np.ndarray]) -> int:
    """Rewrite, in place, the int32 bias of every quantized Conv of `qdq`; returns how many were corrected."""
    inits = {t.name: t for t in qdq.graph.initializer}
    producer = {o: n for n in qdq.graph.node for o in n.output}
    floats = {n.name: n for n in float_model.graph.node if n.op_type == "Conv"}
    float_inits = {t.name: t for t in float_model.graph.initializer}
    done = 0
    for node in qdq.graph.node:
        fnode = floats.get(node.name)
        if node.op_type != "Conv" or len(node.input) < 3 or fnode is None or node.name not in means:
            continue
        wdq, bdq = producer.get(node.input[1]), producer.get(node.input[2])
        if wdq is None or bdq is None or wdq.op_type != "DequantizeLinear" or bdq.op_type != "DequantizeLinear":
            continue
        if fnode.input[1] not in float_inits or bdq.input[0] not in inits:
            continue
        wq = dequantize_constant(wdq, inits)
        w = numpy_helper.to_array(float_inits[fnode.input[1]]).astype(np.float32)
        mu = means[node.name]
        if wq is None or wq.shape != w.shape or w.ndim < 3:
            continue
        cout, cin_g = w.shape[0], w.shape[1]
        groups = max(1, mu.shape[0] // cin_g)
        d = (wq - w).reshape(cout, cin_g, -1).sum(axis=2)  # [cout, cin per group]
        mu_g = mu.reshape(groups, cin_g)[np.arange(cout) // (cout // groups)]  # each output's input channels
        shift = (d * mu_g).sum(axis=1)
        bq = numpy_helper.to_array(inits[bdq.input[0]])
        bscale = numpy_helper.to_array(inits[bdq.input[1]]).astype(np.float64)
        new = np.round((bq.astype(np.float64) * bscale - shift) / bscale)
        new = np.clip(new, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
        inits[bdq.input[0]].CopyFrom(numpy_helper.from_array(new, bdq.input[0]))
        done += 1
    return done


def dequantize_constant(dq: onnx.NodeProto, inits: dict) -> np.ndarray | None:
    """The float value of a DequantizeLinear whose inputs are initializers (`inits`: name -> TensorProto), or
    None when they are not."""
    if any(i not in inits for i in dq.input[:2]):
        return None
    q = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float32)
    scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float32)
    zp = (numpy_helper.to_array(inits[dq.input[2]]).astype(np.float32)
          if len(dq.input) > 2 and dq.input[2] in inits else np.zeros_like(scale))
    axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (q - zp) * scale
