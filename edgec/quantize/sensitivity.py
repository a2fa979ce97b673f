"""Which nodes hurt most when quantized, and which to leave float.

Ranking is cheap: run the float and the fully quantized model with every activation exposed and score each
quantized node by how much *its own* output error exceeds the error already in its inputs. Only the worst few
are then measured properly: re-quantize with that one node left float (calibration ranges come from the
cache, so no data is re-read) and compare the model outputs with float.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import onnx

from edgec.quantize.activations import float_tensors, run_named, session_with_outputs
from edgec.quantize.outputs import output_accuracy
from edgec.runtimes.numerics import cosine


@dataclass
class NodeSensitivity:
    node: str
    op_type: str
    local_error: float  # 1 - cosine added by this node (activation level, ranking only)
    cosine_if_float: float | None = None  # worst model-output cosine with only this node left float

    def as_dict(self) -> dict:
        return {"node": self.node, "op_type": self.op_type, "local_error": round(self.local_error, 6),
                "cosine_if_float": None if self.cosine_if_float is None else round(self.cosine_if_float, 6)}


def output_cosine(reference: list[dict[str, np.ndarray]], model: onnx.ModelProto, feeds: list[dict],
                  kinds: dict | None = None) -> float:
    """Worst cosine over outputs (and samples) between `reference` outputs and `model` run on `feeds`, as the
    accuracy gate measures it: Softmax outputs (`kinds`, edgec.quantize.outputs) as logits. On probabilities a
    confident net reads ~1.0 however much int8 moved its logits, and the search would see nothing to fix."""
    sess = session_with_outputs(model, [])
    got = [run_named(sess, feed) for feed in feeds]
    return min(output_accuracy(name, [r[name] for r in reference], [g[name] for g in got], kinds or {})[0].cosine
               for name in reference[0])


def rank_nodes(float_model: onnx.ModelProto, qdq_model: onnx.ModelProto, feeds: list[dict],
               candidates: set[str]) -> list[NodeSensitivity]:
    """Quantized nodes (names in `candidates`) ordered worst first by the error they add themselves."""
    # what a consumer sees of tensor t in the QDQ model is its DequantizeLinear output when there is one;
    # ORT also folds Relu/Clip into the producer's range, giving the producer's output the Relu's name
    q_have = {o for n in qdq_model.graph.node for o in n.output}
    view = {}
    for t in float_tensors(float_model):
        dq = f"{t}_DequantizeLinear_Output"
        if dq in q_have or t in q_have:
            view[t] = dq if dq in q_have else t
    f_sess = session_with_outputs(float_model, list(view))
    q_sess = session_with_outputs(qdq_model, list(view.values()))
    err: dict[str, float] = {}
    for feed in feeds:
        f_out, q_out = run_named(f_sess, feed), run_named(q_sess, feed)
        for t, qt in view.items():
            err[t] = max(err.get(t, 0.0), 1.0 - cosine(f_out[t], q_out[qt]))
    q_out_of = {n.name: n.output[0] for n in qdq_model.graph.node if n.output}  # fused Relu: the Relu's name
    ranked = []
    for node in float_model.graph.node:
        out = q_out_of.get(node.name)
        if node.name not in candidates or out not in err:
            continue
        before = max((err.get(i, 0.0) for i in node.input), default=0.0)
        ranked.append(NodeSensitivity(node.name, node.op_type, max(0.0, err[out] - before)))
    ranked.sort(key=lambda s: (-s.local_error, s.node))
    return ranked


def choose_float_nodes(
    ranked: list[NodeSensitivity],
    measure: Callable[[list[str]], float],
    base_cosine: float,
    measure_top: int,
    max_float: int,
    min_cosine: float,
    deadline: float | None = None,
) -> tuple[list[str], float, bool]:
    """Measure the `measure_top` worst nodes one at a time (fills cosine_if_float), then, while the model is
    under `min_cosine`, leave float the ones that helped most, up to `max_float`. Past `deadline`
    (time.perf_counter()) no new measurement starts. Returns (nodes, cosine, stopped by the deadline)."""
    memo: dict[tuple[str, ...], float] = {}
    late = False

    def cached(nodes: list[str]) -> float | None:
        nonlocal late
        key = tuple(sorted(nodes))
        if key not in memo:
            if deadline is not None and time.perf_counter() > deadline:
                late = True
                return None
            memo[key] = measure(list(key))
        return memo[key]

    for s in ranked[:measure_top]:
        if s.local_error > 0:  # zero: the node shares its input's scale (MaxPool, Concat), nothing to gain
            s.cosine_if_float = cached([s.node])
    chosen: list[str] = []
    current = base_cosine
    helpful = sorted((s for s in ranked[:measure_top] if s.cosine_if_float is not None
                      and s.cosine_if_float > base_cosine), key=lambda s: -s.cosine_if_float)
    for s in helpful:
        if current >= min_cosine or len(chosen) >= max_float:
            break
        trial = cached(chosen + [s.node])
        if trial is not None and trial > current:
            chosen.append(s.node)
            current = trial
    return chosen, current, late
