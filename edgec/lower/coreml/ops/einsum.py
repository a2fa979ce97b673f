"""Einsum with one or two operands, composed: sum out private letters, then one batched matmul between
[batch, rows, contracted] and [batch, contracted, cols], reshaped and transposed to the output letters.
(MIL's einsum takes only a few fixed equations.)"""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb

from edgec.lower.coreml.registry import Env, NodeView, lowers


def _parse(n: NodeView):
    """(operand letter lists, output letters, letter -> size) or a reason string."""
    eq = n.attr("equation").replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len([i for i in range(len(n.inputs)) if n.has(i)]) or len(terms) > 2:
        return "more than two operands (or a count that does not match the equation)"
    shapes = [n.shape(i) for i in range(len(terms))]
    if any(s is None for s in shapes):
        return "inputs without static shapes"
    ell_rank = max((len(s) - len(t.replace("...", "")) for t, s in zip(terms, shapes) if "..." in t), default=0)
    ell = [chr(ord("A") + i) for i in range(ell_rank)]  # ONNX letters are lower case; ellipsis dims get upper
    ops = []
    sizes: dict[str, int] = {}
    for t, s in zip(terms, shapes):
        if "..." in t:
            pre, post = t.split("...")
            k = len(s) - len(pre) - len(post)
            letters = list(pre) + ell[ell_rank - k:] + list(post)
        else:
            letters = list(t)
        if len(letters) != len(s):
            return f"term '{t}' does not match rank {len(s)}"
        if len(set(letters)) != len(letters):
            return f"repeated letter in '{t}' (a diagonal) is not lowered"
        for c, d in zip(letters, s):
            if sizes.setdefault(c, d) != d:
                if d != 1 and sizes[c] != 1:
                    return f"letter '{c}' has sizes {sizes[c]} and {d}"
                return f"letter '{c}' broadcasts (size 1 against {max(d, sizes[c])}); not lowered"
        ops.append(letters)
    if rhs or "->" in eq:
        out = list(rhs.replace("...", "".join(ell)))
    else:
        counts = {c: sum(o.count(c) for o in ops) for c in sizes}
        out = ell + sorted(c for c in sizes if counts[c] == 1 and c not in ell)
    return ops, out, sizes


def _check_einsum(n: NodeView) -> str | None:
    parsed = _parse(n)
    return parsed if isinstance(parsed, str) else None


def _i32(values) -> np.ndarray:
    return np.array(list(values), dtype=np.int32)


def _sum_out(env: Env, n: NodeView, x, letters: list[str], keep: set[str], tag: str):
    gone = [i for i, c in enumerate(letters) if c not in keep]
    if not gone:
        return x, letters
    x = mb.reduce_sum(x=x, axes=_i32(gone), keep_dims=False, name=env.tmp(n, f"{tag}_sum"))
    return x, [c for c in letters if c in keep]


def _arrange(env: Env, n: NodeView, x, letters: list[str], order: list[str], tag: str):
    perm = [letters.index(c) for c in order]
    if perm != list(range(len(perm))):
        x = mb.transpose(x=x, perm=_i32(perm), name=env.tmp(n, f"{tag}_t"))
    return x


@lowers("Einsum", check=_check_einsum)
def einsum(n: NodeView, env: Env):
    """reduce_sum / transpose / one batched matmul"""
    ops, out, sizes = _parse(n)
    if len(ops) == 1:
        x, letters = _sum_out(env, n, env.var(n, 0), ops[0], set(out), "a")
        x = _arrange(env, n, x, letters, out, "a")
        return mb.identity(x=x, name=env.out(n))
    a_l, b_l = ops
    a, a_l = _sum_out(env, n, env.var(n, 0), a_l, set(out) | set(b_l), "a")
    b, b_l = _sum_out(env, n, env.var(n, 1), b_l, set(out) | set(a_l), "b")
    batch = [c for c in out if c in a_l and c in b_l]
    contract = [c for c in a_l if c in b_l and c not in out]
    rows = [c for c in a_l if c not in b_l]
    cols = [c for c in b_l if c not in a_l]
    prod = lambda cs: int(np.prod([sizes[c] for c in cs]))  # noqa: E731
    a = _arrange(env, n, a, a_l, batch + rows + contract, "a")
    a = mb.reshape(x=a, shape=_i32([prod(batch), prod(rows), prod(contract)]), name=env.tmp(n, "a3"))
    b = _arrange(env, n, b, b_l, batch + contract + cols, "b")
    b = mb.reshape(x=b, shape=_i32([prod(batch), prod(contract), prod(cols)]), name=env.tmp(n, "b3"))
    y = mb.matmul(x=a, y=b, name=env.tmp(n, "mm"))
    have = batch + rows + cols
    y = mb.reshape(x=y, shape=_i32([sizes[c] for c in have]) if have else _i32([1]), name=env.tmp(n, "split"))
    if not have:
        return mb.squeeze(x=y, name=env.out(n))
    y = _arrange(env, n, y, have, out, "y")
    return mb.identity(x=y, name=env.out(n))
