"""float16 in the ONNX domain: weights and activations fp16, graph inputs/outputs stay float32.

Nodes whose float32 activations come near the fp16 limit on the sample inputs stay float32 (with casts around
them), as do the user's keep_float entries; the converter is onnxconverter-common's, as shipped in onnxruntime.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import onnx

from edgec.quantize.activations import float_tensors, run_named, session_with_outputs

FP16_MAX = 65504.0
HEADROOM = 4.0  # a tensor within 4x of the fp16 limit on sample data can overflow on other data


def hot_nodes(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Node name -> largest |activation| for nodes whose float output exceeds FP16_MAX / HEADROOM."""
    names = float_tensors(model)
    producer = {out: node.name for node in model.graph.node for out in node.output}
    sess = session_with_outputs(model, names)
    peak: dict[str, float] = {}
    for feed in feeds:
        for name, value in run_named(sess, feed).items():
            if name in producer and value.size and np.issubdtype(value.dtype, np.floating):
                with np.errstate(invalid="ignore"):
                    m = float(np.nanmax(np.abs(value)))
                peak[producer[name]] = max(peak.get(producer[name], 0.0), m)
    return {n: v for n, v in sorted(peak.items()) if v > FP16_MAX / HEADROOM}


def to_fp16(model: onnx.ModelProto, keep_float: list[str], feeds: list[dict[str, np.ndarray]]):
    """(fp16 model, {node kept fp32: reason}). Node names must be unique and non-empty (prepare() names them)."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    keep = set(keep_float)
    hot = hot_nodes(model, feeds) if feeds else {}
    kept = {n: f"activations reach {v:.3g} on sample inputs (fp16 max {FP16_MAX:g})" for n, v in hot.items()}
    for node in model.graph.node:
        if node.name in keep or node.op_type in keep:
            kept[node.name] = "keep_float in the profile"
    op_types = sorted(set(DEFAULT_OP_BLOCK_LIST) | {k for k in keep if k[:1].isupper()})
    model = _without_initializer_value_info(model)
    with contextlib.redirect_stdout(io.StringIO()):
        converted = convert_float_to_float16(
            model, keep_io_types=True, op_block_list=op_types, node_block_list=sorted(kept),
        )
    topo_sort(converted.graph)
    return converted, dict(sorted(kept.items()))


def _without_initializer_value_info(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without value_info entries that name initializers (paddle2onnx writes them). The converter
    treats such an entry as an activation and retypes it fp16 while the initializer itself stays fp32 when only
    blocked ops (e.g. Resize scales) read it; shape inference then fails on the mismatch (float vs float16)."""
    inits = {t.name for t in model.graph.initializer}
    if not any(v.name in inits for v in model.graph.value_info):
        return model
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    kept = [v for v in copy.graph.value_info if v.name not in inits]
    del copy.graph.value_info[:]
    copy.graph.value_info.extend(kept)
    return copy


def topo_sort(graph: onnx.GraphProto) -> None:
    """The converter appends its input Casts at the end of the node list; tools that walk nodes in order
    (ORT's partition checker) need producers first. Stable: among ready nodes the earliest goes first, so
    already-ordered nodes keep their order. Kahn's algorithm with a heap: a 100k-node chain takes a blink (a
    sweep per level was quadratic)."""
    import heapq

    nodes = list(graph.node)
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    producer = {o: k for k, n in enumerate(nodes) for o in n.output if o}
    waiting = [0] * len(nodes)
    readers: dict[int, list[int]] = {}
    for k, n in enumerate(nodes):
        deps = {producer[i] for i in n.input if i not in available and i in producer}
        waiting[k] = len(deps)
        for d in deps:
            readers.setdefault(d, []).append(k)
        if any(i not in available and i not in producer for i in n.input):
            waiting[k] += 1  # a missing input: never ready, kept after the rest (ONNX checks report it)
    heap = [k for k, w in enumerate(waiting) if w == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        k = heapq.heappop(heap)
        order.append(k)
        for r in readers.get(k, ()):
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(heap, r)
    done = set(order)
    order += [k for k in range(len(nodes)) if k not in done]  # a cycle or a missing input: left as they were
    del graph.node[:]
    graph.node.extend(nodes[k] for k in order)
