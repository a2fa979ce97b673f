"""Why a target refuses a model, in root causes: the refused nodes none of whose inputs come from another refused
node, then how many more depend on them (a refused If cascades into "no static shape" / "not produced by any
lowered node" on everything after it). A root that only exists because of a run-time value (an If, Shape/Equal
chain, Loop) points to the small input that would fold it with --input-value."""

from __future__ import annotations

import onnx
from onnx import helper

from edgec.graph.shapes import dims_of, real_inputs

# ops a fixed input value can fold away (control flow, and the comparisons/shape arithmetic that feed it)
FOLDABLE = {"If", "Loop", "Scan", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or",
            "Where", "Shape", "ConstantOfShape", "Range", "Cast", "Size"}
SMALL = 16  # an input with at most this many elements can be given on the command line


def node_inputs(node: onnx.NodeProto) -> list[str]:
    """Direct inputs plus the outer-scope names its subgraphs read (an If's branches use tensors by name)."""
    names = [i for i in node.input if i]
    for attr in node.attribute:
        for g in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
            local = {i.name for i in g.input} | {t.name for t in g.initializer}
            for n in g.node:
                local.update(n.output)
            for n in g.node:
                names += [i for i in node_inputs(n) if i not in local]
    return names


def explain(model: onnx.ModelProto, problems: list[tuple[str, str, str]]) -> dict:
    """{"roots": [(op, name, why)], "dependents": int, "hints": [str]} for UnsupportedOp."""
    nodes = list(model.graph.node)
    by_name = {(n.name or f"{n.op_type}_{i}"): n for i, n in enumerate(nodes)}
    producer = {o: n for n in nodes for o in n.output if o}
    refused = {name for _, name, _ in problems}
    memo: dict[str, bool] = {}

    def downstream_of_refused(node: onnx.NodeProto, seen: set) -> bool:
        """Does any input of `node` come (transitively) from a refused node?"""
        for name in node_inputs(node):
            src = producer.get(name)
            if src is None or id(src) in seen:
                continue
            seen.add(id(src))
            key = src.name or src.output[0]
            if key in memo:
                hit = memo[key]
            else:
                hit = (src.name in refused) or downstream_of_refused(src, seen)
                memo[key] = hit
            if hit:
                return True
        return False

    roots, dependents = [], 0
    for op, name, why in problems:
        node = by_name.get(name)
        if node is not None and downstream_of_refused(node, set()):
            dependents += 1
        else:
            roots.append((op, name, why))
    if not roots:  # a cycle or unnamed nodes: better every problem than none
        roots, dependents = list(problems), 0
    return {"roots": roots, "dependents": dependents, "hints": _value_hints(model, roots, by_name, producer)}


def _value_hints(model, roots, by_name, producer) -> list[str]:
    """For roots a fixed input would fold: which small graph inputs they depend on."""
    small = {}
    for value in real_inputs(model):
        dims = dims_of(value)
        dtype = helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)
        # a scalar, or a few integers/flags: a config value, not data (a float [1, 8] is data)
        if all(isinstance(d, int) for d in dims) and (not dims or (_count(dims) <= SMALL and dtype.kind in "biu")):
            small[value.name] = value
    hints, named = [], set()
    for op, name, _ in roots:
        node = by_name.get(name)
        if node is None or op not in FOLDABLE:
            continue
        # an If/Loop folds on its condition / trip count alone, not on the data its branches read
        start = node if op not in ("If", "Loop") else helper.make_node("Identity", list(node.input[:2]), ["_"])
        found = sorted(_ancestor_inputs(start, producer) & set(small))
        for inp in found:
            if inp in named:
                continue
            named.add(inp)
            dtype = helper.tensor_dtype_to_np_dtype(small[inp].type.tensor_type.elem_type)
            hints.append(f"{op} node '{name}' depends on the run-time value of input '{inp}' "
                         f"({dtype.name}{dims_of(small[inp]) or ' scalar'}): if it is fixed in your app, give it "
                         f"with `--input-value {inp}=VALUE` (or `inputs: {{{inp}: {{value: ...}}}}` in the profile) "
                         f"and the graph folds around it")
    return hints


def _ancestor_inputs(node, producer) -> set[str]:
    out, stack, seen = set(), [node], set()
    while stack:
        n = stack.pop()
        for name in node_inputs(n):
            src = producer.get(name)
            if src is None:
                out.add(name)
            elif id(src) not in seen:
                seen.add(id(src))
                stack.append(src)
    return out


def _count(dims) -> int:
    total = 1
    for d in dims:
        total *= d
    return total
