"""Dynamic lengths on TFLite (edgec.graph.dynamic ranges): shape_signature -1 on every axis that follows a length.

The graph (generalized for every length by edgec.graph.generalize) is lowered at the range's max L and again at a
second length P; lowering is deterministic, so both builders hold the same ops and tensors one-to-one. Whatever
differs depends on the length (as dynbatch.py does for the batch, but on any number of axes per tensor, and an op
may reduce a length axis away, e.g. mean pooling):
- a tensor dim that is k*L in one and k*P in the other gets -1 in its shape_signature (the file's default stays L);
- a RESHAPE target with the length in one entry gets -1 there;
- any other differing constant or option is refused as UnsupportedOp naming the ONNX node and the input: such a
  model would run at another length and be wrong. Fix the length with --input-shape instead.
LiteRT recomputes every output shape at allocate_tensors(), so resize_tensor_input gives the lowering at any length.
"""

from __future__ import annotations

import numpy as np
import onnx

from edgec.lower.tflite.builder import ModelBuilder
from edgec.lower.tflite.polymorphic import (Problem, const, dedupe, fields, mark_scaling_tensors,
                                            reshape_to_minus_one, same_ops, splice_before)
HINT = "; fix the length with --input-shape (one size per build), or build for ort-mobile, which keeps it dynamic"


def convert_lengths(model: onnx.ModelProto, ranges: dict, **opts):
    """convert.convert for a graph with ranged input axes: a Converted whose file has -1 on every length axis."""
    from edgec.lower.tflite.convert import Converted, _lower
    from edgec.lower.tflite.writer import serialize

    main, problems = convert_dynamic(model, ranges, _lower, **opts)
    if problems or not main.done:
        return Converted(None, problems or main.problems, main.stats)
    hist: dict[str, int] = {}
    for op in main.builder.ops:
        hist[op.code] = hist.get(op.code, 0) + 1
    return Converted(serialize(main.builder, main.signature, metadata=main.metadata), [], main.stats,
                     dict(sorted(hist.items())))


def convert_dynamic(model: onnx.ModelProto, ranges: dict, lower, **opts):
    """(lowered at the max, problems): `model` lowered at its (max) shapes and made length-polymorphic against a
    lowering at a second length. `lower` is convert._lower."""
    from edgec.graph.dynamic import alternate
    from edgec.graph.generalize import at_shapes

    lengths = {dim for ax in ranges.values() for (_, _, dim) in ax.values()}
    if len(lengths) > 1:  # the comparison below tells one length's axes from fixed ones, not two lengths apart
        name = sorted(ranges)[0]
        return _Failed(), [("Input", name, f"dynamic length: {len(lengths)} independent lengths "
                                           f"({', '.join(sorted(lengths))}); TFLite builds take one{HINT}")]
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input}
    alt = alternate(shapes, {n: {a: (lo, hi) for a, (lo, hi, _) in ax.items()} for n, ax in ranges.items()})
    main = lower(model, share_consts=False, **opts)
    if not main.done or alt is None:
        return main, main.problems
    probe = lower(at_shapes(model, alt), share_consts=False, **opts)
    if not probe.done:
        return main, [(op, name, f"dynamic length: at {alt}: {why}") for op, name, why in probe.problems]
    first = sorted(ranges)[0]
    axis = sorted(ranges[first])[0]
    big, small = shapes[first][axis], alt[first][axis]
    problems = make_length_polymorphic(main.builder, probe.builder, big, small)
    main.stats["dynamic_lengths"] = {"lengths": [big, small],
                                     "axes": {n: sorted(ax) for n, ax in sorted(ranges.items())}}
    return main, problems


def make_length_polymorphic(main: ModelBuilder, probe: ModelBuilder, big: int, small: int) -> list[Problem]:
    if not same_ops(main, probe):
        op = next((a for a, b in zip(main.ops, probe.ops) if a.code != b.code), main.ops[-1] if main.ops else None)
        return [(*(op.node if op else ("-", "-")), f"dynamic length: lowered differently at lengths {big} and "
                                                  f"{small} (a shape-dependent lowering choice)")]
    varying, problems = mark_scaling_tensors(
        main, probe, big, small, one_axis=False,
        describe=lambda name, x, y: f"dynamic length: tensor '{name}' is {x} at length {big} but {y} at {small} "
                                    f"(not proportional to the length){HINT}")
    before: dict[int, list] = {}  # id(op) -> ops computing its new input at run time
    for a, b in zip(list(main.ops), list(probe.ops)):
        why = _fix_op(main, probe, a, b, varying, big, small, before)
        if why:
            problems.insert(0, (*a.node, f"dynamic length: {a.code}: {why}{HINT}"))  # the cause before its shapes
    splice_before(main, before)
    return dedupe(problems)


def _fix_op(main: ModelBuilder, probe: ModelBuilder, a, b, varying: set[int], big: int, small: int,
            before: dict[int, list]) -> str | None:
    bad = [j for j, i in enumerate(a.inputs) if i in varying]
    opts_differ = fields(a.options) != fields(b.options)
    if not bad and not opts_differ:
        return None
    if a.code == "RESHAPE" and bad == [1]:
        return reshape_to_minus_one(main, probe, a, b, big, small, "length")
    if a.code == "BROADCAST_TO" and bad == [1] and not opts_differ:
        vec, alt = const(main, a.inputs[1]), const(probe, b.inputs[1])
        x, y = main.tensors[a.inputs[0]].shape, probe.tensors[b.inputs[0]].shape
        at = [k for k in range(vec.size) if vec.shape == alt.shape and vec[k] != alt[k]]
        if len(x) != vec.size or not all(x[k] == vec[k] and y[k] == alt[k] for k in at):
            return f"its target shape {vec.tolist()} holds the length on an axis its input does not have"
        # max(shape of the input, target with 1 on those axes): the input's own length there, at run time
        ones = vec.astype(np.int32).copy()
        ones[at] = 1
        name = main.tensors[a.inputs[1]].name
        dims = main.tensor(f"{name}_input_shape", (vec.size,), np.int32)
        target = main.tensor(f"{name}_dyn", (vec.size,), np.int32)
        from ai_edge_litert import schema_py_generated as S

        opts = S.ShapeOptionsT()
        opts.outType = S.TensorType.INT32
        ops = [main.op("SHAPE", [a.inputs[0]], [dims], opts),
               main.op("MAXIMUM", [dims, main._raw_const(ones, f"{name}_ones")], [target])]
        del main.ops[-len(ops):]  # placed before the BROADCAST_TO by splice_before
        for op in ops:
            op.node = a.node
        before[id(a)] = ops
        a.inputs[1] = target
        return None
    if bad:
        names = ", ".join(f"'{main.tensors[a.inputs[j]].name}'" for j in bad)
        return f"constant input(s) {names} depend on the length (baked at build time)"
    return "its options depend on the length"


class _Failed:
    done, problems, stats = False, [], {}
