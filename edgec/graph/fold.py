"""edgec's own folding, before (and independent of) onnxsim: topological order, constant propagation through the
shape/control arithmetic (Shape, ConstantOfShape, Equal, Where, Cast, Gather, Concat, ...) and inlining of every
If whose condition is known, so the unused branch never reaches a runtime's type checks (a voice-activity
detector's 8 kHz branch fed its LSTM a rank-4 tensor once shapes were fixed). Branches read outer-scope tensors by
name, which stays valid once their nodes are in the main graph. Floating-point arithmetic is left to onnxsim
(checked against the original), so folding here never changes a float result."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.graph.diagnose import node_inputs

# evaluated here when every input is known: the ops exporters use for shapes, masks and config flags
FOLD_OPS = {"Shape", "Size", "ConstantOfShape", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not",
            "And", "Or", "Xor", "Where", "Cast", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Reshape",
            "Range", "Identity", "Constant", "Add", "Sub", "Mul", "Div", "Min", "Max", "Abs", "Neg", "Expand",
            "ReduceProd", "Tile"}
INT_ONLY = {"Add", "Sub", "Mul", "Div", "Min", "Max", "Abs", "Neg", "ReduceProd", "Expand", "Tile"}
MAX_ELEMENTS = 1 << 16  # bigger results stay in the graph (they are data, not shapes)


def fold(model: onnx.ModelProto) -> Counter:
    """Fold in place; returns what was done (nodes folded, Ifs inlined, sorted)."""
    done: Counter = Counter()
    graph = model.graph
    if model.ir_version < 4:  # IR 3 requires every initializer to be a graph input too: left to onnxsim as before
        return done
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:
        inferred = model
    shapes = _static_shapes(inferred)
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    kept: list[onnx.NodeProto] = []
    queue = list(_topological(graph, done))
    outputs = {o.name for o in graph.output}
    n_if = 0
    while queue:
        node = queue.pop(0)
        if node.op_type == "If" and node.domain in ("", "ai.onnx") and node.input[0] in consts:
            branch = _attr_graph(node, "then_branch" if bool(np.asarray(consts[node.input[0]]).reshape(-1)[0])
                                 else "else_branch")
            n_if += 1
            queue[:0] = _inline(branch, node, f"{node.name or 'If'}_{n_if}")
            done["If inlined"] += 1
            continue
        if node.op_type == "Loop" and node.domain in ("", "ai.onnx"):
            unrolled = _unroll(node, consts, opset, f"{node.name or 'Loop'}_{n_if}")
            if unrolled is not None:
                n_if += 1
                queue[:0] = unrolled
                done["Loop unrolled"] += 1
                continue
        value = _evaluate(node, consts, shapes, opset)
        if value is not None and not (set(node.output) & outputs):
            consts.update(value)
            done["folded"] += 1
            continue
        kept.append(node)
    if not any(done.values()):
        return done
    used = {i for n in kept for i in node_inputs(n)} | outputs
    del graph.node[:]
    graph.node.extend(kept)
    have = {t.name for t in graph.initializer}
    graph.initializer.extend(numpy_helper.from_array(np.asarray(v), k) for k, v in consts.items()
                             if k in used and k not in have)
    keep_init = [t for t in graph.initializer if t.name in used]
    dropped = {t.name for t in graph.initializer} - {t.name for t in keep_init}
    del graph.initializer[:]
    graph.initializer.extend(keep_init)
    if dropped & {i.name for i in graph.input}:  # old IR lists weights as inputs too: drop those entries with them
        keep_in = [i for i in graph.input if i.name not in dropped]
        del graph.input[:]
        graph.input.extend(keep_in)
    return done


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    out = {}
    for v in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        t = v.type.tensor_type
        if t.HasField("shape") and all(d.HasField("dim_value") and d.dim_value >= 0 for d in t.shape.dim):
            out[v.name] = [d.dim_value for d in t.shape.dim]
    return out


def _topological(graph: onnx.GraphProto, done: Counter) -> list[onnx.NodeProto]:
    """Kahn order, stable; exporters sometimes write a node before its producer (onnxsim then refuses the model:
    "Nodes in a graph must be topologically sorted")."""
    nodes = list(graph.node)
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[x] for x in node_inputs(n) if x in producer and producer[x] != i} for i, n in enumerate(nodes)]
    order, placed = [], set()
    pending = list(range(len(nodes)))
    while pending:
        progressed = False
        rest = []
        for i in pending:
            if deps[i] <= placed:
                order.append(i)
                placed.add(i)
                progressed = True
            else:
                rest.append(i)
        pending = rest
        if not progressed:  # a cycle: leave the remaining nodes as they were
            order += pending
            break
    if order != list(range(len(nodes))):
        done["sorted"] += 1
    return [nodes[i] for i in order]


def _attr_graph(node: onnx.NodeProto, name: str) -> onnx.GraphProto:
    return next(a.g for a in node.attribute if a.name == name)


def _inline(branch: onnx.GraphProto, node: onnx.NodeProto, prefix: str) -> list[onnx.NodeProto]:
    """The branch's nodes with its local names prefixed (no clash with the main graph), then Identity nodes
    from the branch outputs to the If's outputs. Branch initializers become Constant nodes."""
    local = {t.name for t in branch.initializer}
    for n in branch.node:
        local.update(o for o in n.output if o)
    rename = {name: f"{prefix}/{name}" for name in local}
    nodes = [helper.make_node("Constant", [], [rename[t.name]], value=t) for t in branch.initializer]
    for n in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        _rename_refs(copy, rename)
        if copy.name:
            copy.name = f"{prefix}/{copy.name}"
        nodes.append(copy)
    for out, target in zip(branch.output, node.output):
        if target:
            nodes.append(helper.make_node("Identity", [rename.get(out.name, out.name)], [target],
                                          name=f"{prefix}/out_{target}"))
    return nodes


MAX_UNROLL = 64  # a longer constant loop stays a Loop (and is refused by targets without one)


def _unroll(node: onnx.NodeProto, consts: dict, opset: int, prefix: str,
            limit: int = MAX_UNROLL) -> list[onnx.NodeProto] | None:
    """A Loop with a constant trip count (1..MAX_UNROLL) whose body passes its condition through unchanged (a
    `for` loop, as exporters write it) becomes that many copies of the body; scan outputs are stacked on a new
    axis 0. Anything else (a `while` condition, an unknown or zero trip count) stays a Loop."""
    trip = consts.get(node.input[0]) if node.input and node.input[0] else None
    cond = consts.get(node.input[1]) if len(node.input) > 1 and node.input[1] else np.array(True)
    if trip is None or cond is None or not bool(np.asarray(cond).reshape(-1)[0]):
        return None
    m = int(np.asarray(trip).reshape(-1)[0])
    if not 1 <= m <= limit:
        return None
    body = _attr_graph(node, "body")
    b_in, b_out = [i.name for i in body.input], [o.name for o in body.output]
    carried = list(node.input[2:])
    n_carried = len(carried)
    # the condition must come back unchanged: body output 0 is body input 1 (possibly through one Identity)
    cond_src = {n.output[0]: n.input[0] for n in body.node if n.op_type == "Identity"}
    if cond_src.get(b_out[0], b_out[0]) != b_in[1]:
        return None
    nodes, scans = [], [[] for _ in range(len(b_out) - 1 - n_carried)]
    for k in range(m):
        tag = f"{prefix}/it{k}"
        it_name, cond_name = f"{tag}/iter", f"{tag}/cond"
        nodes.append(helper.make_node("Constant", [], [it_name], value=numpy_helper.from_array(np.array(k, np.int64))))
        nodes.append(helper.make_node("Constant", [], [cond_name], value=numpy_helper.from_array(np.array(True))))
        outer = {b_in[0]: it_name, b_in[1]: cond_name, **dict(zip(b_in[2:], carried))}
        step = _inline_with(body, outer, tag)
        nodes += step[0]
        out_names = step[1]
        carried = out_names[1:1 + n_carried]
        for j, name in enumerate(out_names[1 + n_carried:]):
            scans[j].append(name)
    for target, value in zip(node.output[:n_carried], carried):
        if target:
            nodes.append(helper.make_node("Identity", [value], [target], name=f"{prefix}/out_{target}"))
    axes = f"{prefix}/axes0"
    if scans and opset >= 13:
        nodes.append(helper.make_node("Constant", [], [axes], value=numpy_helper.from_array(np.array([0], np.int64))))
    for j, (target, names) in enumerate(zip(node.output[n_carried:], scans)):
        if not target:
            continue
        expanded = []
        for k, name in enumerate(names):
            e = f"{prefix}/scan{j}_{k}"
            if opset >= 13:
                nodes.append(helper.make_node("Unsqueeze", [name, axes], [e]))
            else:
                nodes.append(helper.make_node("Unsqueeze", [name], [e], axes=[0]))
            expanded.append(e)
        nodes.append(helper.make_node("Concat", expanded, [target], axis=0, name=f"{prefix}/scan{j}"))
    return nodes


def _inline_with(body: onnx.GraphProto, outer: dict[str, str], prefix: str):
    """The body's nodes with local names prefixed and its formal inputs bound to `outer` names; returns
    (nodes, the names of the body outputs)."""
    local = {t.name for t in body.initializer} | {o for n in body.node for o in n.output if o}
    rename = {name: f"{prefix}/{name}" for name in local}
    rename.update(outer)
    nodes = [helper.make_node("Constant", [], [rename[t.name]], value=t) for t in body.initializer]
    for n in body.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        _rename_refs(copy, rename)
        copy.name = f"{prefix}/{copy.name}" if copy.name else ""
        nodes.append(copy)
    return nodes, [rename.get(o.name, o.name) for o in body.output]


def _rename_refs(node: onnx.NodeProto, rename: dict[str, str]) -> None:
    for i, name in enumerate(node.input):
        node.input[i] = rename.get(name, name)
    for i, name in enumerate(node.output):
        node.output[i] = rename.get(name, name)
    for attr in node.attribute:  # nested subgraphs read the renamed tensors by name too
        for g in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
            inner_local = {i.name for i in g.input} | {t.name for t in g.initializer} | {
                o for n in g.node for o in n.output}
            inner = {k: v for k, v in rename.items() if k not in inner_local}
            for n in g.node:
                for j, name in enumerate(n.input):
                    n.input[j] = inner.get(name, name)
            for o in g.output:
                o.name = inner.get(o.name, o.name)


def _evaluate(node, consts, shapes, opset) -> dict[str, np.ndarray] | None:
    if node.domain not in ("", "ai.onnx") or node.op_type not in FOLD_OPS or any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
        return None
    if node.op_type == "Shape" and node.input[0] not in consts:
        shape = shapes.get(node.input[0])
        if shape is None:
            return None
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        start, end = attrs.get("start", 0), attrs.get("end", None)
        return {node.output[0]: np.array(shape[start:end] if end is not None else shape[start:], np.int64)}
    if node.op_type == "Size" and node.input[0] not in consts and node.input[0] in shapes:
        return {node.output[0]: np.array(int(np.prod(shapes[node.input[0]])), np.int64)}
    if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
        return {node.output[0]: numpy_helper.to_array(node.attribute[0].t)}  # the common case, without an evaluator
    ins = [i for i in node.input if i]
    if any(i not in consts for i in ins):
        return None
    values = [consts[i] for i in ins]
    if sum(v.size for v in values) > MAX_ELEMENTS:
        return None
    if node.op_type in INT_ONLY and any(v.dtype.kind == "f" for v in values):
        return None
    try:
        from onnx.reference import ReferenceEvaluator

        g = helper.make_graph([node], "fold", [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(
            consts[n].dtype), consts[n].shape) for n in dict.fromkeys(ins)],
            [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in node.output if o])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        results = ReferenceEvaluator(m).run(None, {n: consts[n] for n in dict.fromkeys(ins)})
    except Exception:  # the runtime sees it instead
        return None
    out = {o: np.asarray(r) for o, r in zip([o for o in node.output if o], results)}
    if any(v.size > MAX_ELEMENTS or v.dtype == object for v in out.values()):
        return None
    if node.op_type != "Shape" and any(v.dtype.kind == "f" for v in out.values()) and node.op_type not in (
            "ConstantOfShape", "Where", "Cast", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Reshape",
            "Identity", "Constant", "Expand", "Tile"):
        return None  # float arithmetic: onnxsim folds it and edgec checks the result against the original
    return out
