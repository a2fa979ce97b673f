"""Less common ops composed from plain TFLite ops: Compress (GATHER), CenterCropPad (STRIDED_SLICE + PAD),
CumProd (masked REDUCE_PROD), Einsum (TRANSPOSE/RESHAPE around BATCH_MATMUL / SUM), DFT (one
FULLY_CONNECTED with the constant DFT matrix)."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.ops._util import const_output
from edgec.lower.tflite.registry import LowerCtx, lowers


def _axis(a: int, rank: int) -> int:
    return a + rank if a < 0 else a


def _op(ctx: LowerCtx, code: str, ins, shape, tag: str, opts=None, dtype=None, out=None) -> int:
    t = ctx.temp(tuple(int(d) for d in shape), dtype or ctx.dtype(0), tag) if out is None else out
    ctx.emit(code, list(ins), [t], opts)
    return t


def _reshape(ctx: LowerCtx, x: int, shape, tag: str, dtype=None, out=None) -> int:
    return _op(ctx, "RESHAPE", [x, ctx.constant(np.array(shape, np.int32), f"{tag}_shape")], shape, tag, dtype=dtype,
               out=out)


def _transpose(ctx: LowerCtx, x: int, shape, perm, tag: str, dtype=None, out=None) -> tuple[int, tuple]:
    new = tuple(shape[p] for p in perm)
    if list(perm) == sorted(perm):
        return (x if out is None else _reshape(ctx, x, new, tag, dtype, out)), new
    return _op(ctx, "TRANSPOSE", [x, ctx.constant(np.array(perm, np.int32), f"{tag}_perm")], new, tag,
               S.TransposeOptionsT(), dtype, out), new


@lowers("Compress")
def compress(ctx: LowerCtx) -> None:
    """GATHER of the positions a constant condition selects (flattened first when no axis)."""
    cond = ctx.const(1)
    if cond is None:
        ctx.unsupported(f"condition (input '{ctx.node.inputs[1]}') must be a constant (the output size depends on it)")
    idx = np.flatnonzero(np.asarray(cond).reshape(-1)).astype(np.int32)
    shape = ctx.shape(0)
    x = ctx.input(0)
    if "axis" in ctx.node.attrs:
        axis = _axis(int(ctx.attr("axis")), len(shape))
        idx = idx[idx < shape[axis]]
    else:
        x = _reshape(ctx, x, (int(np.prod(shape)),), "flat")
        axis = 0
        idx = idx[idx < int(np.prod(shape))]
    if not idx.size:
        ctx.unsupported("the result is empty (TFLite tensors cannot have a zero dimension)")
    opts = S.GatherOptionsT()
    opts.axis = axis
    ctx.emit("GATHER", [x, ctx.constant(idx, "indices")], [ctx.output(0)], opts)


@lowers("CenterCropPad")
def center_crop_pad(ctx: LowerCtx) -> None:
    """STRIDED_SLICE the centred window of the axes that shrink, PAD the ones that grow (centred, extra
    element at the end as the reference does)."""
    shape = ctx.shape(0)
    rank = len(shape)
    target = ctx.const(1)
    if target is None:
        ctx.unsupported(f"shape (input '{ctx.node.inputs[1]}') must be a constant")
    axes = [_axis(int(a), rank) for a in ctx.attr("axes", range(rank))]
    begin, end, pads = [0] * rank, list(shape), np.zeros((rank, 2), np.int32)
    for a, t in zip(axes, np.asarray(target).reshape(-1).tolist()):
        n = shape[a]
        if t < n:
            begin[a] = (n - t) // 2
            end[a] = begin[a] + t
        elif t > n:
            pads[a] = ((t - n) // 2, t - n - (t - n) // 2)
    x = ctx.input(0)
    cropped = tuple(e - b for b, e in zip(begin, end))
    if cropped != tuple(shape):
        out = ctx.output(0) if not pads.any() else None
        x = _op(ctx, "STRIDED_SLICE", [x, ctx.constant(np.array(begin, np.int32), "begin"),
                                       ctx.constant(np.array(end, np.int32), "end"),
                                       ctx.constant(np.ones(rank, np.int32), "strides")], cropped, "cropped",
                S.StridedSliceOptionsT(), out=out)
    if pads.any():
        return ctx.emit("PAD", [x, ctx.constant(pads, "paddings")], [ctx.output(0)], S.PadOptionsT())
    if cropped == tuple(shape):
        ctx.alias(0, x)


@lowers("CumProd")
def cumprod(ctx: LowerCtx) -> None:
    """REDUCE_PROD over a (n, n) triangle: x broadcast to (..., n, n), 1 where a term is excluded."""
    dtype = ctx.dtype(0)
    if dtype not in (np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64)):
        ctx.unsupported(f"dtype {dtype}")
    axis_v = ctx.const(1)
    if axis_v is None:
        ctx.unsupported(f"axis (input '{ctx.node.inputs[1]}') must be a constant")
    shape = ctx.shape(0)
    rank = len(shape)
    axis = _axis(int(np.asarray(axis_v).reshape(-1)[0]), rank)
    n = shape[axis]
    if n > 512:
        ctx.unsupported(f"axis of {n} elements (the triangle would hold {n * n})")
    perm = [*range(axis), *range(axis + 1, rank), axis]
    x, moved = _transpose(ctx, ctx.input(0), shape, perm, "axis_last")
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    excl, rev = int(ctx.attr("exclusive", 0)), int(ctx.attr("reverse", 0))
    keep = (j > i if excl else j >= i) if rev else (j < i if excl else j <= i)
    x2 = _reshape(ctx, x, moved[:-1] + (1, n), "row")
    full = moved[:-1] + (n, n)
    terms = _op(ctx, "SELECT_V2", [ctx.constant(keep.reshape((1,) * (len(moved) - 1) + (n, n)), "triangle"), x2,
                                   ctx.constant(np.ones((1,) * (len(moved) + 1), dtype), "one")], full, "terms")
    red = S.ReducerOptionsT()
    red.keepDims = False
    back = [perm.index(k) for k in range(rank)]
    out = ctx.output(0) if axis == rank - 1 else None
    y = _op(ctx, "REDUCE_PROD", [terms, ctx.constant(np.array([len(moved)], np.int32), "last")], moved, "prod", red,
            out=out)
    if out is None:
        _transpose(ctx, y, moved, back, "back", out=ctx.output(0))


def _parse_einsum(eq: str, ranks: list[int]) -> tuple[list[str], str]:
    """Terms and output with '...' spelled out (spare capital letters, aligned from the right)."""
    eq = eq.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    used = set("".join(terms).replace(".", ""))
    spare = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    ks = [r - (len(t) - 3) if "..." in t else 0 for t, r in zip(terms, ranks)]
    ell = "".join(spare[:max(ks, default=0)])
    terms = [t.replace("...", ell[len(ell) - k:]) for t, k in zip(terms, ks)]
    if not arrow:  # implicit output: the ellipsis, then the letters seen once, sorted
        joined = "".join(terms)
        rhs = ell + "".join(sorted(c for c in set(joined) if joined.count(c) == 1 and c not in ell))
    else:
        rhs = rhs.replace("...", ell)
    return terms, rhs


@lowers("Einsum")
def einsum(ctx: LowerCtx) -> None:
    """One or two operands without repeated letters in a term: summed-out letters by SUM, the rest by
    TRANSPOSE/RESHAPE to (batch, m, k) x (batch, k, n) around one BATCH_MATMUL."""
    n_in = len([i for i in ctx.node.inputs if i])
    if n_in > 2:
        ctx.unsupported(f"{n_in} operands (one or two are lowered)")
    dtype = ctx.dtype(0)
    if dtype not in (np.dtype(np.float32),):
        ctx.unsupported(f"dtype {dtype} (float32 only)")
    shapes = [tuple(ctx.shape(i)) for i in range(n_in)]
    terms, rhs = _parse_einsum(ctx.attr("equation"), [len(s) for s in shapes])
    if any(len(set(t)) != len(t) for t in terms) or len(set(rhs)) != len(rhs):
        ctx.unsupported("a repeated index in one term (a diagonal)")
    sizes = {}
    for t, s in zip(terms, shapes):
        for c, d in zip(t, s):
            if sizes.setdefault(c, d) != d:
                ctx.unsupported(f"index '{c}' has sizes {sizes[c]} and {d} (broadcasting is not lowered)")
    ops = [(ctx.input(i), terms[i], shapes[i]) for i in range(n_in)]
    # letters only one operand has and the output drops: summed right away
    for k, (x, t, s) in enumerate(ops):
        others = "".join(o[1] for j, o in enumerate(ops) if j != k) + rhs
        drop = [i for i, c in enumerate(t) if c not in others]
        if drop:
            red = S.ReducerOptionsT()
            red.keepDims = False
            ns = tuple(d for i, d in enumerate(s) if i not in drop)
            x = _op(ctx, "SUM", [x, ctx.constant(np.array(drop, np.int32), "axes")], ns, f"sum{k}", red)
            ops[k] = (x, "".join(c for i, c in enumerate(t) if i not in drop), ns)
    out_shape = tuple(sizes[c] for c in rhs)
    if n_in == 1:
        x, t, s = ops[0]
        return _transpose(ctx, x, s, [t.index(c) for c in rhs], "out", out=ctx.output(0)) and None
    (a, ta, sa), (b, tb, sb) = ops
    batch = [c for c in rhs if c in ta and c in tb]
    contract = [c for c in ta if c in tb and c not in rhs]
    m_l = [c for c in ta if c not in tb]
    n_l = [c for c in tb if c not in ta]
    size = lambda ls: int(np.prod([sizes[c] for c in ls])) if ls else 1  # noqa: E731
    a, _ = _transpose(ctx, a, sa, [ta.index(c) for c in batch + m_l + contract], "a_t")
    b, _ = _transpose(ctx, b, sb, [tb.index(c) for c in batch + contract + n_l], "b_t")
    B, M, K, N = size(batch), size(m_l), size(contract), size(n_l)
    a = _reshape(ctx, a, (B, M, K), "a3")
    b = _reshape(ctx, b, (B, K, N), "b3")
    y = _op(ctx, "BATCH_MATMUL", [a, b], (B, M, N), "product", S.BatchMatMulOptionsT())
    order = batch + m_l + n_l
    y = _reshape(ctx, y, tuple(sizes[c] for c in order), "unflat")
    _transpose(ctx, y, tuple(sizes[c] for c in order), [order.index(c) for c in rhs], "out", out=ctx.output(0))
    del out_shape


def _dft_matrix(n_in: int, c: int, N: int, inverse: bool, onesided: bool) -> np.ndarray:
    """(n_in * c, K * c_out): the reference DFT of every basis input (real / interleaved complex)."""
    eye = np.eye(n_in * c).reshape(n_in * c, n_in, c)
    sig = eye[..., 0] + (1j * eye[..., 1] if c == 2 else 0)
    if inverse and onesided:
        y = np.fft.irfft(sig, n=N, axis=-1)[..., None]
    elif inverse:
        f = np.fft.ifft(sig, n=N, axis=-1)
        y = np.stack([f.real, f.imag], -1)
    else:
        f = np.fft.fft(sig, n=N, axis=-1)
        if onesided:
            f = f[:, :N // 2 + 1]
        y = np.stack([f.real, f.imag], -1)
    return y.reshape(n_in * c, -1)


@lowers("DFT")
def dft(ctx: LowerCtx) -> None:
    """FULLY_CONNECTED with the constant DFT matrix over the (axis, real/imag) pair, the axis moved last."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")
    shape = ctx.shape(0)
    rank = len(shape)
    if ctx.opset >= 20:
        av = ctx.const(2) if ctx.has_input(2) else np.array(-2)
        if av is None:
            ctx.unsupported(f"axis (input '{ctx.node.inputs[2]}') must be a constant")
        axis = _axis(int(np.asarray(av).reshape(-1)[0]), rank)
    else:
        axis = _axis(int(ctx.attr("axis", 1)), rank)
    if axis == rank - 1:
        ctx.unsupported("axis is the real/imaginary axis")
    inverse, onesided = bool(ctx.attr("inverse", 0)), bool(ctx.attr("onesided", 0))
    n_in, c = shape[axis], shape[-1]
    if ctx.has_input(1):
        lv = ctx.const(1)
        if lv is None:
            ctx.unsupported(f"dft_length (input '{ctx.node.inputs[1]}') must be a constant")
        N = int(np.asarray(lv).reshape(-1)[0])
    else:
        N = 2 * (n_in - 1) if inverse and onesided else n_in
    out = ctx.out_shape(0)
    mat = _dft_matrix(n_in, c, N, inverse, onesided).astype(np.float32)
    K, c_out = out[axis], out[-1]
    if mat.shape[1] != K * c_out or n_in * c > 4096 or K * c_out > 8192:
        ctx.unsupported(f"DFT of {n_in} -> {K} points is not lowered here")
    perm = [*[i for i in range(rank - 1) if i != axis], axis, rank - 1]
    x, moved = _transpose(ctx, ctx.input(0), shape, perm, "axis_last")
    rows = int(np.prod(moved[:-2]))
    x = _reshape(ctx, x, (rows, n_in * c), "rows")
    fc = S.FullyConnectedOptionsT()
    y = _op(ctx, "FULLY_CONNECTED", [x, ctx.constant(np.ascontiguousarray(mat.T), "dft"), -1], (rows, K * c_out),
            "spectrum", fc)
    ymoved = moved[:-2] + (K, c_out)
    y = _reshape(ctx, y, ymoved, "unflat")
    back = [perm.index(i) for i in range(rank)]
    _transpose(ctx, y, ymoved, back, "back", out=ctx.output(0))


def _reference_value(ctx: LowerCtx, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """ONNX's reference implementation of this node on constant inputs (build-time values)."""
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    attrs = {k: v for k, v in ctx.node.attrs.items()}
    node = helper.make_node(ctx.node.op, list(inputs), ["y"], **attrs)
    graph = helper.make_graph([node], "c", [], [helper.make_tensor_value_info("y", onnx.TensorProto.UNDEFINED, None)],
                              [numpy_helper.from_array(np.asarray(v), k) for k, v in inputs.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", max(ctx.opset, 17))])
    return np.asarray(ReferenceEvaluator(model).run(None, {})[0])


@lowers("HannWindow", "HammingWindow", "BlackmanWindow")
def window(ctx: LowerCtx) -> None:
    """A constant: the window of the output's static length (ONNX's reference formula)."""
    n = ctx.out_shape(0)[0]
    size = ctx.const(0)
    if size is not None and int(np.asarray(size).reshape(-1)[0]) != n:
        ctx.unsupported(f"size {int(np.asarray(size).reshape(-1)[0])} differs from the output length {n}")
    const_output(ctx, 0, _reference_value(ctx, {"size": np.array(n, ctx.dtype(0))}))


@lowers("ReverseSequence")
def reverse_sequence(ctx: LowerCtx) -> None:
    """REVERSE_SEQUENCE (sequence lengths as int32/int64)."""
    if ctx.dtype(1) not in (np.dtype(np.int32), np.dtype(np.int64)):
        ctx.unsupported(f"sequence_lens dtype {ctx.dtype(1)}")
    opts = S.ReverseSequenceOptionsT()
    opts.seqDim, opts.batchDim = int(ctx.attr("time_axis", 0)), int(ctx.attr("batch_axis", 1))
    ctx.emit("REVERSE_SEQUENCE", [ctx.input(0), ctx.input(1)], [ctx.output(0)], opts)


@lowers("TensorScatter")
def tensor_scatter(ctx: LowerCtx) -> None:
    """KV-cache write: each cache slot s reads update[s - w[b]] (mod S when circular) where that falls in
    the update, else keeps the past: a batched GATHER of the update and a SELECT_V2."""
    shape, ushape = ctx.shape(0), ctx.shape(1)
    rank = len(shape)
    axis = _axis(int(ctx.attr("axis", -2)), rank)
    if axis == 0:
        ctx.unsupported("axis 0 (the batch axis carries the write indices)")
    Bn, S_, U = shape[0], shape[axis], ushape[axis]
    s = ctx.constant(np.arange(S_, dtype=np.int32).reshape(1, S_), "slots")
    if ctx.has_input(2):
        w = ctx.input(2)
        if ctx.dtype(2) != np.int32:
            w = _op(ctx, "CAST", [w], (Bn,), "w_i32", S.CastOptionsT(), dtype=np.int32)
        w = _reshape(ctx, w, (Bn, 1), "w_col", dtype=np.int32)
    else:
        w = ctx.constant(np.zeros((Bn, 1), np.int32), "w_zero")
    d = _op(ctx, "SUB", [s, w], (Bn, S_), "offset", S.SubOptionsT(), dtype=np.int32)
    if ctx.attr("mode", "linear") == "circular":
        d = _op(ctx, "FLOOR_MOD", [d, ctx.constant(np.array([[S_]], np.int32), "S")], (Bn, S_), "wrapped",
                S.FloorModOptionsT(), dtype=np.int32)
    elif ctx.attr("mode", "linear") != "linear":
        ctx.unsupported(f"mode='{ctx.attr('mode')}'")
    lo = _op(ctx, "GREATER_EQUAL", [d, ctx.constant(np.zeros((1, 1), np.int32), "zero")], (Bn, S_), "ge0",
             dtype=np.bool_)
    hi = _op(ctx, "LESS", [d, ctx.constant(np.array([[U]], np.int32), "U")], (Bn, S_), "ltU", dtype=np.bool_)
    hit = _op(ctx, "LOGICAL_AND", [lo, hi], (Bn, S_), "hit", dtype=np.bool_)
    safe = _op(ctx, "SELECT_V2", [hit, d, ctx.constant(np.zeros((1, 1), np.int32), "zero_i")], (Bn, S_), "src",
               dtype=np.int32)
    g = S.GatherOptionsT()
    g.axis, g.batchDims = axis, 1
    gathered = _op(ctx, "GATHER", [ctx.input(1), safe], shape, "gathered", g)
    mshape = (Bn,) + (1,) * (axis - 1) + (S_,) + (1,) * (rank - axis - 1)
    mask = _reshape(ctx, hit, mshape, "hit_b", dtype=np.bool_)
    ctx.emit("SELECT_V2", [mask, gathered, ctx.input(0)], [ctx.output(0)])


@lowers("Col2Im")
def col2im(ctx: LowerCtx) -> None:
    """A linear map per (sample, channel): one FULLY_CONNECTED with the constant matrix ONNX's reference
    Col2Im gives on the basis columns (overlaps summed, pads cropped, strides and dilations included)."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")
    image, block = ctx.const(1), ctx.const(2)
    if image is None or block is None:
        ctx.unsupported("image_shape and block_shape must be constants")
    N, CB, L = ctx.shape(0)
    nb = int(np.prod(block))
    if CB % nb:
        ctx.unsupported(f"{CB} rows do not split into blocks of {nb}")
    C, K, P = CB // nb, nb * L, int(np.prod(image))
    if K * P > 1 << 22:
        ctx.unsupported(f"the {P} x {K} scatter matrix is too large")
    basis = np.eye(K, dtype=np.float32).reshape(K, nb, L)
    m = _reference_value(ctx, {"input": basis, "image_shape": np.asarray(image, np.int64),
                               "block_shape": np.asarray(block, np.int64)}).reshape(K, P)
    x = _reshape(ctx, ctx.input(0), (N * C, K), "cols")
    y = _op(ctx, "FULLY_CONNECTED", [x, ctx.constant(np.ascontiguousarray(m.T.astype(np.float32)), "scatter"), -1],
            (N * C, P), "image", S.FullyConnectedOptionsT())
    _reshape(ctx, y, ctx.out_shape(0), "y", out=ctx.output(0))


@lowers("AffineGrid")
def affine_grid(ctx: LowerCtx) -> None:
    """grid = [x, y, (z,) 1] @ theta^T: one BATCH_MATMUL of the constant normalized base grid with theta."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")
    size = ctx.const(1)
    if size is None:
        ctx.unsupported(f"size (input '{ctx.node.inputs[1]}') must be a constant")
    size = [int(v) for v in np.asarray(size).reshape(-1)]
    N, spatial = size[0], size[2:]
    align = int(ctx.attr("align_corners", 0))

    def axis(n: int) -> np.ndarray:
        if align:
            return np.linspace(-1, 1, n) if n > 1 else np.zeros(1)
        return (np.arange(n) * 2 + 1) / n - 1

    grids = np.meshgrid(*[axis(n) for n in spatial], indexing="ij")  # (D,) H, W order
    coords = [g.reshape(-1) for g in grids[::-1]]  # x (W) first, then y (H), then z (D)
    base = np.stack(coords + [np.ones_like(coords[0])], -1).astype(np.float32)  # (P, r + 1)
    P, r = base.shape[0], len(spatial)
    mm = S.BatchMatMulOptionsT()
    mm.adjY = True
    y = _op(ctx, "BATCH_MATMUL", [ctx.constant(base[None], "base"), ctx.input(0)], (N, P, r), "grid", mm)
    _reshape(ctx, y, ctx.out_shape(0), "y", out=ctx.output(0))


@lowers("GridSample")
def grid_sample(ctx: LowerCtx) -> None:
    """With a constant grid, sampling (any mode and padding) is linear in X: per sample one BATCH_MATMUL with
    the matrix ONNX's reference GridSample gives on the basis images. A grid computed at run time is refused."""
    if ctx.dtype(0) != np.float32:
        ctx.unsupported(f"dtype {ctx.dtype(0)} (float32 only)")
    grid = ctx.const(1)
    if grid is None:
        ctx.unsupported(f"Grid (input '{ctx.node.inputs[1]}') is computed at run time (a constant grid is lowered)")
    shape, out = ctx.shape(0), ctx.out_shape(0)
    N, C = shape[:2]
    K, P = int(np.prod(shape[2:])), int(np.prod(out[2:]))
    if K * P * N > 1 << 22:
        ctx.unsupported(f"the {P} x {K} sampling matrices are too large")
    basis = np.eye(K, dtype=np.float32).reshape((K, 1) + tuple(shape[2:]))
    mats = []
    for n in range(N):
        g = np.repeat(np.asarray(grid[n:n + 1], np.float32), K, axis=0)
        mats.append(_reference_value(ctx, {"X": basis, "Grid": g}).reshape(K, P))
    m = np.stack(mats).astype(np.float32)  # (N, K, P)
    x = _reshape(ctx, ctx.input(0), (N, C, K), "flat")
    y = _op(ctx, "BATCH_MATMUL", [x, ctx.constant(m, "sampling")], (N, C, P), "sampled", S.BatchMatMulOptionsT())
    _reshape(ctx, y, out, "y", out=ctx.output(0))
