"""What dynamic batch (dynbatch.py) and dynamic lengths (dynamic.py) share: one graph lowered at two sizes of an
axis (`big` and `small`) gives two builders with the same ops and tensors one-to-one, since lowering is
deterministic; whatever differs between them depends on that size. This module compares the two, gives -1 shape
signatures to tensor axes that scale with the size, and rewrites the RESHAPE targets that hold it."""

from __future__ import annotations

import numpy as np

from edgec.lower.tflite.builder import ModelBuilder

Problem = tuple[str, str, str]


def same_ops(main: ModelBuilder, probe: ModelBuilder) -> bool:
    return len(main.ops) == len(probe.ops) and len(main.tensors) == len(probe.tensors) and all(
        (a.code, a.inputs, a.outputs) == (b.code, b.inputs, b.outputs) for a, b in zip(main.ops, probe.ops))


def mark_scaling_tensors(main: ModelBuilder, probe: ModelBuilder, big: int, small: int, one_axis: bool,
                         describe) -> tuple[set[int], list[Problem]]:
    """(constants that differ, problems). A tensor whose differing dims are each `big` : `small` in proportion
    gets -1 there in `main`'s shape signature (`one_axis`: only when a single dim differs); any other difference
    is a problem, worded by describe(tensor name, shape in main, shape in probe)."""
    producer = {o: op for op in main.ops for o in op.outputs}
    varying, problems = set(), []
    for i, (t, u) in enumerate(zip(main.tensors, probe.tensors)):
        if t.buffer:
            if t.shape != u.shape or main.buffers[t.buffer] != probe.buffers[u.buffer]:
                varying.add(i)
            continue
        if t.shape == u.shape:
            continue
        axes = [a for a in range(len(t.shape)) if len(t.shape) == len(u.shape) and t.shape[a] != u.shape[a]]
        if axes and (len(axes) == 1 or not one_axis) and all(t.shape[a] * small == u.shape[a] * big for a in axes):
            t.signature = tuple(-1 if a in axes else d for a, d in enumerate(t.shape))
            continue
        op = producer.get(i)
        op_type, node = op.node if op else ("Input", t.name)
        problems.append((op_type, node, describe(t.name, list(t.shape), list(u.shape))))
    return varying, problems


def splice_before(main: ModelBuilder, before: dict[int, list]) -> None:
    """Put the ops computing a rewritten op's new input (before: id(op) -> ops, built and then taken off the end of
    main.ops) right before that op."""
    if before:
        main.ops = [o for op in main.ops for o in before.get(id(op), []) + [op]]


def reshape_to_minus_one(main: ModelBuilder, probe: ModelBuilder, a, b, big: int, small: int, what: str) -> str | None:
    """RESHAPE `a` whose target shape holds the size in one entry: that entry becomes -1 (None), else why not."""
    vec, alt = const(main, a.inputs[1]), const(probe, b.inputs[1])
    at = [k for k in range(vec.size) if vec.shape == alt.shape and vec[k] != alt[k]]
    if len(at) != 1 or -1 in vec.tolist() or vec[at[0]] * small != alt[at[0]] * big:
        return f"its target shape {vec.tolist()} holds the {what} in a way -1 cannot express"
    vec = vec.copy()
    vec[at[0]] = -1
    a.inputs[1] = main._raw_const(vec.astype(np.int32), f"{main.tensors[a.inputs[1]].name}_dyn")
    if a.options is not None:
        a.options.newShape = [int(d) for d in vec]
    return None


def const(b: ModelBuilder, idx: int) -> np.ndarray:
    t = b.tensors[idx]
    return np.frombuffer(b.buffers[t.buffer], dtype=t.dtype).reshape(t.shape)


def fields(options) -> dict:
    return {} if options is None else dict(vars(options))


def dedupe(problems: list[Problem]) -> list[Problem]:
    """One problem per (op, node), the first."""
    seen, out = set(), []
    for pr in problems:
        if pr[:2] not in seen:
            seen.add(pr[:2])
            out.append(pr)
    return out
