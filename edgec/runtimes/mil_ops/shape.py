"""Shape, indexing and data-movement ops (tensor_transformation.py, tensor_operation.py,
scatter_gather.py in iOS15..iOS18)."""

from __future__ import annotations

import numpy as np

from . import mil_op
from ._util import axis_list, ints, scalar


@mil_op("reshape")
def reshape(x, shape):
    x = np.asarray(x)
    shape = ints(shape)
    if len(shape) == x.ndim:  # 0 copies the input dim only when the ranks match (op def)
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


@mil_op("reshape_like")
def reshape_like(x, ref_tensors, begins, ends, end_masks):
    x = np.asarray(x)
    out = []
    for ref, b, e, m in zip(ref_tensors, ints(begins), ints(ends), np.asarray(end_masks).reshape(-1)):
        shape = np.shape(ref)
        out.extend(shape[b:] if m else shape[b:e])
    return x.reshape(out)


@mil_op("transpose")
def transpose(x, perm):
    return np.transpose(np.asarray(x), ints(perm))


@mil_op("concat")
def concat(values, axis, interleave=False):
    values = [np.asarray(v) for v in values]
    axis = int(axis) % values[0].ndim
    if not interleave:
        return np.concatenate(values, axis=axis)
    # interleave: out[.., i*n + j, ..] = values[j][.., i, ..]
    stacked = np.stack(values, axis=axis + 1)
    shape = list(values[0].shape)
    shape[axis] *= len(values)
    return stacked.reshape(shape)


@mil_op("stack")
def stack(values, axis):
    return np.stack([np.asarray(v) for v in values], axis=int(axis))


@mil_op("split")
def split(x, axis, num_splits=None, split_sizes=None):
    x = np.asarray(x)
    axis = int(axis) % x.ndim
    if split_sizes is not None:
        bounds = np.cumsum(ints(split_sizes))[:-1]
        return tuple(np.split(x, bounds, axis=axis))
    n = int(num_splits)
    # uneven sizes: every chunk ceil(D/n) but the last (op def)
    size = -(-x.shape[axis] // n)
    bounds = [size * i for i in range(1, n)]
    return tuple(np.split(x, bounds, axis=axis))


@mil_op("slice_by_index")
def slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    x = np.asarray(x)
    r = x.ndim
    begin, end = ints(begin), ints(end)
    stride = ints(stride) if stride is not None else [1] * r
    bm = _mask(begin_mask, r)
    em = _mask(end_mask, r)
    sm = _mask(squeeze_mask, r)
    index = []
    for i in range(r):
        if sm[i]:
            index.append(begin[i])
            continue
        b = None if bm[i] else begin[i]
        e = None if em[i] else end[i]
        index.append(slice(b, e, stride[i]))
    return x[tuple(index)]


def _mask(m, r):
    return [False] * r if m is None else [bool(v) for v in np.asarray(m).reshape(-1)]


@mil_op("slice_by_size")
def slice_by_size(x, begin, size):
    x = np.asarray(x)
    index = []
    for b, s, d in zip(ints(begin), ints(size), x.shape):
        b = b % d if b < 0 else b
        index.append(slice(b, d if s == -1 else b + s))
    return x[tuple(index)]


@mil_op("slice_update")
def slice_update(x, update, begin, end, stride=None, begin_mask=None, end_mask=None, squeeze_mask=None):
    x = np.array(x, copy=True)
    r = x.ndim
    begin, end = ints(begin), ints(end)
    stride = ints(stride) if stride is not None else [1] * r
    bm, em, sm = _mask(begin_mask, r), _mask(end_mask, r), _mask(squeeze_mask, r)
    index = tuple(
        begin[i] if sm[i] else slice(None if bm[i] else begin[i], None if em[i] else end[i], stride[i]) for i in range(r)
    )
    x[index] = np.asarray(update).reshape(x[index].shape)
    return x


def _wrap(indices, dim):
    indices = np.asarray(indices).astype(np.int64)
    return np.where(indices < 0, indices + dim, indices)  # negative indices count from the end


@mil_op("gather")
def gather(x, indices, axis=0, batch_dims=0, validate_indices=False):
    x = np.asarray(x)
    axis = int(axis) % x.ndim
    idx = _wrap(indices, x.shape[axis])
    b = int(batch_dims)
    if b == 0:
        return np.take(x, idx, axis=axis)
    # batch_dims: leading dims shared by x and indices; gather per batch element
    bshape = x.shape[:b]
    xb = x.reshape((-1,) + x.shape[b:])
    ib = idx.reshape((-1,) + idx.shape[b:])
    out = np.stack([np.take(xb[i], ib[i], axis=axis - b) for i in range(xb.shape[0])])
    return out.reshape(bshape + out.shape[1:])


@mil_op("gather_along_axis")
def gather_along_axis(x, indices, axis=0, validate_indices=False):
    x = np.asarray(x)
    axis = int(axis) % x.ndim
    return np.take_along_axis(x, _wrap(indices, x.shape[axis]), axis=axis)


@mil_op("gather_nd")
def gather_nd(x, indices, batch_dims=0, validate_indices=False):
    x = np.asarray(x)
    idx = np.asarray(indices).astype(np.int64)
    b = int(batch_dims)
    bshape = x.shape[:b]
    xb = x.reshape((-1,) + x.shape[b:])
    ib = idx.reshape((-1,) + idx.shape[b:])
    outs = []
    for i in range(xb.shape[0]):
        k = ib[i].shape[-1]
        dims = np.array(xb[i].shape[:k])
        t = np.where(ib[i] < 0, ib[i] + dims, ib[i])
        outs.append(xb[i][tuple(np.moveaxis(t, -1, 0))])
    out = np.stack(outs)
    return out.reshape(bshape + out.shape[1:])


_SCATTER = {
    "update": None,
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "max": np.maximum,
    "min": np.minimum,
}


def _scatter_into(data, index, updates, mode):
    fn = _SCATTER[mode]
    if fn is None:
        data[index] = updates
    else:
        fn.at(data, index, updates)
    return data


@mil_op("scatter")
def scatter(data, indices, updates, axis=0, mode="add", validate_indices=False):
    data = np.array(data, copy=True)
    axis = int(axis) % data.ndim
    idx = _wrap(indices, data.shape[axis]).reshape(-1)
    moved = np.moveaxis(data, axis, 0)  # a view: writes land in `data`
    upd = np.asarray(updates).reshape((idx.size,) + moved.shape[1:])
    _scatter_into(moved, idx, upd, mode)
    return data


@mil_op("scatter_along_axis")
def scatter_along_axis(data, indices, updates, axis=0, mode="add", validate_indices=False):
    data = np.array(data, copy=True)
    axis = int(axis) % data.ndim
    idx = _wrap(indices, data.shape[axis])
    grids = list(np.indices(idx.shape, sparse=True))
    grids[axis] = idx
    return _scatter_into(data, tuple(grids), np.asarray(updates), mode)


@mil_op("scatter_nd")
def scatter_nd(data, indices, updates, mode="add", validate_indices=False):
    data = np.array(data, copy=True)
    idx = np.asarray(indices).astype(np.int64)
    k = idx.shape[-1]
    idx = np.where(idx < 0, idx + np.array(data.shape[:k]), idx)
    return _scatter_into(data, tuple(np.moveaxis(idx, -1, 0)), np.asarray(updates), mode)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


@mil_op("pad")
def pad(x, pad, mode="constant", constant_val=0.0):
    x = np.asarray(x)
    p = ints(pad)
    n = len(p) // 2  # pads apply to the last n dims
    widths = [(0, 0)] * (x.ndim - n) + [(p[2 * i], p[2 * i + 1]) for i in range(n)]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=np.asarray(constant_val).astype(x.dtype))
    return np.pad(x, widths, mode=_PAD_MODES[mode])


@mil_op("squeeze")
def squeeze(x, axes=None):
    x = np.asarray(x)
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=axis_list(axes, x.ndim))


@mil_op("expand_dims")
def expand_dims(x, axes):
    x = np.asarray(x)
    out_rank = x.ndim + len(ints(axes))
    for a in sorted(v % out_rank for v in ints(axes)):
        x = np.expand_dims(x, a)
    return x


@mil_op("flatten2d")
def flatten2d(x, axis=1):
    x = np.asarray(x)
    axis = int(axis) % (x.ndim + 1) if int(axis) < 0 else int(axis)
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


@mil_op("tile")
def tile(x, reps):
    return np.tile(np.asarray(x), ints(reps))


@mil_op("reverse")
def reverse(x, axes=None):
    x = np.asarray(x)
    return np.flip(x, axis=None if axes is None else axis_list(axes, x.ndim))


@mil_op("reverse_sequence")
def reverse_sequence(x, lengths, seq_axis=0, batch_axis=0):
    x = np.array(x, copy=True)
    seq_axis, batch_axis = int(seq_axis) % x.ndim, int(batch_axis) % x.ndim
    for b, n in enumerate(ints(lengths)):
        src = [slice(None)] * x.ndim
        src[batch_axis] = b
        src[seq_axis] = slice(0, n)
        x[tuple(src)] = np.flip(x[tuple(src)], axis=seq_axis - (1 if batch_axis < seq_axis else 0))
    return x


@mil_op("shape")
def shape(x):
    return np.array(np.shape(x), dtype=np.int32)


@mil_op("fill")
def fill(shape, value=0.0):
    return np.full(ints(shape), value)


@mil_op("fill_like")
def fill_like(ref_tensor, value=0.0):
    return np.full(np.shape(ref_tensor), value)


@mil_op("range_1d")
def range_1d(end, start, step):
    return np.arange(scalar(start), scalar(end), scalar(step))


@mil_op("one_hot")
def one_hot(indices, one_hot_vector_size, axis=-1, on_value=1, off_value=0):
    idx = np.asarray(indices).astype(np.int64)
    depth = int(scalar(one_hot_vector_size))
    hot = idx[..., None] == np.arange(depth)
    y = np.where(hot, on_value, off_value)
    return np.moveaxis(y, -1, int(axis) % y.ndim)


@mil_op("band_part")
def band_part(x, lower=-1, upper=-1):
    x = np.asarray(x)
    m, n = x.shape[-2:]
    i = np.arange(m)[:, None]
    j = np.arange(n)[None, :]
    keep = np.ones((m, n), dtype=bool)
    if int(lower) >= 0:
        keep &= (i - j) <= int(lower)
    if int(upper) >= 0:
        keep &= (j - i) <= int(upper)
    return np.where(keep, x, np.zeros((), x.dtype))


@mil_op("non_zero")
def non_zero(x):
    return np.argwhere(np.asarray(x)).astype(np.int32)


@mil_op("sliding_windows")
def sliding_windows(x, axis, size, stride=1):
    x = np.asarray(x)
    axis = int(axis) % x.ndim
    w = np.lib.stride_tricks.sliding_window_view(x, int(size), axis=axis)[
        (slice(None),) * axis + (slice(None, None, int(stride)),)
    ]
    # window elements go right after the window index
    return np.moveaxis(w, -1, axis + 1)
