"""Moving Transposes through reshape-like ops (part of the layout pass in layout.py).

A Transpose passes a Reshape when the reshape only splits/merges axes that stay adjacent and in order on the
other side: ShuffleNet's channel shuffle becomes one NHWC transpose. A Flatten of NHWC features feeding
constant-weight Gemm/MatMul permutes the weight rows instead of transposing the features.
"""

from __future__ import annotations

import numpy as np

from edgec.lower.tflite.ir import Graph, Node, inverse, perm_shape, transpose_node

RESHAPES = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"}


def _groups(src: tuple[int, ...], dst: tuple[int, ...]) -> list[tuple[list[int], list[int]]] | None:
    """Split a reshape src -> dst into groups (src axes, dst axes) of equal element count, or None."""
    if 0 in src or 0 in dst or len(src) == 0 or len(dst) == 0:
        return None
    i = j = 0
    out = []
    while i < len(src) and j < len(dst):
        ia, jb, pa, pb = [i], [j], src[i], dst[j]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb and i < len(src):
                pa, i = pa * src[i], i + 1
                ia.append(i - 1)
            elif pb < pa and j < len(dst):
                pb, j = pb * dst[j], j + 1
                jb.append(j - 1)
            else:
                return None
        out.append((ia, jb))
    if any(d != 1 for d in src[i:]) or any(d != 1 for d in dst[j:]):
        return None
    out[-1][0].extend(range(i, len(src)))
    out[-1][1].extend(range(j, len(dst)))
    return out


def _increasing_run(axes: list[int]) -> bool:
    return all(b == a + 1 for a, b in zip(axes, axes[1:]))


def _as_reshape(g: Graph, n: Node, src: str, dst: str, shape: tuple[int, ...]) -> None:
    const = g.fresh(f"{n.name}_shape")
    g.consts[const] = np.array(shape, np.int64)
    g.shapes[const], g.dtypes[const] = (len(shape),), np.dtype(np.int64)
    n.op, n.inputs, n.outputs, n.attrs = "Reshape", [src, const], [dst], {}


def sink_through_reshape(g: Graph, idx: int, n: Node, prod: dict[str, Node]) -> bool:
    """T(p) -> Reshape  ==>  Reshape' -> T(p')."""
    t = prod.get(n.inputs[0])
    if t is None or t.op != "Transpose" or n.outputs[0] not in g.shapes:
        return False
    perm, inner = t.attrs["perm"], g.shapes[t.inputs[0]]
    groups = _groups(g.shapes[n.inputs[0]], g.shapes[n.outputs[0]])
    if groups is None or not all(_increasing_run([perm[k] for k in ia]) for ia, _ in groups):
        return False
    out_shape = g.shapes[n.outputs[0]]
    first = {perm[ia[0]]: jb for ia, jb in groups}  # inner axis that starts a group -> its output axes
    new_shape, where = [], {}
    for axis in range(len(inner)):
        for j in first.get(axis, []):
            where[j] = len(new_shape)
            new_shape.append(out_shape[j])
    new_perm = [where[j] for j in range(len(out_shape))]
    y = n.outputs[0]
    yi = g.fresh(f"{y}_t")
    g.shapes[yi], g.dtypes[yi] = tuple(new_shape), g.dtypes.get(y, np.dtype(np.float32))
    _as_reshape(g, n, t.inputs[0], yi, tuple(new_shape))
    g.nodes.insert(idx + 1, transpose_node(yi, y, new_perm, f"{n.name}/out_t"))
    return True


def pull_through_reshape(g: Graph, idx: int, n: Node, prod: dict[str, Node], cons: dict[str, list[Node]]) -> bool:
    """Reshape -> T(q)  ==>  T(q') -> Reshape', when the Reshape's input is itself a Transpose (they merge)."""
    above, users = prod.get(n.inputs[0]), cons.get(n.outputs[0], [])
    if above is None or above.op != "Transpose" or len(users) != 1 or users[0].op != "Transpose":
        return False
    if n.outputs[0] in g.outputs:
        return False
    t = users[0]
    q = t.attrs["perm"]
    groups = _groups(g.shapes[n.inputs[0]], g.shapes[n.outputs[0]])
    if groups is None:
        return False
    owner = {j: k for k, (_, jb) in enumerate(groups) for j in jb}
    order, pos = [], 0
    while pos < len(q):  # q must list each group's output axes together and in order
        ia, jb = groups[owner[q[pos]]]
        if q[pos:pos + len(jb)] != jb:
            return False
        order.extend(ia)
        pos += len(jb)
    x = n.inputs[0]
    xt = g.fresh(f"{x}_t")
    g.shapes[xt], g.dtypes[xt] = perm_shape(g.shapes[x], order), g.dtypes.get(x, np.dtype(np.float32))
    z = t.outputs[0]
    g.nodes.remove(t)
    _as_reshape(g, n, xt, z, g.shapes[z])
    g.nodes.insert(idx, transpose_node(x, xt, order, f"{n.name}/in_t"))
    return True




def flatten_into_weights(g: Graph) -> None:
    """T(p) -> Flatten to (N, K) -> Gemm/MatMul with constant weights: flatten the NHWC tensor directly and
    permute the weights' K rows instead (a classifier after conv features needs no transpose then)."""
    prod, cons = g.producers(), g.consumers()
    for n in g.nodes:
        t = prod.get(n.inputs[0]) if n.op in RESHAPES else None
        if t is None or t.op != "Transpose" or t.attrs["perm"][0] != 0 or n.outputs[0] in g.outputs:
            continue
        inner, out = g.shapes[t.inputs[0]], g.shapes.get(n.outputs[0], ())
        if len(out) != 2 or out[0] != inner[0]:
            continue
        users = cons.get(n.outputs[0], [])
        if not users or not all(_weights_of(g, u, n.outputs[0]) is not None for u in users):
            continue
        p_sub = [k - 1 for k in t.attrs["perm"][1:]]
        outer_sub = perm_shape(inner, t.attrs["perm"])[1:]
        idx = np.arange(out[1]).reshape(outer_sub).transpose(inverse(p_sub)).ravel()  # inner pos -> outer index
        for u in users:
            w, axis = _weights_of(g, u, n.outputs[0])
            name = g.fresh(f"{u.name}_nhwc_weights")
            g.consts[name] = np.ascontiguousarray(np.take(w, idx, axis=axis))
            g.shapes[name], g.dtypes[name] = w.shape, w.dtype
            u.inputs[1] = name
        n.inputs[0] = t.inputs[0]


def _weights_of(g: Graph, node: Node, x: str):
    """(constant weights, axis of K) when `node` multiplies x (its input 0) by constant 2-D weights."""
    if len(node.inputs) < 2 or node.inputs[0] != x or node.inputs[1] not in g.consts or node.inputs[1] == x:
        return None
    w = g.consts[node.inputs[1]]
    if w.ndim != 2:
        return None
    if node.op == "MatMul":
        return w, 0
    if node.op == "Gemm" and not int(node.attrs.get("transA", 0)):
        return w, 1 if int(node.attrs.get("transB", 0)) else 0
    return None
