"""Flexible input shapes (dynamic lengths, edgec.graph.dynamic): a ranged axis is ct.RangeDim(min, max, default
max) in the model's input features; the program itself carries a MIL symbol there (build._flexible)."""

from __future__ import annotations

import numpy as np


def flexible_inputs(ct, ranges: dict, name_map, in_shapes: dict, images: set[str]) -> list:
    """ct.TensorType per ranged (non-image) input, for ct.convert's `inputs`."""
    out = []
    for onnx_name, axes in sorted(ranges.items()):
        if onnx_name in images or onnx_name not in name_map.inputs:
            continue
        dims = [ct.RangeDim(lower_bound=lo, upper_bound=hi, default=hi) if a in axes else d
                for a, d in enumerate(in_shapes[onnx_name]) for lo, hi, dim in [axes.get(a, (0, 0, ""))]]
        out.append(ct.TensorType(name=name_map.inputs[onnx_name], shape=ct.Shape(dims)))
    return out


def dynamic_note(ranges: dict) -> str | None:
    if not ranges:
        return None
    axes = ", ".join(f"'{n}' axis {a} RangeDim({lo}, {hi}, default {hi})" for n, ax in sorted(ranges.items())
                     for a, (lo, hi, _) in sorted(ax.items()))
    return f"flexible input shapes: {axes}; the program's shapes are symbolic on those axes"


def flexible_program(model, build, target_name: str):
    """(program, name_map) whose ranged input axes are MIL symbols, every op shape-agnostic along them.

    Our lowerings read static ONNX shapes, so a parameter may bake the length (a reshape target resolved from -1).
    The program is built three times alike: static at the max, static at a second length, symbolic. Every const
    that differs between the two static builds is length-dependent: a reshape target with the length in one
    entry gets -1 there in the symbolic build; anything else is refused naming the op. Then the symbolic
    program's types are inferred again, op by op."""
    import numpy as np

    from edgec.errors import UnsupportedOp
    from edgec.graph.dynamic import alternate, model_ranges
    from edgec.graph.generalize import at_shapes

    ranges = model_ranges(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.input}
    alt = alternate(shapes, {n: {a: (lo, hi) for a, (lo, hi, _) in ax.items()} for n, ax in ranges.items()})
    p_max, _ = build(model, False)
    p_alt, _ = build(at_shapes(model, alt), False)
    program, name_map = build(model, True)
    ops = [list(p.functions["main"].operations) for p in (p_max, p_alt, program)]
    if len({len(o) for o in ops}) != 1 or any(len({o.op_type for o in trio}) != 1 for trio in zip(*ops)):
        first = next((a for a, b in zip(ops[0], ops[1]) if a.op_type != b.op_type), ops[0][-1])
        raise UnsupportedOp(target_name, [(first.op_type, first.name, "dynamic length: lowered as different MIL "
                                           "programs at two lengths (a shape-dependent lowering choice)")])
    problems, swaps = [], []
    for a, b, c in zip(*ops):
        if a.op_type != "const":
            continue
        va, vb = np.asarray(a.outputs[0].val), np.asarray(b.outputs[0].val)
        if va.shape == vb.shape and np.array_equal(va, vb):
            continue
        users = c.outputs[0].child_ops
        if not users:  # dead (the converter's passes drop it)
            continue
        diff = [k for k in range(va.size) if va.shape == vb.shape and va.ndim == 1 and va[k] != vb[k]]
        if users and all(u.op_type == "reshape" and u.shape is c.outputs[0] for u in users) and len(diff) == 1 \
                and -1 not in va.tolist():
            value = va.copy()
            value[diff[0]] = -1
            swaps.append((c, users, value))
            continue
        for u in users:
            problems.append((u.op_type, u.name, f"dynamic length: its parameter '{c.name}' is {va.tolist()[:8]} at "
                             f"one length and {vb.tolist()[:8]} at another (baked by the lowering); fix the "
                             f"length with --input-shape"))
    if problems:
        raise UnsupportedOp(target_name, problems)
    _swap_consts(program, swaps)
    return program, name_map


def _swap_consts(program, swaps) -> None:
    from coremltools.converters.mil.mil import Builder as mb

    func = program.functions["main"]
    for const, users, value in swaps:
        block = const.enclosing_block
        with block:
            new = mb.const(val=value.astype(np.int32) if value.dtype.kind in "iu" else value, before_op=users[0],
                           name=f"{const.name}_dyn")
        block.replace_uses_of_var_after_op(anchor_op=new.op, old_var=const.outputs[0], new_var=new,
                                           no_check_var_types=True)
    for op in list(func.operations):  # the types, symbolic now where they follow the length
        op.type_value_inference(overwrite_output=True)
