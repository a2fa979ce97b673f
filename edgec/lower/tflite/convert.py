"""ONNX model -> TFLite bytes: IR, layout pass, one registry lowering per node, activation fusion, writer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import onnx

from edgec.graph.unroll import unroll_control_flow, with_reasons
from edgec.lower.tflite import ops  # noqa: F401  (registers every op family)
from edgec.lower.tflite.builder import TFL_TYPE, ModelBuilder
from edgec.lower.tflite.control_flow import explicit_captures, use_converter
from edgec.lower.tflite.fuse import fold_conv_affine
from edgec.lower.tflite.ir import Graph, Node, from_onnx, narrow_float64, perm_shape, widen_unsigned
from edgec.lower.tflite.layout import to_nhwc
from edgec.lower.tflite.qdq import finish_qdq, fold_qdq, quant_ops, weight_codec
from edgec.lower.tflite.qdq import int8_io as quantized_io
from edgec.lower.tflite.registry import INT8, REFUSED, REGISTRY, LowerCtx, Unsupported
from edgec.lower.tflite.versions import set_versions
from edgec.lower.tflite.writer import serialize
from edgec.runtimes.metadata import IO_LAYOUT_KEY, IO_QUANT_KEY




@dataclass
class Converted:
    data: bytes | None
    problems: list[tuple[str, str, str]]
    stats: dict = field(default_factory=dict)
    op_histogram: dict = field(default_factory=dict)


@dataclass
class Lowered:
    """What _lower made: the builder ready to serialize, or (dry run, or problems) no builder."""

    problems: list[tuple[str, str, str]]
    stats: dict
    builder: ModelBuilder | None = None
    signature: tuple | None = None  # ([(ONNX input name, tensor)], [(ONNX output name, tensor)])
    metadata: dict | None = None
    op_histogram: dict = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.builder is not None and not self.problems


def convert(model: onnx.ModelProto, fp16: bool = False, write: bool = True, external: bool | None = None,
            keep_float: set[str] = frozenset(), nhwc_io: bool = False, int8_io: bool = False,
            dynamic_batch: bool = False, dynamic_range: bool = False) -> Converted:
    """Lower `model`; with fp16, float weights are stored as float16 except those of nodes whose name or op
    type is in `keep_float`. `external` forces (True) or forbids (False) weights after the flatbuffer.
    nhwc_io: 4-D float inputs/outputs are channels-last (stats["nhwc_io"] names them); default: ONNX layout.
    dynamic_batch: axis 0 of the inputs is -1 in the shape signature (dynbatch.py); the model is lowered at
    two probe batches and every tensor/constant/option that differs is made batch-polymorphic."""
    model, refused = unroll_control_flow(model)  # small Scan / constant Loop: copies of the body (graph/unroll.py)
    opts = dict(fp16=fp16, write=write, keep_float=keep_float, nhwc_io=nhwc_io, int8_io=int8_io,
                dynamic_range=dynamic_range)
    dynamic = dynamic_batch and write
    # dynamic: a dry run at the build batch first (its problems are the model's, not the batch's)
    state = _lower(model, share_consts=True, **{**opts, "write": write and not dynamic})
    if not state.done and (state.problems or not dynamic):
        return Converted(None, with_reasons(state.problems, refused), state.stats)
    if not dynamic:
        b, sig, meta, stats, hist = state.builder, state.signature, state.metadata, state.stats, state.op_histogram
    else:
        # the file is lowered at a probe batch > 1 (no size-1 batch axis steers a lowering choice), compared
        # with a second probe batch, then given the build batch's shapes (dynbatch.py)
        from edgec.lower.tflite.dynbatch import make_batch_polymorphic, probe_batches, probe_model

        lowered = []
        for p in probe_batches(model):
            probe = probe_model(model, p)
            if isinstance(probe, list):
                return Converted(None, probe, state.stats)
            probe, batch, _ = probe
            probed = _lower(probe, share_consts=False, **opts)
            if not probed.done:
                return Converted(None, [(op, name, f"dynamic batch: at batch {p}: {why}")
                                        for op, name, why in probed.problems], state.stats)
            lowered.append((p, probed))
        (p1, first), (p2, second) = lowered
        b, sig, meta, stats, other = first.builder, first.signature, first.metadata, first.stats, second.builder
        if b.subgraphs:  # the batch-polymorphic rewrite compares the main graphs' ops only
            return Converted(None, [(op.node[0], op.node[1], "dynamic batch: IF/WHILE subgraphs are not made "
                                     "batch-polymorphic; build with a fixed batch") for op in b.ops
                                    if op.code in ("IF", "WHILE")][:1], stats)
        problems = make_batch_polymorphic(b, other, p1, p2, batch)
        if problems:
            return Converted(None, problems, stats)
        stats["dynamic_batch"] = {"batch": batch, "probes": [p1, p2]}
        hist = {}
        for op in b.ops:  # it may have gained ops (a runtime TRANSPOSE_CONV output shape)
            hist[op.code] = hist.get(op.code, 0) + 1
        hist = dict(sorted(hist.items()))
    return Converted(serialize(b, sig, external=external, metadata=meta), [], stats, hist)


def _lower(model: onnx.ModelProto, fp16: bool, write: bool, keep_float, nhwc_io: bool, int8_io: bool,
           share_consts: bool, dynamic_range: bool = False):
    """The lowered builder with its signature, metadata, stats and op histogram; or the problems (no builder)."""
    odd = [(vi.name, vi.type.WhichOneof("value")) for vi in model.graph.input
           if vi.type.WhichOneof("value") not in ("tensor_type", None)]
    if odd:  # optional / sequence / map values: a problem to report, not a crash of the IR builder
        return Lowered([("Input", name, f"an {kind.replace('_type', '')}-typed value: TFLite takes tensors only")
                        for name, kind in odd], {})
    g = from_onnx(model)
    explicit_captures(g)  # If/Loop subgraphs read outer tensors by name: make those reads inputs (control_flow.py)
    signature = {n: n for n in g.inputs + g.outputs}  # ONNX name -> IR tensor carrying it
    float64 = narrow_float64(g)
    signature.update(float64)
    signature.update(widen_unsigned(g))
    io_nhwc = _channels_last_io(g, signature) if nhwc_io else []
    folded = fold_conv_affine(g)
    qdq = fold_qdq(g)  # int8: DQ -> op -> Q groups become ops on int8 tensors
    io_problems = quantized_io(g, signature) if int8_io else []
    stats = to_nhwc(g)
    finish_qdq(g)
    stats["int8"] = qdq
    stats["nhwc_io"] = io_nhwc
    stats["folded_into_conv"] = folded
    stats["float64_io"] = sorted(float64)
    b = ModelBuilder(fp16_weights=fp16, dry=not write, weight_codec=weight_codec(g), share_consts=share_consts,
                     dynamic_range=dynamic_range)
    tensors: dict[str, int] = {}
    problems = list(qdq.get("problems", [])) + io_problems
    for name in g.inputs:
        if np.dtype(g.dtypes[name]) not in TFL_TYPE:  # an UnsupportedOp, not a ValueError from the builder
            problems.append(("Input", name, f"dtype {np.dtype(g.dtypes[name])} has no TFLite tensor type"))
            continue
        tensors[name] = b.tensor(name, g.shapes[name], g.dtypes[name], g.quant.get(name))
        b.inputs.append(tensors[name])
    if problems:
        return Lowered(problems, stats)
    for node in g.nodes:
        for name in node.inputs:  # after a failed node, stand-ins let later nodes still check themselves
            if name and name not in tensors and name not in g.consts and name in g.shapes and problems:
                tensors[name] = b.tensor(name, g.shapes[name], g.dtypes.get(name, np.float32))
        b.fp16_weights = fp16 and node.op not in keep_float and node.name not in keep_float
        rule = REGISTRY.get(node.op)
        if rule is None:
            problems.append((node.op, node.name, REFUSED.get(node.op, "no TFLite lowering for this op")))
            continue
        first = len(b.ops)
        try:
            ctx = LowerCtx(g, b, tensors, node)
            # an int8 rule's check decided its fold already (qdq.py, before the layout pass)
            why = rule.check(ctx) if rule.check is not None and not node.op.startswith(INT8) else None
            if why:
                raise Unsupported(why)
            rule.fn(ctx)
        except Unsupported as e:
            problems.append((node.op, node.name, str(e)))
        for op in b.ops[first:]:  # which ONNX node each op comes from (dynamic-batch errors name it)
            op.node = (node.op, node.name)
    if problems or not write:
        return Lowered(problems, stats)
    copies: dict[str, int] = {}
    for name in g.outputs:
        if name in g.inputs or name in g.consts:  # its own tensor: a RESHAPE copy of the input / constant
            src = tensors[name] if name in g.inputs else b.const(g.consts[name], f"{name}_value")
            shape = tuple(g.shapes.get(name, g.consts[name].shape if name in g.consts else ()))
            out = b.tensor(f"{name}_out", shape, b.tensors[src].dtype)
            b.op("RESHAPE", [src, b.const(np.array(shape, np.int32), f"{name}_shape")], [out])
            copies[name] = out
        b.outputs.append(copies.get(name, tensors.get(name)))
    if problems:
        return Lowered(problems, stats)
    stats["fused_activations"] = b.fuse_activations()
    stats["maxpool_pads_relaxed"] = b.relax_maxpool_pads()
    set_versions(b)
    hist: dict[str, int] = {}
    for op in b.ops:
        hist[op.code] = hist.get(op.code, 0) + 1
    stats["transpose_ops"] = hist.get("TRANSPOSE", 0)
    stats["quant_ops"] = quant_ops(b)
    onnx_in = [i for i in signature if signature[i] in g.inputs]
    onnx_out = [o for o in signature if signature[o] in g.outputs]
    sig = ([(n, tensors[signature[n]]) for n in onnx_in],
           [(n, copies.get(signature[n], tensors.get(signature[n]))) for n in onnx_out])
    meta = {IO_LAYOUT_KEY: json.dumps({n: "NHWC" for n in io_nhwc}, sort_keys=True).encode()} if io_nhwc else {}
    if int8_io:  # which int8 I/O stand for the ONNX model's float tensors (the runner (de)quantizes only those)
        meta[IO_QUANT_KEY] = json.dumps(sorted(onnx_in + onnx_out)).encode()
    meta = meta or None
    return Lowered([], stats, b, sig, meta, dict(sorted(hist.items())))


use_converter(_lower)  # IF / WHILE subgraphs are lowered by the same converter


def _channels_last_io(g: Graph, signature: dict[str, str]) -> list[str]:
    """Give 4-D float graph inputs/outputs NHWC tensors (a Transpose to/from the ONNX tensor, which the layout
    pass cancels against the model's own); the signature keeps the ONNX names."""
    done = []
    for i, name in enumerate(list(g.inputs)):
        if len(g.shapes[name]) == 4 and g.dtypes[name] == np.float32:
            new = g.fresh(f"{name}_nhwc")
            g.shapes[new], g.dtypes[new] = perm_shape(g.shapes[name], [0, 2, 3, 1]), g.dtypes[name]
            g.nodes.insert(0, Node("Transpose", f"{name}/from_nhwc", [new], [name], {"perm": [0, 3, 1, 2]}))
            g.inputs[i], signature[name] = new, new
            done.append(name)
    for i, name in enumerate(list(g.outputs)):
        if len(g.shapes.get(name, ())) == 4 and g.dtypes.get(name) == np.float32 and name not in g.inputs:
            new = g.fresh(f"{name}_nhwc")
            g.shapes[new], g.dtypes[new] = perm_shape(g.shapes[name], [0, 2, 3, 1]), g.dtypes[name]
            g.nodes.append(Node("Transpose", f"{name}/to_nhwc", [name], [new], {"perm": [0, 2, 3, 1]}))
            g.outputs[i], signature[name] = new, new
            done.append(name)
    return done
