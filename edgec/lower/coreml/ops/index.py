"""Indexing and generated tensors: GatherElements, GatherND, ScatterND, ScatterElements, OneHot, Trilu, CumSum,
TopK, Hardmax, Shape, Size, Range, ConstantOfShape, EyeLike, Expand, Tile.

Indices are int32 in CoreML; ONNX's negative indices are wrapped here (numpy for constants, select at run time)
so no MIL op has to accept them."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from onnx import TensorProto, helper

from edgec.lower.coreml.ops._util import first, like, need_const, need_shape, norm_axis
from edgec.lower.coreml.registry import MIL_DTYPE, Env, NodeView, lowers, to_mil_array


def _i32(values) -> np.ndarray:
    return np.array(list(values), dtype=np.int32)


def _wrapped(n: NodeView, env: Env, i: int, dims):
    """Input i (indices) with negatives counted from the end of `dims` (a scalar or a vector broadcast on the
    last axis)."""
    idx = n.const(i)
    dims_arr = np.asarray(dims, np.int64)
    if idx is not None:
        return np.where(idx < 0, idx + dims_arr, idx).astype(np.int32)
    raw = env.var(n, i)
    if n.dtype(i) not in (TensorProto.INT32, TensorProto.INT64, TensorProto.INT16, TensorProto.INT8, None):
        raw = mb.cast(x=raw, dtype="int32", name=env.tmp(n, f"idx{i}"))
    neg = mb.less(x=raw, y=np.int32(0), name=env.tmp(n, f"neg{i}"))
    plus = mb.add(x=raw, y=dims_arr.astype(np.int32), name=env.tmp(n, f"plus{i}"))
    return mb.select(cond=neg, a=plus, b=raw, name=env.tmp(n, f"wrap{i}"))


def _const_out(n: NodeView, value: np.ndarray) -> np.ndarray:
    """A lowering whose result is known here: a numpy constant (made a named const where it is used)."""
    return np.asarray(value)


# --- gather / scatter -------------------------------------------------------------------------------------

def _check_shapes(*idx):
    def check(n: NodeView) -> str | None:
        return first(*(need_shape(n, i) for i in idx))

    return check


@lowers("GatherElements", check=_check_shapes(0, 1))
def gather_elements(n: NodeView, env: Env):
    """gather_along_axis"""
    axis = norm_axis(int(n.attr("axis", 0)), len(n.shape(0)))
    idx = _wrapped(n, env, 1, n.shape(0)[axis])
    return mb.gather_along_axis(x=env.var(n, 0), indices=idx, axis=axis, name=env.out(n))


@lowers("GatherND", check=_check_shapes(0, 1))
def gather_nd(n: NodeView, env: Env):
    """gather_nd (batch_dims as MIL's iOS16 op)"""
    b = int(n.attr("batch_dims", 0))
    k = n.shape(1)[-1]
    idx = _wrapped(n, env, 1, n.shape(0)[b:b + k])
    kw = {"batch_dims": np.int32(b)} if b else {}
    return mb.gather_nd(x=env.var(n, 0), indices=idx, name=env.out(n), **kw)


_REDUCTION = {"none": "update", "add": "add", "mul": "mul", "max": "max", "min": "min"}


def _check_scatter(n: NodeView) -> str | None:
    why = _check_shapes(0, 1, 2)(n)
    if why:
        return why
    r = n.attr("reduction", "none")
    if r not in _REDUCTION:
        return f"reduction='{r}' has no CoreML scatter mode"
    if n.dtype(0) == TensorProto.BOOL:
        return "bool data: CoreML scatter takes fp16, fp32 and int32"
    return None


@lowers("ScatterND", check=_check_scatter)
def scatter_nd(n: NodeView, env: Env):
    """scatter_nd (reduction none/add/mul/max/min = mode update/add/mul/max/min)"""
    k = n.shape(1)[-1]
    idx = _wrapped(n, env, 1, n.shape(0)[:k])
    return mb.scatter_nd(data=env.var(n, 0), indices=idx, updates=env.var(n, 2),
                         mode=_REDUCTION[n.attr("reduction", "none")], name=env.out(n))


@lowers("ScatterElements", "Scatter", check=_check_scatter)
def scatter_elements(n: NodeView, env: Env):
    """scatter_along_axis (reduction as the mode)"""
    axis = norm_axis(int(n.attr("axis", 0)), len(n.shape(0)))
    idx = _wrapped(n, env, 1, n.shape(0)[axis])
    return mb.scatter_along_axis(data=env.var(n, 0), indices=idx, updates=env.var(n, 2), axis=axis,
                                 mode=_REDUCTION[n.attr("reduction", "none")], name=env.out(n))


def _check_onehot(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "depth"), need_const(n, 2, "values"))
    if why:
        return why
    if n.const(2).size != 2:
        return "values must hold [off_value, on_value]"
    return None


@lowers("OneHot", check=_check_onehot)
def one_hot(n: NodeView, env: Env):
    """one_hot (indices truncated to int32 and wrapped; on/off values from the constant)"""
    depth = int(n.const(1).reshape(-1)[0])
    values = to_mil_array(n.const(2).reshape(-1))
    idx = _wrapped(n, env, 0, depth)
    axis = int(n.attr("axis", -1))
    return mb.one_hot(indices=idx, one_hot_vector_size=np.int32(depth), axis=axis, on_value=values[1],
                      off_value=values[0], name=env.out(n))


def _check_hardmax(n: NodeView) -> str | None:
    return need_shape(n, 0)


@lowers("Hardmax", check=_check_hardmax)
def hardmax(n: NodeView, env: Env):
    """one_hot(reduce_argmax) (the first maximum wins, as in ONNX); opset < 13 flattens at axis"""
    shape = n.shape(0)
    rank = len(shape)
    opset = env.graph.opset
    axis = norm_axis(int(n.attr("axis", -1 if opset >= 13 else 1)), rank)
    x = env.var(n, 0)
    work = shape
    if opset < 13 and axis != rank - 1:
        work = [int(np.prod(shape[:axis])), int(np.prod(shape[axis:]))]
        x = mb.reshape(x=x, shape=_i32(work), name=env.tmp(n, "flat"))
        axis = 1
    arg = mb.reduce_argmax(x=x, axis=axis, keep_dims=False, name=env.tmp(n, "arg"))
    y = mb.one_hot(indices=arg, one_hot_vector_size=np.int32(work[axis]), axis=axis, on_value=like(x, 1),
                   off_value=like(x, 0), name=env.out(n) if work is shape else env.tmp(n, "hot"))
    return y if work is shape else mb.reshape(x=y, shape=_i32(shape), name=env.out(n))


# --- masks, scans, sorting ----------------------------------------------------------------------------------

def _check_trilu(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "k"))
    if why:
        return why
    return None if len(n.shape(0)) >= 2 else "input rank < 2"


@lowers("Trilu", check=_check_trilu)
def trilu(n: NodeView, env: Env):
    """select with a constant triangular mask (k from the constant input)"""
    k = int(n.const(1).reshape(-1)[0]) if n.has(1) else 0
    rows, cols = n.shape(0)[-2:]
    ones = np.ones((rows, cols), bool)
    mask = np.triu(ones, k) if int(n.attr("upper", 1)) else np.tril(ones, k)
    x = env.var(n, 0)
    return mb.select(cond=mask, a=x, b=like(x, 0), name=env.out(n))


def _check_cumsum(n: NodeView) -> str | None:
    return first(need_shape(n, 0), need_const(n, 1, "axis"))


@lowers("CumSum", check=_check_cumsum)
def cumsum(n: NodeView, env: Env):
    """cumsum (exclusive / reverse as MIL's flags)"""
    axis = norm_axis(int(n.const(1).reshape(-1)[0]), len(n.shape(0)))
    return mb.cumsum(x=env.var(n, 0), axis=axis, exclusive=bool(n.attr("exclusive", 0)),
                     reverse=bool(n.attr("reverse", 0)), name=env.out(n))


def _check_topk(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "K"))
    if why:
        return why
    if n.dtype(0) == TensorProto.FLOAT16:
        return "float16 input: CoreML iOS16 topk takes fp32 and int32"
    return None


@lowers("TopK", check=_check_topk)
def topk(n: NodeView, env: Env):
    """topk (largest=0 is ascending; ties keep the lower index first, as ONNX requires)"""
    rank = len(n.shape(0))
    if n.has(1):
        k = int(n.const(1).reshape(-1)[0])
    else:  # opset 1: attribute
        k = int(n.attr("k"))
    axis = norm_axis(int(n.attr("axis", -1)), rank)
    values, indices = mb.topk(x=env.var(n, 0), k=np.int32(k), axis=np.int32(axis),
                              ascending=not bool(n.attr("largest", 1)), name=env.out(n))
    return [values, indices]


# --- generated tensors ---------------------------------------------------------------------------------------

@lowers("Shape", check=lambda n: need_shape(n, 0))
def shape(n: NodeView, env: Env):
    """a constant (static shapes), start/end as Python slicing (ONNX clamps the same way)"""
    dims = n.shape(0)
    start, end = n.attr("start", 0), n.attr("end")
    return _const_out(n, np.array(dims[start:end] if end is not None else dims[start:], np.int64))


@lowers("Size", check=lambda n: need_shape(n, 0))
def size(n: NodeView, env: Env):
    """a constant (static shapes)"""
    return _const_out(n, np.array(int(np.prod(n.shape(0))), np.int64))


def _check_range(n: NodeView) -> str | None:
    if all(n.const(i) is not None for i in range(3)):
        return None
    if n.out_shape(0) is None:
        return "start/limit/delta are computed at run time and the output length is unknown"
    return None


@lowers("Range", check=_check_range)
def range_(n: NodeView, env: Env):
    """a constant when start/limit/delta are; else start + delta * [0, 1, ..., N-1] with the inferred length N"""
    vals = [n.const(i) for i in range(3)]
    if all(v is not None for v in vals):
        start, limit, delta = (v.reshape(()) for v in vals)
        count = max(int(np.ceil((limit - start) / delta)), 0)
        return _const_out(n, (start + np.arange(count, dtype=start.dtype) * delta).astype(start.dtype))
    count = n.out_shape(0)[0]
    start, delta = env.var(n, 0), env.var(n, 2)
    steps = mb.mul(x=like(start, np.arange(count)), y=delta, name=env.tmp(n, "steps"))
    return mb.add(x=start, y=steps, name=env.out(n))


def _check_constant_of_shape(n: NodeView) -> str | None:
    why = need_const(n, 0, "the shape") if n.out_shape(0) is None else None
    if why:
        return why
    value = n.attr("value")
    if value is not None and value.data_type not in MIL_DTYPE:
        return f"value of type {TensorProto.DataType.Name(value.data_type)}"
    return None


@lowers("ConstantOfShape", check=_check_constant_of_shape)
def constant_of_shape(n: NodeView, env: Env):
    """a constant (the shape input is constant, or the output shape is static, which fixes its value)"""
    from onnx import numpy_helper

    value = n.attr("value")
    fill = numpy_helper.to_array(value).reshape(-1)[0] if value is not None else np.float32(0)
    dims = [int(d) for d in n.const(0).reshape(-1)] if n.const(0) is not None else n.out_shape(0)
    return _const_out(n, np.full(dims, fill, dtype=np.asarray(fill).dtype))


@lowers("EyeLike", check=lambda n: need_shape(n, 0))
def eye_like(n: NodeView, env: Env):
    """a constant identity-like matrix (shape from the input, dtype from `dtype` or the input)"""
    rows, cols = n.shape(0)
    elem = int(n.attr("dtype", n.dtype(0) or TensorProto.FLOAT))
    return _const_out(n, np.eye(rows, cols, k=int(n.attr("k", 0)), dtype=helper.tensor_dtype_to_np_dtype(elem)))


def _check_expand(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "the shape"))
    if why:
        return why
    try:
        np.broadcast_shapes(tuple(n.shape(0)), tuple(int(d) for d in n.const(1).reshape(-1)))
    except ValueError:
        return "shape does not broadcast with the input"
    return None


@lowers("Expand", check=_check_expand)
def expand(n: NodeView, env: Env):
    """tile (after a reshape to the output rank) on the axes that grow"""
    src = list(n.shape(0))
    out = list(np.broadcast_shapes(tuple(src), tuple(int(d) for d in n.const(1).reshape(-1))))
    x = env.var(n, 0)
    full = [1] * (len(out) - len(src)) + src
    reps = [o // s for o, s in zip(out, full)]
    if full != src:
        x = mb.reshape(x=x, shape=_i32(full), name=env.tmp(n, "rank") if any(r != 1 for r in reps) else env.out(n))
    if all(r == 1 for r in reps):
        return x if full != src else mb.identity(x=x, name=env.out(n))
    return mb.tile(x=x, reps=_i32(reps), name=env.out(n))


def _check_tile(n: NodeView) -> str | None:
    return first(need_shape(n, 0), need_const(n, 1, "repeats"))


@lowers("Tile", check=_check_tile)
def tile(n: NodeView, env: Env):
    """tile"""
    return mb.tile(x=env.var(n, 0), reps=_i32(int(r) for r in n.const(1).reshape(-1)), name=env.out(n))
