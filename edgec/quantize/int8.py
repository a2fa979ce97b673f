"""int8 in the ONNX domain: static QDQ (calibrated), dynamic, and weight-only, through ONNX Runtime's tools.

Static QDQ is the form every target maps to its own int8 kernels, so all targets share one set of scales and
zero points. The tools write files; we keep them in a private temp folder and hand back ModelProtos.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.errors import LoweringError

QDQ_OPSET = 13  # per-channel DequantizeLinear needs `axis` (opset 13); older models are converted first
QDQ16_OPSET = 21  # 16-bit QuantizeLinear / DequantizeLinear are in the standard domain from opset 21
ACTIVATION_TYPES = {"int8": "QInt8", "int16": "QInt16"}

TABLE_MIN_ELEMENTS = 1 << 16  # embedding tables worth an int8 copy (a vocabulary, not a 2x384 segment table)

METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


@contextlib.contextmanager
def _quiet():
    """ORT's quantization tools log at WARNING for things we already handle (e.g. 'run pre-processing'), and the
    histogram calibrators print progress to stdout, which must stay clean (`edgec build --json`)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def to_qdq_opset(model: onnx.ModelProto, needed: int = QDQ_OPSET) -> onnx.ModelProto:
    """Raise the default-domain opset to `needed` when lower: per-channel axis on DequantizeLinear needs 13, 16-bit
    Q/DQ 21 (converted here, once, rather than inside ORT's tool, so every later step sees the same graph)."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), needed)
    if version >= needed:
        return model
    what = "16-bit activations need" if needed == QDQ16_OPSET else "int8 quantization needs"
    try:
        converted = onnx.version_converter.convert_version(model, needed)
    except Exception as e:
        raise LoweringError(
            f"{what} opset >= {needed} and converting this opset-{version} model failed "
            f"({e}); re-export the model with opset {needed} or later."
        ) from None
    return converted


def pre_process(model: onnx.ModelProto, work: Path) -> onnx.ModelProto:
    """onnxruntime's quant_pre_process: shape inference and the basic optimizations quantization expects, the
    optimizations run here as the tool runs them but without ORT's TransposeOptimizer: it splits a model's Transpose
    across the Gathers/Slices after it (transformer_block's q/k/v: 3 -> 4 transposes, the PP-OCR recognizer 9 ->
    12, in every target's int8 file), and each backend places transposes for its own layout (tflite/layout.py).
    (Skipping ORT's optimizations altogether also keeps HardSwish, which ORT inlines as HardSigmoid * x; measured:
    LiteRT's int8 HARD_SWISH made mobilenet_v3_small's int8 file 5x slower than float HardSigmoid islands on x86.)"""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, opt, dst = work / "pre_in.onnx", work / "pre_opt.onnx", work / "pre_out.onnx"
    onnx.save(model, str(src))
    with _quiet():
        quant_pre_process(str(_basic_optimized(src, opt)), str(dst), skip_optimization=True, skip_symbolic_shape=True)
    return onnx.load(str(dst))


def _basic_optimized(src: Path, dst: Path) -> Path:
    """`dst`: ONNX Runtime's basic-level optimizations of `src` minus the TransposeOptimizer (quant_pre_process's
    own step cannot leave one out). A model ORT cannot optimize goes on unoptimized, as the tool lets it."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.optimized_model_filepath = str(dst)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    try:
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"], disabled_optimizers=["TransposeOptimizer"])
    except Exception:  # noqa: BLE001 - ORT raises its own several types; calibration reports a model it cannot run
        return src
    return dst


def float_output_softmax(model: onnx.ModelProto) -> list[str]:
    """Softmax nodes that produce a graph output: their int8 output scale is fixed at 1/255, which collapses
    near-uniform probabilities, so they stay float (accuracy is effectively measured on the logits)."""
    outputs = {o.name for o in model.graph.output}
    return [n.name for n in model.graph.node if n.op_type in ("Softmax", "LogSoftmax") and n.output[0] in outputs]


def excluded_nodes(model: onnx.ModelProto, keep_float: list[str]) -> list[str]:
    """Node names that stay float: the output Softmax, and keep_float entries (node names or op types)."""
    keep = set(keep_float)
    names = [n.name for n in model.graph.node if n.name in keep or n.op_type in keep]
    return sorted(set(names + float_output_softmax(model)))


def quantize_static_qdq(
    model: onnx.ModelProto,
    reader,
    method: str,
    per_channel: bool,
    exclude: list[str],
    cache: Path,
    work: Path,
    activations: str = "int8",
) -> onnx.ModelProto:
    """Static QDQ, int8 weights, int8 or int16 activations (int16 symmetric, zero point 0: the form TFLite's 16x8
    kernels take; the model must be opset >= 21 already). `cache` holds the calibrated ranges: the first call
    calibrates (reading `reader`), later calls with other exclusions reuse them without re-reading data."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    out, src = work / "qdq.onnx", work / "float_in.onnx"
    # a path, not the ModelProto: the tool re-saves a proto it is given with external data in place,
    # leaving the caller's copy pointing into a deleted temp folder
    onnx.save(model, str(src))
    with _quiet():
        quantize_static(
            str(src), str(out), reader,
            quant_format=QuantFormat.QDQ, per_channel=per_channel,
            activation_type=getattr(QuantType, ACTIVATION_TYPES[activations]), weight_type=QuantType.QInt8,
            nodes_to_exclude=list(exclude),
            extra_options={"ActivationSymmetric": activations == "int16"},
            calibrate_method=getattr(CalibrationMethod, METHODS[method]),
            calibration_cache_path=str(cache),
        )
    qdq = onnx.load(str(out))
    float_bn_params(qdq)
    return qdq


def quantize_dynamic_int8(model: onnx.ModelProto, per_channel: bool, exclude: list[str]) -> onnx.ModelProto:
    """Weights int8 now, activations quantized at run time (DynamicQuantizeLinear + ConvInteger/MatMulInteger).
    uint8 weights: ORT's CPU ConvInteger has no int8-weight kernel."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="edgec-q-") as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save(model, str(src))
        with _quiet():
            quantize_dynamic(str(src), str(dst), per_channel=per_channel, weight_type=QuantType.QUInt8,
                             nodes_to_exclude=list(exclude))
        return onnx.load(str(dst))


# ---------------------------------------------------------------- weight-only


def _weight_axis(node: onnx.NodeProto, index: int, rank: int) -> int | None:
    """The output-channel axis of a weight input, or None when this input is not a weight we quantize."""
    if node.op_type == "Conv" and index == 1:
        return 0
    if node.op_type == "ConvTranspose" and index == 1:
        return 1
    if node.op_type == "Gemm" and index == 1:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if node.op_type == "MatMul" and index == 1 and rank >= 2:
        return rank - 1
    return None


def _table_axis(node: onnx.NodeProto, index: int, rank: int) -> int | None:
    """An embedding table (Gather data along axis 0): one scale per row, so rare tokens keep their own range."""
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    return 0 if node.op_type == "Gather" and index == 0 and rank == 2 and axis == 0 else None


def quantize_weights_only(model: onnx.ModelProto, per_channel: bool, exclude: list[str],
                          min_elements: int = 64, tables: bool = False) -> tuple[onnx.ModelProto, int]:
    """Conv/ConvTranspose/Gemm/MatMul weights (and with `tables`, 2-D Gather tables of >= TABLE_MIN_ELEMENTS,
    per row) become int8 + DequantizeLinear (symmetric, zero point 0); activations stay float.
    Returns (model, number of weights quantized)."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    skip = set(exclude)
    done: dict[str, str] = {}  # weight name -> dequantized tensor name (shared weights quantized once)
    new_nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        for i, name in enumerate(node.input):
            if node.name in skip or name not in inits:
                continue
            tensor = inits[name]
            if tensor.data_type != onnx.TensorProto.FLOAT or int(np.prod(tensor.dims)) < min_elements:
                continue
            axis = _weight_axis(node, i, len(tensor.dims))
            if axis is None and tables and int(np.prod(tensor.dims)) >= TABLE_MIN_ELEMENTS:
                axis = _table_axis(node, i, len(tensor.dims))
            if axis is None:
                continue
            if name not in done:
                new_nodes.append(_add_dequantized(graph, numpy_helper.to_array(tensor), name, axis, per_channel))
                done[name] = new_nodes[-1].output[0]
            node.input[i] = done[name]
    # the DequantizeLinear nodes go first: their inputs are all initializers, so the order stays topological
    nodes = new_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_unused_initializers(graph)
    return model, len(done)


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """Initializers no node reads any more (rewritten weights leave their originals behind)."""
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def symmetric_int8(w: np.ndarray, axis: int = 0, per_channel: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(int8 values, float32 scale): symmetric min/max weight quantization, one scale per slice along `axis`
    (per_channel) or one for the tensor, the scheme ONNX Runtime's quantizer uses for weights."""
    if per_channel:
        others = tuple(a for a in range(w.ndim) if a != axis)
        amax = np.abs(w).max(axis=others) if others else np.abs(w)
    else:
        amax = np.array(np.abs(w).max())
    scale = (np.maximum(amax, 1e-12) / 127.0).astype(np.float32)
    shape = [1] * w.ndim
    if per_channel:
        shape[axis] = -1
    return np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8), scale


def _add_dequantized(graph, w: np.ndarray, name: str, axis: int, per_channel: bool) -> onnx.NodeProto:
    q, scale = symmetric_int8(w, axis, per_channel)
    graph.initializer.extend([
        numpy_helper.from_array(q, f"{name}_quantized"),
        numpy_helper.from_array(scale, f"{name}_scale"),
        numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{name}_zero_point"),
    ])
    attrs = {"axis": axis} if per_channel else {}
    return helper.make_node(
        "DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"], [f"{name}_dequantized"],
        name=f"{name}_DequantizeLinear", **attrs,
    )


# ---------------------------------------------------------------- ORT: uint8 activations


def uint8_activations(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """A copy whose int8 activation Q/DQ pairs are uint8 with zero point + 128: the same scales and exactly the
    same dequantized values (q_u8 = q_s8 + 128), but ONNX Runtime's x86 CPU EP fuses U8 activations x S8 weights
    into its fast QLinearConv/MatMul path, while S8 activations run slower than fp32 there (measured on
    squeezenet, ORT level 'extended': S8S8 1.57x fp32, U8S8 1.07x). Weights (int8 initializers feeding a
    DequantizeLinear) and int32 biases stay as they are. Returns (model, number of QuantizeLinear converted)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    g = out.graph
    inits = {t.name: t for t in g.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    made: dict[str, str] = {}  # int8 zero-point initializer -> its uint8 twin
    converted: set[str] = set()
    for q in g.node:
        if q.op_type != "QuantizeLinear" or len(q.input) < 3 or q.input[2] not in inits:
            continue
        zp = inits[q.input[2]]
        users = consumers.get(q.output[0], [])
        # only a plain Q -> DQ... pair; anything else reading the int8 tensor would see other values
        if zp.data_type != onnx.TensorProto.INT8 or not users or any(
                u.op_type != "DequantizeLinear" or len(u.input) < 3 or u.input[2] not in inits
                or numpy_helper.to_array(inits[u.input[2]]).tolist() != numpy_helper.to_array(zp).tolist()
                for u in users) or q.output[0] in {o.name for o in g.output}:
            continue
        if zp.name not in made:
            u8 = (numpy_helper.to_array(zp).astype(np.int16) + 128).astype(np.uint8)
            made[zp.name] = f"{zp.name}_u8"
            g.initializer.append(numpy_helper.from_array(u8, made[zp.name]))
        q.input[2] = made[zp.name]
        for u in users:
            u.input[2] = made[zp.name]
        converted.add(q.output[0])
    for vi in g.value_info:
        if vi.name in converted:
            vi.type.tensor_type.elem_type = onnx.TensorProto.UINT8
    _drop_unused_initializers(g)
    return out, len(converted)


# ---------------------------------------------------------------- float parameters for BatchNormalization


def float_bn_params(model: onnx.ModelProto) -> int:
    """In place: BatchNormalization scale/bias/mean/var that ORT's quantizer put behind a DequantizeLinear go back
    to float constants (their dequantized values). They are a few floats per channel, int8 saves nothing there and
    only adds error, and a standalone BN (densenet's pre-activation blocks) with non-constant parameters is not
    lowerable for CoreML. The BN's activation input and output keep their Q/DQ. Returns the number of nodes changed."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    changed = 0
    for node in g.node:
        if node.op_type != "BatchNormalization":
            continue
        hit = False
        for i in range(1, min(5, len(node.input))):
            dq = producer.get(node.input[i])
            if dq is None or dq.op_type != "DequantizeLinear" or any(x not in inits for x in dq.input if x):
                continue
            q = numpy_helper.to_array(inits[dq.input[0]]).astype(np.float64)
            scale = numpy_helper.to_array(inits[dq.input[1]]).astype(np.float64)
            zp = numpy_helper.to_array(inits[dq.input[2]]).astype(np.float64) if len(dq.input) > 2 and dq.input[2] \
                else np.zeros_like(scale)
            axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
            if scale.ndim == 1 and q.ndim > 1:  # per-axis: broadcast along `axis`
                shape = [1] * q.ndim
                shape[axis] = -1
                scale, zp = scale.reshape(shape), zp.reshape(shape)
            name = f"{node.input[i]}_float"
            if name not in inits:
                inits[name] = numpy_helper.from_array(((q - zp) * scale).astype(np.float32), name)
                g.initializer.append(inits[name])
            node.input[i] = name
            hit = True
        changed += hit
    if changed:
        used = {x for n in g.node for x in n.input} | {o.name for o in g.output}
        live = [n for n in g.node if n.op_type != "DequantizeLinear" or n.output[0] in used]
        del g.node[:]
        g.node.extend(live)
        _drop_unused_initializers(g)
    return changed
