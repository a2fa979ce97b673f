"""int8 on a host CPU computed as the device computes it.

ONNX Runtime's fused U8S8 kernels (QLinearConv, QLinearMatMul, MatMulInteger, QGemm, ...) use `vpmaddubsw` on
x86 CPUs with AVX2 but without VNNI: it adds two u8*s8 products into a *saturating* int16, so large activations
times large weights clip (measured on a 3x3 conv: outputs 0.35 off, 7 int8 steps). VNNI/AVX-512 hosts and every
ARM phone accumulate in int32 and do not clip. A check on such a host would judge the host CPU, not the artifact.

Two remedies, both exact integer arithmetic:
- an ONNX graph: ORT's own `session.x64quantprecision` (its transformer widens int8 weights to uint8 so the
  U8U8 kernels run; OrtRunner always sets it);
- a saved .ort file, whose graph is already fused and is not transformed again at load: read its graph back
  into ONNX (`ort_to_onnx`), widen the int8 weights of the integer kernels to uint8 ourselves (w + 128 with
  zero point + 128: the same w - zp), and run that. The nodes, weights and scales are the file's own.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# op -> (weight input, weight zero-point input): the integer kernels whose int8 weights pair with u8 activations
WEIGHT_INPUTS = {
    "QLinearConv": (3, 5), "QLinearMatMul": (3, 5), "MatMulInteger": (1, 3), "ConvInteger": (1, 3),
    "QGemm": (3, 5), "DynamicQuantizeMatMul": (1, 3), "MatMulIntegerToFloat": (1, 5),
}


@functools.lru_cache(maxsize=1)
def u8s8_saturates() -> bool:
    """Whether this CPU's ONNX Runtime U8S8 GEMM clips pairs of products to int16 (AVX2/SSE without VNNI)."""
    import onnxruntime as ort

    k = 64
    g = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["y"])], "probe",
                          [helper.make_tensor_value_info("a", TensorProto.UINT8, [1, k])],
                          [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 8])],
                          [numpy_helper.from_array(np.full((k, 8), 127, np.int8), "b")])
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString(),
                                so, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"a": np.full((1, k), 255, np.uint8)})[0]
    return bool((got != 255 * 127 * k).any())


def host_int8_kernels() -> str:
    """One line for reports: which integer arithmetic this host's ONNX Runtime int8 check uses."""
    if u8s8_saturates():
        return ("this CPU's U8S8 int8 kernels saturate (x86 without VNNI): int8 weights widened to uint8, "
                "exact U8U8 kernels, as an ARM device's int32 accumulation")
    return "this CPU's int8 kernels accumulate exactly in int32, as an ARM device's"


def has_int8_weights(model: onnx.ModelProto) -> bool:
    inits = {t.name: t.data_type for t in model.graph.initializer}
    return any(n.op_type in WEIGHT_INPUTS and len(n.input) > WEIGHT_INPUTS[n.op_type][0]
               and inits.get(n.input[WEIGHT_INPUTS[n.op_type][0]]) == TensorProto.INT8 for n in model.graph.node)


def widen_int8_weights(model: onnx.ModelProto) -> int:
    """In place: int8 weight initializers of the integer kernels (and their zero points) as uint8 + 128.
    Returns how many nodes changed. A weight shared with another reader is copied, never changed under it."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    readers: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    changed = 0
    for n in g.node:
        slots = WEIGHT_INPUTS.get(n.op_type)
        if slots is None or len(n.input) <= slots[0] or n.input[slots[0]] not in inits:
            continue
        w = inits[n.input[slots[0]]]
        zp_name = n.input[slots[1]] if len(n.input) > slots[1] else ""
        if w.data_type != TensorProto.INT8 or (zp_name and zp_name not in inits):
            continue
        zp = numpy_helper.to_array(inits[zp_name]) if zp_name else np.zeros((), np.int8)
        for slot, arr in ((slots[0], numpy_helper.to_array(w)), (slots[1], zp)):
            name = f"{n.name or n.output[0]}_u8_in{slot}"
            g.initializer.append(numpy_helper.from_array((arr.astype(np.int16) + 128).astype(np.uint8), name))
            while len(n.input) <= slot:
                n.input.append("")
            n.input[slot] = name
        changed += 1
    return changed


def exact_twin(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    twin = onnx.ModelProto()
    twin.CopyFrom(model)
    return twin, widen_int8_weights(twin)


# ----- an .ort file's graph as ONNX -----

def ort_to_onnx(data: bytes) -> onnx.ModelProto:
    """The model stored in an ORT-format file as an ONNX ModelProto: same nodes (ORT's fused and contrib ops
    included), attributes, initializers, inputs and outputs."""
    import onnxruntime.tools.ort_format_model  # noqa: F401  (puts ort_flatbuffers_py on sys.path)
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import (
        InferenceSession as SessionFbs,
    )

    session = SessionFbs.InferenceSession.GetRootAs(data, 0)
    fm = session.Model()
    opsets = [helper.make_opsetid(_s(fm.OpsetImport(i).Domain()), fm.OpsetImport(i).Version())
              for i in range(fm.OpsetImportLength())]
    model = helper.make_model(_graph(fm.Graph()), opset_imports=opsets)
    model.ir_version = fm.IrVersion()
    return model


def _s(b) -> str:
    return b.decode() if b else ""


def _tensor(t) -> onnx.TensorProto:
    out = onnx.TensorProto()
    out.name = _s(t.Name())
    out.dims.extend(int(d) for d in (t.DimsAsNumpy() if t.DimsLength() else []))
    out.data_type = t.DataType()
    if t.StringDataLength():
        out.string_data.extend(t.StringData(i) for i in range(t.StringDataLength()))
    elif t.RawDataLength():
        out.raw_data = t.RawDataAsNumpy().tobytes()
    return out


def _attribute(a) -> onnx.AttributeProto:
    kind = a.Type()
    name = _s(a.Name())
    if kind == 1:
        return helper.make_attribute(name, a.F())
    if kind == 2:
        return helper.make_attribute(name, a.I())
    if kind == 3:
        return helper.make_attribute(name, a.S() or b"")
    if kind == 4:
        return helper.make_attribute(name, _tensor(a.T()))
    if kind == 5:
        return helper.make_attribute(name, _graph(a.G()))
    if kind == 6:
        return helper.make_attribute(name, [float(v) for v in a.FloatsAsNumpy()] if a.FloatsLength() else [],
                                     attr_type=onnx.AttributeProto.FLOATS)
    if kind == 7:
        return helper.make_attribute(name, [int(v) for v in a.IntsAsNumpy()] if a.IntsLength() else [],
                                     attr_type=onnx.AttributeProto.INTS)
    if kind == 8:
        return helper.make_attribute(name, [a.Strings(i) for i in range(a.StringsLength())],
                                     attr_type=onnx.AttributeProto.STRINGS)
    if kind == 9:
        return helper.make_attribute(name, [_tensor(a.Tensors(i)) for i in range(a.TensorsLength())],
                                     attr_type=onnx.AttributeProto.TENSORS)
    if kind == 10:
        return helper.make_attribute(name, [_graph(a.Graphs(i)) for i in range(a.GraphsLength())],
                                     attr_type=onnx.AttributeProto.GRAPHS)
    raise ValueError(f"attribute '{name}' of type {kind} is not read back from ORT format")


def _value_info(v) -> onnx.ValueInfoProto:
    name = _s(v.Name())
    t = v.Type()
    if t is None or t.ValueType() != 1:
        return helper.make_empty_tensor_value_info(name)
    from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import (
        TensorTypeAndShape as TTS,
    )

    tts = TTS.TensorTypeAndShape()
    tab = t.Value()
    tts.Init(tab.Bytes, tab.Pos)
    shape = tts.Shape()
    dims = None
    if shape is not None:
        dims = []
        for i in range(shape.DimLength()):
            dv = shape.Dim(i).Value()
            dims.append(None if dv is None or dv.DimType() == 0 else
                        int(dv.DimValue()) if dv.DimType() == 1 else _s(dv.DimParam()))
    return helper.make_tensor_value_info(name, tts.ElemType(), dims)


def _graph(fg) -> onnx.GraphProto:
    args = {}
    for i in range(fg.NodeArgsLength()):
        v = fg.NodeArgs(i)
        args[_s(v.Name())] = v
    nodes = []
    fnodes = sorted((fg.Nodes(i) for i in range(fg.NodesLength())), key=lambda n: n.Index())
    for fn in fnodes:
        node = helper.make_node(_s(fn.OpType()), [_s(fn.Inputs(i)) for i in range(fn.InputsLength())],
                                [_s(fn.Outputs(i)) for i in range(fn.OutputsLength())],
                                name=_s(fn.Name()), domain=_s(fn.Domain()) or None)
        node.attribute.extend(_attribute(fn.Attributes(i)) for i in range(fn.AttributesLength()))
        nodes.append(node)
    inits = [_tensor(fg.Initializers(i)) for i in range(fg.InitializersLength())]
    init_names = {t.name for t in inits}
    inputs = [_value_info(args[n]) for n in (_s(fg.Inputs(i)) for i in range(fg.InputsLength()))
              if n not in init_names]
    outputs = [_value_info(args[_s(fg.Outputs(i))]) for i in range(fg.OutputsLength())]
    return helper.make_graph(_topological(nodes), "ort", inputs, outputs, inits)


def _topological(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """ORT stores nodes by index, which fusions leave out of execution order: order them by data flow."""
    made = {n.output[i] for n in nodes for i in range(len(n.output))}
    ready: set[str] = set()
    out, todo = [], list(nodes)
    while todo:
        rest = []
        for n in todo:
            if all(not i or i not in made or i in ready for i in n.input):
                out.append(n)
                ready.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(todo):  # a cycle cannot be in a loadable file; keep the stored order for the rest
            out.extend(rest)
            break
        todo = rest
    return out
