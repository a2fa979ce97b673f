"""Byte-identical ORT-format models: rewrite what ONNX Runtime serialises from hash maps in a sorted order.

ONNX Runtime writes the session's KernelTypeStrResolver from (absl) hash maps whose iteration order changes from
one InferenceSession to the next, so two conversions of the same model differ in a few dozen bytes.

A flatbuffer is built back to front. ORT writes the version string and the whole Model subtree first (the back of
the file), then the resolver and the root InferenceSession table (the front). We keep the Model region byte for
byte, at the same distance from the end of the buffer and the same residue mod 64 from its start, so every
initializer keeps the exact alignment ORT gave it, and rebuild only the front: the root table, the version string
and the resolver, sorted by key. The result is idempotent and a few dozen bytes longer (vtables not shared).
"""

from __future__ import annotations

import flatbuffers
import onnxruntime.tools.ort_format_model  # noqa: F401  (puts ort_flatbuffers_py on sys.path for the fbs classes)
from flatbuffers import encode, number_types as N
from onnxruntime.tools.ort_format_model.ort_flatbuffers_py.fbs import (
    ArgTypeAndIndex as ArgFbs,
    InferenceSession as SessionFbs,
    KernelTypeStrArgsEntry as TypeStrFbs,
    KernelTypeStrResolver as ResolverFbs,
    OpIdKernelTypeStrArgsEntry as OpFbs,
)

from edgec.errors import LoweringError

FILE_ID = b"ORTM"
ALIGN_KEPT = 64  # the kept region keeps its address mod this (covers any alignment ORT or a loader may want)
# fields of each table we rebuild, in this onnxruntime's schema (a newer writer's extra field must not be dropped)
SESSION_FIELDS = 4  # ort_version, model, session_state (deprecated, never written now), kernel_type_str_resolver
RESOLVER_FIELDS, OP_FIELDS, TYPE_STR_FIELDS, ARG_FIELDS = 1, 2, 2, 2

# (op_id, [(kernel_type_str, [(arg_type, index), ...]), ...])
Resolver = list[tuple[bytes, list[tuple[bytes, list[tuple[int, int]]]]]]


def canonicalize_ort(data: bytes) -> bytes:
    """The same ORT-format model with the kernel type string resolver in sorted order: same input, same bytes."""
    if len(data) < 8 or data[4:8] != FILE_ID:
        raise LoweringError("Not an ORT format model (the flatbuffer file identifier 'ORTM' is missing).")
    session = SessionFbs.InferenceSession.GetRootAs(data, 0)
    _check_fields(session._tab, SESSION_FIELDS, "InferenceSession")
    if session._tab.Offset(8):
        raise LoweringError("This ORT format model has a (deprecated) session_state; edgec cannot canonicalise it.")
    model = _field_pos(session._tab, 6)
    if model is None:
        raise LoweringError("This ORT format model has no Model table.")
    keep_from = min(model, _vtable_pos(session._tab.Bytes, model))  # the last bytes ORT wrote for the Model
    resolver, highest = _read_resolver(session.KernelTypeStrResolver())
    if highest >= keep_from:  # some of it lies in the region we keep: its order would stay in the bytes
        raise LoweringError(
            "ONNX Runtime laid out this ORT format model differently than edgec expects (the kernel type string "
            "resolver is not written after the Model), so edgec cannot make its bytes deterministic."
        )
    version = _field_pos(session._tab, 4)
    out = _write(data, keep_from, model, version, resolver)
    version_str = _string(data, version) if version is not None else None
    _check_written(out, len(out) - (len(data) - model), version_str, resolver)
    return out


def _read_resolver(resolver: ResolverFbs.KernelTypeStrResolver | None) -> tuple[Resolver | None, int]:
    """Sorted resolver contents, and the highest buffer position of any of its tables and vectors.

    Its strings may lie in the Model region: ORT shares strings, and op ids also appear in runtime optimization
    records. Such shared strings were written with the Model, so they do not carry the resolver's order."""
    if resolver is None:
        return None, -1
    positions = [resolver._tab.Pos]

    def seen(tab, slot):  # a vector's position, remembered for the layout check
        o = tab.Offset(slot)
        if o:
            positions.append(tab.Vector(o) - 4)

    _check_fields(resolver._tab, RESOLVER_FIELDS, "KernelTypeStrResolver")
    seen(resolver._tab, 4)
    ops = []
    for i in range(resolver.OpKernelTypeStrArgsLength()):
        op = resolver.OpKernelTypeStrArgs(i)
        _check_fields(op._tab, OP_FIELDS, "OpIdKernelTypeStrArgsEntry")
        positions.append(op._tab.Pos)
        seen(op._tab, 6)
        type_strs = []
        for j in range(op.KernelTypeStrArgsLength()):
            ts = op.KernelTypeStrArgs(j)
            _check_fields(ts._tab, TYPE_STR_FIELDS, "KernelTypeStrArgsEntry")
            positions.append(ts._tab.Pos)
            seen(ts._tab, 6)
            args = []
            for k in range(ts.ArgsLength()):
                arg = ts.Args(k)
                _check_fields(arg._tab, ARG_FIELDS, "ArgTypeAndIndex")
                positions.append(arg._tab.Pos)
                args.append((arg.ArgType(), arg.Index()))
            type_strs.append((ts.KernelTypeStr() or b"", args))  # args keep ORT's order: a vector, not a map
        ops.append((op.OpId() or b"", sorted(type_strs)))  # these two levels are hash maps in ORT
    ops.sort()
    return ops, max(positions)


def _write(data: bytes, keep_from: int, model: int, version: int | None, resolver: Resolver | None) -> bytes:
    kept = len(data) - keep_from
    # The builder stands in for the kept region with a short zero block of the same length mod 64 that still
    # reaches the Model table: uoffsets are relative, so the one pointer into the kept region (the Model) and
    # every alignment come out as with the real region behind, without copying megabytes of weights twice.
    stand_in = kept % ALIGN_KEPT + ALIGN_KEPT * (1 + (model - keep_from) // ALIGN_KEPT)
    builder = flatbuffers.Builder(0)
    headroom = 2 * keep_from + 1024  # the rebuilt front is about as big as ORT's; the builder grows if not
    builder.Bytes = bytearray(headroom + stand_in)
    builder.head = headroom
    model_off = stand_in - (model - keep_from)  # the Model's distance from the end of the builder's buffer
    # the version string is written again in front: the kept region's copy just stays there unreferenced
    version_off = builder.CreateString(_string(data, version)) if version is not None else None
    resolver_off = _write_resolver(builder, resolver) if resolver is not None else None
    SessionFbs.Start(builder)
    if version_off is not None:
        SessionFbs.AddOrtVersion(builder, version_off)
    SessionFbs.AddModel(builder, model_off)
    if resolver_off is not None:
        SessionFbs.AddKernelTypeStrResolver(builder, resolver_off)
    root = SessionFbs.End(builder)
    # pad so the new file length has ORT's length mod 64: then every kept byte keeps its address mod 64
    builder.Prep(4, ALIGN_KEPT + 8)  # 4-aligned, with room for the padding and the header
    builder.Pad((keep_from + stand_in - (builder.Offset() + 8)) % ALIGN_KEPT)
    builder.minalign = 4  # Finish adds nothing more: the length is already 4-aligned after the 8 header bytes
    builder.Finish(root, file_identifier=FILE_ID)
    front = memoryview(builder.Bytes)[builder.head : len(builder.Bytes) - stand_in]
    assert (len(front) + kept - len(data)) % ALIGN_KEPT == 0
    return b"".join((front, memoryview(data)[keep_from:]))


def _write_resolver(builder: flatbuffers.Builder, resolver: Resolver) -> int:
    op_offs = []
    for op_id, type_strs in resolver:
        ts_offs = []
        for type_str, args in type_strs:
            arg_offs = []
            for arg_type, index in args:
                ArgFbs.Start(builder)
                ArgFbs.AddArgType(builder, arg_type)
                ArgFbs.AddIndex(builder, index)
                arg_offs.append(ArgFbs.End(builder))
            args_vec = _offset_vector(builder, arg_offs)
            name = builder.CreateString(type_str)
            TypeStrFbs.Start(builder)
            TypeStrFbs.AddKernelTypeStr(builder, name)
            TypeStrFbs.AddArgs(builder, args_vec)
            ts_offs.append(TypeStrFbs.End(builder))
        ts_vec = _offset_vector(builder, ts_offs)
        name = builder.CreateString(op_id)
        OpFbs.Start(builder)
        OpFbs.AddOpId(builder, name)
        OpFbs.AddKernelTypeStrArgs(builder, ts_vec)
        op_offs.append(OpFbs.End(builder))
    ops_vec = _offset_vector(builder, op_offs)
    ResolverFbs.Start(builder)
    ResolverFbs.AddOpKernelTypeStrArgs(builder, ops_vec)
    return ResolverFbs.End(builder)


def _offset_vector(builder: flatbuffers.Builder, offsets: list[int]) -> int:
    builder.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        builder.PrependUOffsetTRelative(off)
    return builder.EndVector()


def _check_written(out: bytes, model: int, version: bytes | None, resolver: Resolver | None) -> None:
    """Cheap read-back of what was rebuilt, so a layout slip fails the build instead of shipping a broken file."""
    session = SessionFbs.InferenceSession.GetRootAs(out, 0)
    written = session.KernelTypeStrResolver()
    if (
        out[4:8] != FILE_ID
        or _field_pos(session._tab, 6) != model
        or session.OrtVersion() != version
        or (written is None) != (resolver is None)
        or (written is not None and written.OpKernelTypeStrArgsLength() != len(resolver))
    ):
        raise LoweringError("Internal error: the canonical ORT format model does not read back as written.")


def _field_pos(tab, slot: int) -> int | None:
    """Position of the table/string a uoffset field points to (None when absent)."""
    o = tab.Offset(slot)
    return tab.Indirect(tab.Pos + o) if o else None


def _vtable_pos(buf, table_pos: int) -> int:
    return table_pos - encode.Get(N.SOffsetTFlags.packer_type, buf, table_pos)


def _check_fields(tab, known: int, name: str) -> None:
    """Refuse tables with fields this schema does not know: rebuilding them would drop data silently."""
    vt = _vtable_pos(tab.Bytes, tab.Pos)
    n = (encode.Get(N.VOffsetTFlags.packer_type, tab.Bytes, vt) - 4) // 2
    if any(tab.Offset(4 + 2 * i) for i in range(known, n)):
        raise LoweringError(
            f"This ORT format model's {name} has fields the installed onnxruntime's schema does not know; "
            "edgec cannot canonicalise it."
        )


def _string(buf: bytes, pos: int) -> bytes:
    n = encode.Get(N.UOffsetTFlags.packer_type, buf, pos)
    return bytes(buf[pos + 4 : pos + 4 + n])
