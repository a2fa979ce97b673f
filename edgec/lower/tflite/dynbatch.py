"""Batch-polymorphic .tflite (profile `tflite.dynamic_batch`): shape_signature -1 on the batch axis.

The model is lowered at two probe batches P1 = 3 and P2 = 5 (ONNX copies whose batched inputs have axis 0 = P,
shapes re-inferred; > 1 so that no size-1 batch axis steers a lowering choice). Lowering is deterministic, so
both builders hold the same ops and tensors one-to-one; whatever differs between them depends on the batch.
The P1 lowering is written, with the build batch B's shapes as the file's defaults:
- a tensor dim that is P1 (or k*P1: batch merged with another axis) in one and P2 (k*P2) in the other gets -1
  in its shape_signature;
- a RESHAPE shape vector entry P1 -> P2 becomes -1; a STRIDED_SLICE end / SLICE size over such a whole axis
  becomes an end_mask bit / -1; TRANSPOSE_CONV's output_shape takes its batch from its input at run time;
- any other differing constant or option, a tensor with two such axes or another change, or an op
  whose input follows the batch but whose output does not, is refused as UnsupportedOp naming the ONNX node:
  such a model would run at N > 1 and be silently wrong.
TFLite kernels recompute every output shape from their inputs at allocate_tensors(), so with the constants and
options equal at P1 and P2, resize_tensor_input(i, [N, ...]) gives the probe lowering's semantics at N.
Not detected: a value the simplifier folded from the batch size at B (e.g. Range(Shape(x)[0])) that changes
no shape; Reshape targets are the one such case handled (probe_model).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from edgec.graph.view import constants
from edgec.lower.tflite.builder import ModelBuilder
from edgec.lower.tflite.polymorphic import (const, dedupe, fields, mark_scaling_tensors, reshape_to_minus_one,
                                            same_ops, splice_before)

PROBE_BATCHES = (3, 5, 7)  # > 1 (a size-1 batch axis changes lowering choices) and pairwise coprime
Problem = tuple[str, str, str]


def probe_batches(model: onnx.ModelProto) -> list[int]:
    """The two probe batches: not the build batch (axis 0 of the first input)."""
    first = next((vi for vi in model.graph.input if vi.name not in {t.name for t in model.graph.initializer}), None)
    dims = first.type.tensor_type.shape.dim if first is not None else []
    batch = dims[0].dim_value if dims else 0
    return [p for p in PROBE_BATCHES if p != batch][:2]


def probe_model(model: onnx.ModelProto, probe: int) -> tuple[onnx.ModelProto, int, int] | list[Problem]:
    """(copy of `model` at batch `probe`, build batch B, probe batch P), or problems.

    Batched inputs: those whose axis 0 equals the first input's (B). A Reshape whose constant target starts
    with B is taken to keep the batch on axis 0 when, at the probe batch, its data starts with P (torch's
    x.view(x.size(0), -1), folded to a constant by the simplifier) or its data has P/B times the target's
    elements (batch and sequence merged for a Gemm, then split again): that entry becomes P."""
    g = onnx.shape_inference.infer_shapes(_without_weights(model)).graph
    real = {vi.name for vi in model.graph.input} - {t.name for t in model.graph.initializer}
    graph_inputs = [vi for vi in g.input if vi.name in real]
    dims = {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
            for vi in graph_inputs}
    first = next((d for d in dims.values() if d and d[0]), None)
    if first is None:
        return [("Input", graph_inputs[0].name if graph_inputs else "-", "dynamic batch: no input has a batch axis 0")]
    batch, p = first[0], probe
    batched = [n for n, d in dims.items() if d and d[0] == batch]

    out = onnx.ModelProto()
    out.CopyFrom(model)
    og = out.graph
    for vi in og.input:
        if vi.name in batched:
            vi.type.tensor_type.shape.dim[0].dim_value = p
    del og.value_info[:]
    for vi in og.output:  # re-inferred at the probe batch
        vi.type.tensor_type.ClearField("shape")
    reshapes = [n for n in og.node if n.op_type == "Reshape" and len(n.input) > 1]
    for _ in range(len(reshapes)):  # one Reshape target per round, in graph order (later shapes depend on it)
        if not _fix_first_reshape(out, reshapes, batch, p):
            break
    return out, batch, p


def _fix_first_reshape(model: onnx.ModelProto, reshapes: list, batch: int, p: int) -> bool:
    """Re-infer shapes; give the first Reshape whose constant target bakes B the probe batch. False: none left."""
    g = onnx.shape_inference.infer_shapes(_without_weights(model), strict_mode=False).graph
    shapes = {vi.name: [d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim]
              for vi in list(g.input) + list(g.value_info)}
    consts = constants(model)
    for k, n in enumerate(reshapes):
        data, target = shapes.get(n.input[0]), consts.get(n.input[1])
        if not data or None in data or target is None:
            continue
        if target.ndim != 1 or not target.size or int(target[0]) != batch:
            continue
        resolved = [data[i] if int(v) == 0 and i < len(data) else int(v) for i, v in enumerate(target)]
        count = int(np.prod(data))
        if -1 in resolved:
            keeps = data[0] == p  # x.view(x.size(0), -1)
        else:
            known = int(np.prod(resolved))
            keeps = known != count and known * p == count * batch
        if keeps:
            fixed = target.copy()
            fixed[0] = p
            name = f"{n.input[1]}__edgec_batch{p}_{k}"
            model.graph.initializer.append(numpy_helper.from_array(fixed, name))
            n.input[1] = name
            return True
    return False


def _without_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """`model` with its large initializers as typed graph inputs: shape inference reads only their shapes,
    and copying 100 MB of weights per inference round would dominate the build."""
    light = onnx.ModelProto()
    light.CopyFrom(onnx.ModelProto(ir_version=model.ir_version, opset_import=model.opset_import,
                                   graph=onnx.GraphProto(name=model.graph.name)))
    g = light.graph
    g.node.extend(model.graph.node)
    g.input.extend(model.graph.input)
    g.output.extend(model.graph.output)
    g.value_info.extend(model.graph.value_info)
    listed = {vi.name for vi in model.graph.input}
    for t in model.graph.initializer:
        if int(np.prod(t.dims)) <= 64:
            g.initializer.append(t)
        elif t.name not in listed:
            g.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return light


def make_batch_polymorphic(main: ModelBuilder, probe: ModelBuilder, batch: int, p: int, build: int) -> list[Problem]:
    """`main` and `probe` are the lowerings at batch `batch` and `p`: set shape signatures, rewrite the
    batch-baked RESHAPE/STRIDED_SLICE constants of `main` in place, and give its tensors their shapes at the
    build batch `build` (the file's default, which the build validates)."""
    if not same_ops(main, probe):
        return [_first_mismatch(main, probe, batch, p)]
    varying_consts, problems = mark_scaling_tensors(
        main, probe, batch, p, one_axis=True,
        describe=lambda name, x, y: f"dynamic batch: tensor '{name}' is {x} at batch {batch} but {y} at batch {p} "
                                    f"(not one axis proportional to the batch)")
    before: dict[int, list] = {}  # id(op) -> ops to run before it (a runtime TRANSPOSE_CONV output shape)
    for a, b in zip(main.ops, probe.ops):
        why = _fix_op(main, probe, a, b, varying_consts, batch, p, before)
        if why is None and not any(main.tensors[o].signature for o in a.outputs) and any(
                main.tensors[i].signature for i in a.inputs if i >= 0):
            why = "its input follows the batch size but its output does not (it would drop or mix batch items)"
        if why:
            problems.append((*a.node, f"dynamic batch: {a.code}: {why}"))
    splice_before(main, before)
    for t in main.tensors:  # k * batch -> k * build on the -1 axis
        if t.signature is not None:
            t.shape = tuple(d * build // batch if s == -1 else d for d, s in zip(t.shape, t.signature))
    return dedupe(problems)


def _fix_op(main: ModelBuilder, probe: ModelBuilder, a, b, varying: set[int], batch: int, p: int,
            before: dict[int, list]) -> str | None:
    """None when op `a` is batch-polymorphic (after rewriting it), else why not."""
    bad = [j for j, i in enumerate(a.inputs) if i in varying]
    opts_differ = fields(a.options) != fields(b.options)
    if not bad and not opts_differ:
        return None
    if a.code == "RESHAPE" and bad == [1]:
        return reshape_to_minus_one(main, probe, a, b, batch, p, "batch size")
    if a.code == "STRIDED_SLICE" and bad == [2] and not opts_differ:
        end, alt = const(main, a.inputs[2]), const(probe, b.inputs[2])
        begin, strides = const(main, a.inputs[1]), const(main, a.inputs[3])
        dims = main.tensors[a.inputs[0]].shape
        at = _batch_entries(end, alt, batch, p)
        if not at or any(begin[k] != 0 or strides[k] != 1 or end[k] != dims[k] for k in at):
            return f"its end {end.tolist()} holds the batch size other than as a whole axis"
        for k in at:  # the whole axis, whatever its size at run time
            a.options.endMask |= 1 << k
        return None
    if a.code == "SLICE" and bad == [2] and not opts_differ:
        size, alt, begin = const(main, a.inputs[2]), const(probe, b.inputs[2]), const(main, a.inputs[1])
        dims = main.tensors[a.inputs[0]].shape
        at = _batch_entries(size, alt, batch, p)
        if not at or any(begin[k] != 0 or size[k] != dims[k] for k in at):
            return f"its size {size.tolist()} holds the batch size other than as a whole axis"
        size = size.copy()
        size[at] = -1  # to the end of the axis
        a.inputs[2] = main._raw_const(size.astype(np.int32), f"{main.tensors[a.inputs[2]].name}_dyn")
        return None
    if a.code == "TRANSPOSE_CONV" and bad == [0] and not opts_differ:
        shape, alt = const(main, a.inputs[0]), const(probe, b.inputs[0])
        if _batch_entries(shape, alt, batch, p) != [0] or shape[0] != main.tensors[a.inputs[2]].shape[0]:
            return f"its output_shape {shape.tolist()} holds the batch size other than on axis 0"
        before[id(a)] = _runtime_output_shape(main, a, shape)
        return None
    if bad:
        names = ", ".join(f"'{main.tensors[a.inputs[j]].name}'" for j in bad)
        return f"constant input(s) {names} depend on the batch size"
    return "its options depend on the batch size"


def _runtime_output_shape(main: ModelBuilder, a, shape: np.ndarray) -> list:
    """Ops computing TRANSPOSE_CONV's output_shape at run time: [batch of its input, H, W, C] (LiteRT then
    sizes the output at each invoke; XNNPACK leaves such a TRANSPOSE_CONV to LiteRT's own kernel)."""
    from ai_edge_litert import schema_py_generated as S

    name = main.tensors[a.inputs[0]].name
    x = a.inputs[2]
    rank = len(main.tensors[x].shape)
    dims = main.tensor(f"{name}_input_shape", (rank,), np.int32)
    n = main.tensor(f"{name}_batch", (1,), np.int32)
    out = main.tensor(f"{name}_dyn", (len(shape),), np.int32)
    shape_opts = S.ShapeOptionsT()
    shape_opts.outType = S.TensorType.INT32
    concat_opts = S.ConcatenationOptionsT()
    concat_opts.axis = 0
    ops = [main.op("SHAPE", [x], [dims], shape_opts),
           main.op("STRIDED_SLICE", [dims, main._raw_const(np.array([0], np.int32), f"{name}_b0"),
                                     main._raw_const(np.array([1], np.int32), f"{name}_b1"),
                                     main._raw_const(np.array([1], np.int32), f"{name}_s1")], [n],
                   S.StridedSliceOptionsT()),
           main.op("CONCATENATION", [n, main._raw_const(shape[1:].astype(np.int32), f"{name}_rest")], [out],
                   concat_opts)]
    del main.ops[-len(ops):]  # placed before the TRANSPOSE_CONV by the caller
    for op in ops:
        op.node = a.node
    a.inputs[0] = out
    return ops


def _batch_entries(x: np.ndarray, y: np.ndarray, batch: int, p: int) -> list[int]:
    """Positions where x and y differ as batch : probe batch (a batch-sized axis, or one merged with the batch);
    [] when they differ any other way."""
    if x.shape != y.shape or x.ndim != 1:
        return []
    diff = [k for k in range(x.size) if x[k] != y[k]]
    return diff if all(int(x[k]) * p == int(y[k]) * batch for k in diff) else []


def _first_mismatch(main: ModelBuilder, probe: ModelBuilder, batch: int, p: int) -> Problem:
    for a, b in zip(main.ops, probe.ops):
        if (a.code, a.inputs, a.outputs) != (b.code, b.inputs, b.outputs):
            return (*a.node, f"dynamic batch: lowered as {a.code} at batch {batch} but {b.code} at batch {p} "
                             f"(a shape-dependent lowering choice)")
    op = main.ops[min(len(main.ops), len(probe.ops)) - 1] if main.ops else None
    return (*(op.node if op else ("-", "-")), f"dynamic batch: the lowering at batch {p} has a different graph")
