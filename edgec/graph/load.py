"""Load an ONNX model as untrusted input: clear errors for bad files, external data only inside the model folder."""

from __future__ import annotations

from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from edgec.errors import ModelLoadError
from edgec.graph.limits import check_initializers, itemsize

HINT = "Re-export the model (e.g. torch.onnx.export) and check the file was copied completely."


def _check_external_data(model: onnx.ModelProto, path: Path) -> None:
    base = path.parent.resolve()
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (base / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(base):
            raise ModelLoadError(
                f"{path}: tensor '{tensor.name}' keeps its data at '{location}', outside the model's folder "
                f"{base}. edgec refuses external data outside the model folder (an untrusted model could read "
                f"any file). Move the data file next to the model and re-save it with a relative location."
            )
        if not target.is_file():
            raise ModelLoadError(
                f"{path}: tensor '{tensor.name}' keeps its data in '{location}', which does not exist in {base}. "
                f"Copy the external data file next to the model."
            )


def _graphs(graph: onnx.GraphProto, where: str = "graph"):
    """The graph and every subgraph (If/Loop/Scan bodies), iteratively: a deep nesting is no RecursionError."""
    stack = [(graph, where)]
    while stack:
        g, w = stack.pop()
        yield g, w
        for i, node in enumerate(g.node):
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    stack.append((a.g, f"{w} node #{i} attribute {a.name!r}"))
                elif a.type == onnx.AttributeProto.GRAPHS:
                    stack.extend((sub, f"{w} node #{i} attribute {a.name!r}") for sub in a.graphs)


def _undecodable(value) -> bool:
    # protobuf (upb) hands back a string field that is not valid UTF-8 as bytes instead of str
    return isinstance(value, bytes)


def rename_undecodable(model: onnx.ModelProto, path: Path) -> dict[str, str]:
    """Tensor and node names that are not valid UTF-8 get a readable, deterministic UTF-8 name (the bad bytes as
    \\xNN escapes, made unique); doc strings that are not UTF-8 are cleared. Returns {escaped old name: new name}
    for the manifest. Any other field that is not UTF-8 (op type, domain, attribute name, metadata) is refused:
    it has no name to give back."""
    graphs = list(_graphs(model.graph))
    used = {n for g, _ in graphs for n in _tensor_names(g) if not _undecodable(n)}
    used |= {n.name for g, _ in graphs for n in g.node if not _undecodable(n.name)}
    renames: dict[bytes, str] = {}

    def fixed(name):
        if not _undecodable(name):
            return name
        if name not in renames:
            base = name.decode("utf-8", "backslashreplace")
            new, i = base, 1
            while new in used:
                new, i = f"{base}_{i}", i + 1
            used.add(new)
            renames[name] = new
        return renames[name]

    header = [model.producer_name, model.producer_version, model.domain]
    header += [x for p in model.metadata_props for x in (p.key, p.value)] + [o.domain for o in model.opset_import]
    if any(_undecodable(x) for x in header):
        _refuse(path, "the model's header (producer, domain or metadata)")
    if _undecodable(model.doc_string):
        model.doc_string = ""
    for g, where in graphs:
        if _undecodable(g.name):
            g.name = "graph"
        if _undecodable(g.doc_string):
            g.doc_string = ""
        for v in (*g.input, *g.output, *g.value_info):
            v.name = fixed(v.name)
            if _undecodable(v.doc_string):
                v.doc_string = ""
        for t in g.initializer:
            t.name = fixed(t.name)
            if _undecodable(t.doc_string):
                t.doc_string = ""
            if any(_undecodable(e.key) or _undecodable(e.value) for e in t.external_data):
                _refuse(path, f"{where}: initializer '{t.name}' external data location")
        for i, n in enumerate(g.node):
            if _undecodable(n.op_type) or _undecodable(n.domain) or any(
                    _undecodable(a.name) or _undecodable(a.ref_attr_name) for a in n.attribute):
                _refuse(path, f"{where}: node #{i} op type, domain or attribute name")
            if any(_undecodable(x) for x in (*n.input, *n.output)):
                ins, outs = [fixed(x) for x in n.input], [fixed(x) for x in n.output]
                del n.input[:], n.output[:]
                n.input.extend(ins)
                n.output.extend(outs)
            n.name = fixed(n.name)
            if _undecodable(n.doc_string):
                n.doc_string = ""
            for a in n.attribute:
                if _undecodable(a.doc_string):
                    a.doc_string = ""
    return {old.decode("utf-8", "backslashreplace"): new for old, new in renames.items()}


def _tensor_names(g: onnx.GraphProto):
    for v in (*g.input, *g.output, *g.value_info, *g.initializer):
        yield v.name
    for n in g.node:
        yield from n.input
        yield from n.output


def _refuse(path: Path, where: str):
    raise ModelLoadError(
        f"{path}: {where} is not valid UTF-8. ONNX strings must be UTF-8 text, and this field is not a name edgec "
        f"can replace. Re-export the model, or fix the field with onnx's Python API."
    )


def _check_initializer_data(model: onnx.ModelProto, path: Path) -> None:
    """Inline initializer bytes must match their dims: a short raw_data would fail later inside numpy."""
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL or not t.HasField("raw_data"):
            continue
        if t.data_type in (onnx.TensorProto.STRING, onnx.TensorProto.UNDEFINED):
            continue
        want = 1
        for d in t.dims:
            want *= d
        bits = 4 if t.data_type in (onnx.TensorProto.INT4, onnx.TensorProto.UINT4) else 8 * itemsize(t.data_type)
        if len(t.raw_data) != (want * bits + 7) // 8:
            raise ModelLoadError(
                f"{path}: initializer '{t.name}' has {len(t.raw_data)} bytes of data but its dims {list(t.dims)} "
                f"need {(want * bits + 7) // 8}. The file is corrupt or was written by a broken exporter. {HINT}"
            )


def load_model(path: Path | str) -> onnx.ModelProto:
    return load_model_renamed(path)[0]


def load_model_renamed(path: Path | str) -> tuple[onnx.ModelProto, dict[str, str]]:
    """The model and the names edgec gave to tensors/nodes whose names were not UTF-8 (for the manifest)."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file. Check the path to the .onnx model.")
    if path.is_dir():
        raise ModelLoadError(f"{path}: is a folder, not an .onnx file.")
    size = path.stat().st_size
    if size == 0:
        raise ModelLoadError(f"{path}: the file is empty (0 bytes). {HINT}")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeWarning, ValueError, UnicodeDecodeError) as e:
        raise ModelLoadError(
            f"{path}: not a readable ONNX model ({size} bytes; protobuf said: {e}). The file is truncated, "
            f"corrupt or not ONNX. {HINT}"
        ) from None
    except Exception as e:  # protobuf raises several internal types for garbage input
        raise ModelLoadError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e}). {HINT}") from None
    if not model.graph.node or not model.opset_import:
        raise ModelLoadError(
            f"{path}: parsed, but it has no graph nodes or no opset import ({size} bytes), so it is not an ONNX "
            f"model (a truncated or non-ONNX file can parse as an empty protobuf). {HINT}"
        )
    if not model.graph.output:
        raise ModelLoadError(f"{path}: the graph has no outputs, so there is nothing to compile or check. {HINT}")
    renamed = rename_undecodable(model, path)
    _check_external_data(model, path)
    check_initializers(model, str(path))  # from dims, before external data is read into memory
    _check_initializer_data(model, path)
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(path.parent))
    except (OSError, ValueError) as e:  # ValueError: an offset or length that is not a number
        raise ModelLoadError(f"{path}: cannot read its external data ({e}). Re-save the model with "
                             f"onnx.save(..., save_as_external_data=True) next to its data file.") from None
    _check_initializer_data(model, path)  # external data read at a wrong offset/length has the wrong size
    try:
        onnx.checker.check_model(model, full_check=False)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        raise ModelLoadError(f"{path}: the ONNX checker rejects the model: {first.rstrip('.')}. {HINT}") from None
    _check_io_types(model, path)
    return model, renamed


def _check_io_types(model: onnx.ModelProto, path: Path) -> None:
    """A graph input must say its element type, and an input or output type must be one ONNX defines (the
    checker lets 0 and 99 through; every later stage would fail on them with a KeyError)."""
    known = set(onnx.TensorProto.DataType.values())
    inits = {t.name for t in model.graph.initializer}
    for kind, values in (("input", [v for v in model.graph.input if v.name not in inits]), ("output", model.graph.output)):
        for v in values:
            if not v.type.HasField("tensor_type"):
                continue
            elem = v.type.tensor_type.elem_type
            if elem not in known or (kind == "input" and elem == onnx.TensorProto.UNDEFINED):
                raise ModelLoadError(f"{path}: graph {kind} '{v.name}' has element type {elem}, which is not an ONNX "
                                     f"tensor type{' (undefined)' if elem == 0 else ''}. {HINT}")


def opset_of(model: onnx.ModelProto) -> int:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return 0
