"""IR peepholes before the layout pass: fold a per-channel constant Add/Mul after a Conv into its bias/weights
(exporters often leave the bias or a decomposed BatchNorm as a separate Add/Mul)."""

from __future__ import annotations

import numpy as np

from edgec.graph.passes import per_channel
from edgec.lower.tflite.ir import Graph


def _per_channel(g: Graph, name: str, channels: int, rank: int) -> np.ndarray | None:
    """The float32 constant as a (C,) vector if it broadcasts along axis 1 of a rank-`rank` NCHW tensor only
    (the ONNX pass's rule, graph.passes.per_channel). The pass folds the same pattern on ONNX; this one also
    runs on graphs lowered without the pass pipeline, and copies weights a second conv shares."""
    c = g.consts.get(name)
    if c is None or c.dtype != np.float32 or rank < 2:
        return None
    per = per_channel(c, channels, rank)
    return None if per is None else per.astype(np.float32)


def fold_conv_affine(g: Graph) -> int:
    """Conv -> Add(c) / Mul(c) with c per output channel: new bias / weights; returns how many folded."""
    folded = 0
    changed = True
    while changed:
        changed = False
        prod, cons = g.producers(), g.consumers()
        for n in g.nodes:
            if n.op not in ("Add", "Mul") or len(n.inputs) != 2:
                continue
            k = 1 if n.inputs[1] in g.consts else 0 if n.inputs[0] in g.consts else None
            if k is None:
                continue
            conv = prod.get(n.inputs[1 - k])
            if (conv is None or conv.op != "Conv" or len(cons.get(conv.outputs[0], [])) != 1
                    or conv.outputs[0] in g.outputs or conv.inputs[1] not in g.consts
                    or (len(conv.inputs) > 2 and conv.inputs[2] and conv.inputs[2] not in g.consts)):
                continue
            w = g.consts[conv.inputs[1]]
            vec = _per_channel(g, n.inputs[k], w.shape[0], len(g.shapes.get(conv.outputs[0], ())))
            if vec is None:
                continue
            bias = g.consts[conv.inputs[2]] if len(conv.inputs) > 2 and conv.inputs[2] else np.zeros(w.shape[0], np.float32)
            if n.op == "Add":
                bias = bias + vec
            else:
                w = w * vec.reshape((-1,) + (1,) * (w.ndim - 1))
                bias = bias * vec
            wn, bn = g.fresh(f"{conv.name}_w"), g.fresh(f"{conv.name}_b")
            for name, value in ((wn, w.astype(np.float32)), (bn, bias.astype(np.float32))):
                g.consts[name], g.shapes[name], g.dtypes[name] = value, value.shape, value.dtype
            conv.inputs = [conv.inputs[0], wn, bn]
            conv.outputs = [n.outputs[0]]
            g.nodes.remove(n)
            folded += 1
            changed = True
            break
    return folded
