"""Scan (and Loop with a constant trip count) unrolled in the ONNX domain, for targets without a loop op of their
own that fits: the body is cloned once per iteration with its local tensors renamed, scan inputs are sliced with a
Gather on their scan axis, scan outputs are stacked with Unsqueeze + Concat, and outer-scope reads stay valid (the
body reads them by name, and those names are not renamed). Both the TFLite and the CoreML backend run this before
they look at a graph, so `unsupported()` and `lower()` see the same unrolled graph.

The unroll is bounded (iterations x body nodes <= MAX_UNROLLED_NODES): a longer loop is left in place and the
backend refuses it with the reason given here."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgec.graph.fold import _inline_with, _unroll
from edgec.graph.view import DOMAINS, constants

MAX_UNROLLED_NODES = 4096  # iterations x body nodes: beyond it the graph would be mostly copies of one body


def unroll_control_flow(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict[str, str]]:
    """(the model with every small Scan / constant-trip Loop unrolled, {node name: why it was not unrolled}).
    The model is returned unchanged (not copied) when there is nothing to unroll."""
    kinds = {n.op_type for n in model.graph.node if n.domain in DOMAINS}
    if not kinds & {"Scan", "Loop"}:
        return model, {}
    work = onnx.ModelProto()
    work.CopyFrom(model)
    try:
        inferred = onnx.shape_inference.infer_shapes(work, strict_mode=False)
    except Exception:  # noqa: BLE001  (unknown shapes: the Scan is refused with that reason below)
        inferred = work
    shapes = _shapes(inferred)
    consts = constants(work.graph)
    opset = next((o.version for o in work.opset_import if o.domain in DOMAINS), 13)
    refused: dict[str, str] = {}
    nodes: list[onnx.NodeProto] = []
    for i, node in enumerate(work.graph.node):
        name = node.name or f"{node.op_type}_{i}"
        prefix = f"{name}/unrolled"
        new, why = None, None
        try:
            if node.domain in DOMAINS and node.op_type == "Scan":
                new, why = _unroll_scan(node, shapes, opset, prefix)
            elif node.domain in DOMAINS and node.op_type == "Loop":
                new, why = _unroll_loop(node, consts, opset, prefix)
        except (KeyError, IndexError, ValueError, StopIteration) as e:  # a malformed node: the backend refuses it
            new, why = None, f"it cannot be unrolled ({type(e).__name__}: {e}): a malformed node"
        if new is None:
            if why:
                refused[name] = why
            nodes.append(node)
        else:
            nodes += new
    if len(nodes) == len(work.graph.node):
        return model, refused
    del work.graph.node[:]
    work.graph.node.extend(nodes)
    return work, refused


def with_reasons(problems: list[tuple[str, str, str]], refused: dict[str, str]) -> list[tuple[str, str, str]]:
    """The backend's problems with "no lowering for this op" on a loop this module left in place replaced by why."""
    return [(op, name, refused.get(name, why)) if op in ("Scan", "Loop") else (op, name, why)
            for op, name, why in problems]


def _shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    out = {}
    g = model.graph
    for v in list(g.input) + list(g.value_info) + list(g.output):
        t = v.type.tensor_type
        if v.type.HasField("tensor_type") and t.HasField("shape") and all(
                d.HasField("dim_value") and d.dim_value >= 0 for d in t.shape.dim):
            out[v.name] = [d.dim_value for d in t.shape.dim]
    for t in g.initializer:
        out[t.name] = list(t.dims)
    return out


def _too_long(steps: int, body: onnx.GraphProto) -> str | None:
    size = steps * max(len(body.node), 1)
    if size > MAX_UNROLLED_NODES:
        return (f"unrolling it would copy its {len(body.node)}-node body {steps} times ({size} nodes, above the "
                f"bound of {MAX_UNROLLED_NODES}); shorten the sequence (input shape) or build for ort-mobile, "
                f"which runs loops natively")
    return None


def _const(nodes: list, name: str, value: np.ndarray) -> str:
    nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name)))
    return name


def _unsqueeze(nodes: list, x: str, axis: int, out: str, opset: int) -> None:
    if opset >= 13:
        axes = _const(nodes, f"{out}/axes", np.array([axis], np.int64))
        nodes.append(helper.make_node("Unsqueeze", [x, axes], [out]))
    else:
        nodes.append(helper.make_node("Unsqueeze", [x], [out], axes=[axis]))


def _stack(nodes: list, names: list[str], axis: int, target: str, opset: int) -> None:
    """names (each without the axis) stacked on `axis` into `target`."""
    parts = []
    for k, n in enumerate(names):
        parts.append(f"{target}/part{k}")
        _unsqueeze(nodes, n, axis, parts[-1], opset)
    nodes.append(helper.make_node("Concat", parts, [target], axis=axis))


def _unroll_scan(node: onnx.NodeProto, shapes: dict, opset: int, prefix: str):
    """(nodes, None) or (None, why). Scan-8 has a batch axis 0 (the body runs per batch element, scan axis 1) and
    optional sequence_lens; Scan-9+ has per-input axes and directions."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    body = attrs["body"]
    m = int(attrs["num_scan_inputs"])
    v8 = opset < 9
    ins = list(node.input)
    if v8:
        if ins and ins[0]:
            return None, "Scan-8 with sequence_lens is not unrolled (a per-batch length); re-export at opset 9+"
        ins = ins[1:]
    n_state = len(ins) - m
    states, scans = ins[:n_state], ins[n_state:]
    n_out = len(body.output) - n_state
    if any(s not in shapes for s in states + scans):
        missing = next(s for s in states + scans if s not in shapes)
        return None, f"input '{missing}' has no static shape, so the number of iterations is unknown"
    if v8:
        in_dirs = list(attrs.get("directions", [0] * m))
        batch = shapes[scans[0]][0] if scans else shapes[states[0]][0]
        steps = shapes[scans[0]][1]
        why = _too_long(steps * batch, body)
        if why:
            return None, why
        nodes: list = []
        finals = [[] for _ in range(n_state)]
        outs = [[] for _ in range(n_out)]
        for b in range(batch):
            idx = _const(nodes, f"{prefix}/b{b}", np.array(b, np.int64))
            st = []
            for j, s in enumerate(states):
                st.append(f"{prefix}/b{b}/state{j}")
                nodes.append(helper.make_node("Gather", [s, idx], [st[-1]], axis=0))
            xs = []
            for j, x in enumerate(scans):
                xs.append(f"{prefix}/b{b}/x{j}")
                nodes.append(helper.make_node("Gather", [x, idx], [xs[-1]], axis=0))
            st, per_t = _iterate(nodes, body, st, xs, [0] * m, in_dirs, steps, f"{prefix}/b{b}")
            for j, s in enumerate(st):
                finals[j].append(s)
            for j in range(n_out):
                seq = f"{prefix}/b{b}/y{j}"
                _stack(nodes, per_t[j], 0, seq, opset)
                outs[j].append(seq)
        for target, parts in zip(node.output, finals + outs):
            if target:
                _stack(nodes, parts, 0, target, opset)
        return nodes, None
    in_axes = [int(a) for a in attrs.get("scan_input_axes", [0] * m)]
    in_dirs = [int(d) for d in attrs.get("scan_input_directions", [0] * m)]
    out_axes = [int(a) for a in attrs.get("scan_output_axes", [0] * n_out)]
    out_dirs = [int(d) for d in attrs.get("scan_output_directions", [0] * n_out)]
    in_axes = [a % len(shapes[x]) for a, x in zip(in_axes, scans)]
    lengths = {shapes[x][a] for a, x in zip(in_axes, scans)}
    if len(lengths) != 1:
        return None, f"its scan inputs have different lengths {sorted(lengths)}"
    steps = lengths.pop()
    if steps == 0:
        return None, "its scan inputs are empty (0 iterations)"
    why = _too_long(steps, body)
    if why:
        return None, why
    nodes = []
    st, per_t = _iterate(nodes, body, states, scans, in_axes, in_dirs, steps, prefix)
    for target, value in zip(node.output[:n_state], st):
        if target:
            nodes.append(helper.make_node("Identity", [value], [target]))
    for j, target in enumerate(node.output[n_state:]):
        if not target:
            continue
        seq = per_t[j][::-1] if out_dirs[j] else per_t[j]
        axis = out_axes[j]
        if axis < 0:
            elem_rank = _elem_rank(body, n_state + j)
            if elem_rank is None:
                return None, f"scan output {j} has a negative axis and an unknown rank"
            axis += elem_rank + 1
        _stack(nodes, seq, axis, target, opset)
    return nodes, None


def _elem_rank(body: onnx.GraphProto, index: int) -> int | None:
    t = body.output[index].type.tensor_type
    return len(t.shape.dim) if t.HasField("shape") else None


def _iterate(nodes: list, body: onnx.GraphProto, states: list[str], scans: list[str], axes: list[int],
             dirs: list[int], steps: int, prefix: str) -> tuple[list[str], list[list[str]]]:
    """The body cloned `steps` times: (the final state names, per scan output the per-iteration names)."""
    b_in = [i.name for i in body.input]
    n_state = len(states)
    per_t: list[list[str]] = [[] for _ in range(len(body.output) - n_state)]
    for t in range(steps):
        tag = f"{prefix}/it{t}"
        elems = []
        for j, (x, axis, d) in enumerate(zip(scans, axes, dirs)):
            idx = _const(nodes, f"{tag}/idx{j}", np.array(steps - 1 - t if d else t, np.int64))
            elems.append(f"{tag}/elem{j}")
            nodes.append(helper.make_node("Gather", [x, idx], [elems[-1]], axis=axis))
        body_nodes, out_names = _inline_with(body, dict(zip(b_in, states + elems)), tag)
        nodes += body_nodes
        states = out_names[:n_state]
        for j, name in enumerate(out_names[n_state:]):
            per_t[j].append(name)
    return states, per_t


def _unroll_loop(node: onnx.NodeProto, consts, opset: int, prefix: str):
    """A constant-trip `for` Loop (fold.py's unroll, which prepare already ran) within this module's bound."""
    trip = consts.get(node.input[0]) if node.input and node.input[0] else None
    if trip is None:
        return None, None  # a run-time trip count: the backend's own loop lowering (or its refusal) decides
    body = next(a.g for a in node.attribute if a.name == "body")
    why = _too_long(int(np.asarray(trip).reshape(-1)[0]), body)
    if why:
        return None, why
    nodes = _unroll(node, consts, opset, prefix, limit=MAX_UNROLLED_NODES)
    if nodes is None:
        return None, None  # a `while` condition or a zero trip count: not a plain `for` loop
    return nodes, None
