"""ModelBuilder -> TFLite flatbuffer bytes (schema v3, identifier TFL3), deterministic.

Buffer 0 is the empty sentinel. Weight buffers are 16-byte aligned inside the flatbuffer. Models whose
weights would push the flatbuffer past 2 GB (its 32-bit offsets) keep the weights after the flatbuffer
instead, referenced by Buffer.offset/size (also 16-byte aligned), which LiteRT reads the same way.
"""

from __future__ import annotations

import flatbuffers
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.builder import TFL_TYPE, ModelBuilder
from edgec.runtimes.metadata import read_metadata  # noqa: F401  (moved; the runners read it too)

ALIGN = 16
_INLINE_LIMIT = 2**31 - 2**26  # leave 64 MB of head-room for the graph itself


class _AlignedBufferT(S.BufferT):
    """The generated Pack aligns `data` to its element size only; TFLite wants 16 for weights."""

    def Pack(self, builder):
        if self.data:
            n = len(self.data)
            builder.StartVector(1, n, ALIGN)
            builder.head -= n
            builder.Bytes[builder.head:builder.head + n] = self.data
            builder.vectorNumElems = n
            data = builder.EndVector()
        S.BufferStart(builder)
        if self.data:
            S.BufferAddData(builder, data)
        S.BufferAddOffset(builder, self.offset)
        S.BufferAddSize(builder, self.size)
        return S.BufferEnd(builder)


def _options_type(options) -> int:
    name = type(options).__name__
    return getattr(S.BuiltinOptions, name[:-1]) if name.endswith("T") else 0


def _quant(q):
    if q is None:
        return None
    qp = S.QuantizationParametersT()
    qp.scale, qp.zeroPoint = [float(s) for s in q.scale], [int(z) for z in q.zero_point]
    qp.quantizedDimension = int(q.axis or 0)
    return qp


def serialize(b: ModelBuilder, signature: tuple[list[tuple[str, int]], list[tuple[str, int]]],
              description: str = "edgec", external: bool | None = None, metadata: dict[str, bytes] | None = None) -> bytes:
    """Bytes of the .tflite file. signature: ([(input name, tensor)], [(output name, tensor)]);
    metadata: Model.metadata entries (name -> bytes), e.g. the I/O layout the runner reads back."""
    codes: dict[tuple[str, int], int] = {}
    buffers_used = [0]
    buf_map = {0: 0}
    sg, remap = _subgraph(b, "main", codes, buffers_used, buf_map)
    subgraphs = [sg] + [_subgraph(child, f"sub{k + 1}", codes, buffers_used, buf_map)[0]
                        for k, child in enumerate(b.subgraphs)]  # IF / WHILE bodies, numbered from 1
    opcodes = []
    for (code, version) in codes:
        oc = S.OperatorCodeT()
        oc.builtinCode = getattr(S.BuiltinOperator, code)
        oc.deprecatedBuiltinCode = min(oc.builtinCode, 127)  # readers before v2.4 only see this field
        oc.version = version
        opcodes.append(oc)

    sig = S.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = "serving_default", 0
    sig.inputs = [_tensor_map(name, remap[i]) for name, i in signature[0]]
    sig.outputs = [_tensor_map(name, remap[i]) for name, i in signature[1]]

    datas = [b.buffers[i] for i in buffers_used]
    entries = []
    for name, value in sorted((metadata or {}).items()):
        m = S.MetadataT()
        m.name, m.buffer = name, len(datas)
        datas.append(value)
        entries.append(m)
    total = sum(len(d) for d in datas)
    if external is None:
        external = total > _INLINE_LIMIT
    buffers = []
    for d in datas:
        buf = _AlignedBufferT()
        buf.data = None if external or not d else d
        buffers.append(buf)

    model = S.ModelT()
    model.version, model.description = 3, description
    model.operatorCodes, model.subgraphs, model.buffers = opcodes, subgraphs, buffers
    model.signatureDefs = [sig]
    model.metadata = entries or None
    if not external:
        return _finish(model)
    return _with_external(model, buffers, datas)


def _subgraph(b: ModelBuilder, name: str, codes: dict, buffers_used: list, buf_map: dict):
    """(SubGraphT, builder tensor -> file tensor index) of one graph; `codes` and the buffers are model-wide."""
    used = sorted({t for op in b.ops for t in op.inputs + op.outputs if t >= 0} | set(b.inputs) | set(b.outputs))
    remap = {old: new for new, old in enumerate(used)}
    tensors = []
    for old in used:
        t = b.tensors[old]
        tt = S.TensorT()
        tt.name, tt.shape, tt.type = t.name, list(t.shape), TFL_TYPE[t.dtype]
        if t.buffer and t.buffer not in buf_map:
            buf_map[t.buffer] = len(buffers_used)
            buffers_used.append(t.buffer)
        tt.buffer = buf_map[t.buffer]
        tt.quantization = _quant(t.quant)
        tt.hasRank = True
        if t.signature is not None:
            tt.shapeSignature = list(t.signature)
        tensors.append(tt)
    operators = []
    for op in b.ops:
        key = (op.code, op.version)
        if key not in codes:
            codes[key] = len(codes)
        o = S.OperatorT()
        o.opcodeIndex = codes[key]
        o.inputs = [remap[i] if i >= 0 else -1 for i in op.inputs]
        o.outputs = [remap[i] for i in op.outputs]
        if op.options is not None:
            o.builtinOptionsType, o.builtinOptions = _options_type(op.options), op.options
        operators.append(o)
    sg = S.SubGraphT()
    sg.tensors, sg.operators, sg.name = tensors, operators, name
    sg.inputs, sg.outputs = [remap[i] for i in b.inputs], [remap[i] for i in b.outputs]
    return sg, remap


def _tensor_map(name: str, idx: int):
    m = S.TensorMapT()
    m.name, m.tensorIndex = name, idx
    return m


def _finish(model) -> bytes:
    fb = flatbuffers.Builder(1024)
    fb.Finish(model.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def _with_external(model, buffers, datas) -> bytes:
    """Weights after the flatbuffer. Offsets depend on the flatbuffer's size, which depends on the offsets'
    values only through fixed-width fields: pack once with placeholders to learn the size, then for real."""
    for buf, d in zip(buffers, datas):
        buf.offset, buf.size = (1, len(d)) if d else (0, 0)  # 1 = placeholder (fields must be present)
    head = _finish(model)
    pos = _align(len(head))
    for buf, d in zip(buffers, datas):
        if d:
            buf.offset, pos = pos, _align(pos + len(d))
    head = _finish(model)
    out = bytearray(head)
    for buf, d in zip(buffers, datas):
        if d:
            out.extend(b"\0" * (buf.offset - len(out)))
            out.extend(d)
    return bytes(out)


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN
