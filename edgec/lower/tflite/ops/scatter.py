"""Element/coordinate indexing: GatherElements and GatherND (GATHER_ND), ScatterND / ScatterElements /
Scatter (SCATTER_ND + SELECT_V2 onto the data).

Elements ops become coordinate ops: each index gets the coordinates of its own position on the other axes
(constant grids CONCATENATEd with the index). Negative indices wrap by the axis size (FLOOR_MOD)."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as S

from edgec.lower.tflite.registry import LowerCtx, lowers

_DATA = {np.dtype(t) for t in (np.float32, np.int32, np.int64, np.int8, np.uint8, np.bool_)}


def _index_dtype(ctx: LowerCtx, i: int) -> None:
    if ctx.dtype(i) not in (np.dtype(np.int32), np.dtype(np.int64)):
        ctx.unsupported(f"indices dtype {ctx.dtype(i)}")


def _coords(ctx: LowerCtx, i: int, dims, axis: int | None, batch: int = 0) -> tuple[int, np.ndarray | None]:
    """int32 coordinates (..., q) from input i: axis None -> i is already coordinates over `dims` (GatherND,
    after `batch` leading batch axes); else i holds indices along `axis` and the other coordinates are
    the index's own position (elements ops). Returns (tensor, the constant value when it is one)."""
    ishape = ctx.shape(i)
    c = ctx.const(i)
    if axis is not None:
        grids = np.indices(ishape, dtype=np.int32)  # (rank, *ishape)
        if c is not None:
            grids[axis] = np.where(c < 0, c + dims[axis], c)
            if (grids[axis] < 0).any() or (grids[axis] >= dims[axis]).any():
                ctx.unsupported("an index is out of range")
            value = np.ascontiguousarray(np.moveaxis(grids, 0, -1))
            return ctx.constant(value, "coords"), value
        idx = _wrapped(ctx, ctx.input(i), ishape, ctx.dtype(i), np.array(dims[axis], np.int32).reshape((1,) * len(ishape)))
        parts = []
        for d in range(len(ishape)):
            if d == axis:
                t = ctx.temp(tuple(ishape) + (1,), np.int32, "index")
                ctx.emit("RESHAPE", [idx, ctx.constant(np.array(tuple(ishape) + (1,), np.int32), "ishape")], [t])
                parts.append(t)
            else:
                parts.append(ctx.constant(grids[d][..., None], f"grid{d}"))
        out = ctx.temp(tuple(ishape) + (len(ishape),), np.int32, "coords")
        opts = S.ConcatenationOptionsT()
        opts.axis = len(ishape)
        ctx.emit("CONCATENATION", parts, [out], opts)
        return out, None
    q = ishape[-1]
    sizes = np.array(dims[batch:batch + q], np.int64)
    bgrid = None
    if batch:
        bgrid = np.moveaxis(np.indices(ishape[:batch], dtype=np.int32), 0, -1)
        bgrid = np.broadcast_to(bgrid.reshape(ishape[:batch] + (1,) * (len(ishape) - 1 - batch) + (batch,)),
                                tuple(ishape[:-1]) + (batch,))
    if c is not None:
        v = np.where(c < 0, c + sizes, c)
        if (v < 0).any() or (v >= sizes).any():
            ctx.unsupported("an index is out of range")
        v = v.astype(np.int32)
        if bgrid is not None:
            v = np.concatenate([bgrid, v], -1)
        v = np.ascontiguousarray(v)
        return ctx.constant(v, "coords"), v
    idx = _wrapped(ctx, ctx.input(i), ishape, ctx.dtype(i), sizes.astype(np.int32).reshape((1,) * (len(ishape) - 1) + (q,)))
    if bgrid is None:
        return idx, None
    out = ctx.temp(tuple(ishape[:-1]) + (batch + q,), np.int32, "coords")
    opts = S.ConcatenationOptionsT()
    opts.axis = len(ishape) - 1
    ctx.emit("CONCATENATION", [ctx.constant(np.ascontiguousarray(bgrid), "batch_grid"), idx], [out], opts)
    return out, None


def _wrapped(ctx: LowerCtx, t: int, shape, dtype, size: np.ndarray) -> int:
    """int32 indices with negatives wrapped: FLOOR_MOD by the axis size."""
    if dtype != np.int32:
        c = ctx.temp(shape, np.int32, "indices_i32")
        ctx.emit("CAST", [t], [c], S.CastOptionsT())
        t = c
    w = ctx.temp(shape, np.int32, "wrapped")
    ctx.emit("FLOOR_MOD", [t, ctx.constant(size.astype(np.int32), "size")], [w], S.FloorModOptionsT())
    return w


@lowers("GatherND")
def gather_nd(ctx: LowerCtx) -> None:
    """GATHER_ND; batch_dims by prefixing each index with its batch coordinates."""
    _index_dtype(ctx, 1)
    if ctx.dtype(0) not in _DATA:
        ctx.unsupported(f"dtype {ctx.dtype(0)}")
    coords, _ = _coords(ctx, 1, ctx.shape(0), None, int(ctx.attr("batch_dims", 0)))
    ctx.emit("GATHER_ND", [ctx.input(0), coords], [ctx.output(0)])


@lowers("GatherElements")
def gather_elements(ctx: LowerCtx) -> None:
    """GATHER_ND with full coordinates (the index on `axis`, the element's own position elsewhere)."""
    _index_dtype(ctx, 1)
    if ctx.dtype(0) not in _DATA:
        ctx.unsupported(f"dtype {ctx.dtype(0)}")
    shape = ctx.shape(0)
    axis = int(ctx.attr("axis", 0))
    axis = axis + len(shape) if axis < 0 else axis
    coords, _ = _coords(ctx, 1, shape, axis)
    ctx.emit("GATHER_ND", [ctx.input(0), coords], [ctx.output(0)])


def _scatter(ctx: LowerCtx, coords: int, const_coords: np.ndarray | None, reduction: str) -> None:
    """out = data where no index points, else the update (combined with data by `reduction`)."""
    shape = ctx.shape(0)
    dtype = ctx.dtype(0)
    if dtype not in (np.dtype(np.float32), np.dtype(np.int32), np.dtype(np.int64)):
        ctx.unsupported(f"dtype {dtype}")
    if reduction not in ("none", "add", "mul", "max", "min"):
        ctx.unsupported(f"reduction='{reduction}'")
    q = ctx.b.tensors[coords].shape[-1]
    unique = None
    if const_coords is not None:
        flat = const_coords.reshape(-1, q)
        unique = len({tuple(r) for r in flat.tolist()}) == len(flat)
    if reduction != "add" and not unique and not (reduction == "none" and unique is None):
        ctx.unsupported(f"reduction='{reduction}' needs constant indices without duplicates (SCATTER_ND sums "
                        "duplicates)" if unique is None else f"duplicate indices with reduction='{reduction}'")
    dims = ctx.constant(np.array(shape, np.int32), "shape")
    scattered = ctx.temp(shape, dtype, "scattered")
    ctx.emit("SCATTER_ND", [coords, ctx.input(2), dims], [scattered])
    data = ctx.input(0)
    if reduction == "add":
        return ctx.emit("ADD", [data, scattered], [ctx.output(0)], S.AddOptionsT())
    if const_coords is not None:  # which positions an index points at
        hit = np.zeros(shape[:q], bool)
        hit[tuple(const_coords.reshape(-1, q).T)] = True
        mask = ctx.constant(hit.reshape(hit.shape + (1,) * (len(shape) - q)), "hit")
    else:  # runtime indices (unique, as ONNX requires for reduction 'none'): scatter ones, test > 0
        count = ctx.temp(shape, np.float32, "hits")
        ctx.emit("SCATTER_ND", [coords, ctx.constant(np.ones(ctx.shape(2), np.float32), "ones"), dims], [count])
        mask = ctx.temp(shape, np.bool_, "hit")
        ctx.emit("GREATER", [count, ctx.constant(np.zeros((1,) * len(shape), np.float32), "zero")], [mask])
    value = scattered
    if reduction != "none":
        code, opts = {"mul": ("MUL", S.MulOptionsT()), "max": ("MAXIMUM", S.MaximumMinimumOptionsT()),
                      "min": ("MINIMUM", S.MaximumMinimumOptionsT())}[reduction]
        value = ctx.temp(shape, dtype, "combined")
        ctx.emit(code, [data, scattered], [value], opts)
    ctx.emit("SELECT_V2", [mask, value, data], [ctx.output(0)])


@lowers("ScatterND")
def scatter_nd(ctx: LowerCtx) -> None:
    """SCATTER_ND of the updates, SELECT_V2 onto the data (reductions: add; mul/max/min on unique indices)."""
    _index_dtype(ctx, 1)
    coords, value = _coords(ctx, 1, ctx.shape(0), None)
    _scatter(ctx, coords, value, ctx.attr("reduction", "none"))


@lowers("ScatterElements", "Scatter")
def scatter_elements(ctx: LowerCtx) -> None:
    """As ScatterND on full coordinates (the index on `axis`, the element's own position elsewhere)."""
    _index_dtype(ctx, 1)
    shape = ctx.shape(0)
    axis = int(ctx.attr("axis", 0))
    axis = axis + len(shape) if axis < 0 else axis
    coords, value = _coords(ctx, 1, shape, axis)
    _scatter(ctx, coords, value, ctx.attr("reduction", "none"))
