"""Shape and data-movement ops: Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Concat, Split, Slice,
Gather, Pad, DepthToSpace, SpaceToDepth, Cast, Identity/Dropout, Constant."""

from __future__ import annotations

import numpy as np
from coremltools.converters.mil.mil import Builder as mb
from coremltools.converters.mil.mil import types
from onnx import TensorProto

from edgec.lower.coreml.ops._util import first, need_const, need_shape, norm_axis
from edgec.lower.coreml.registry import MIL_DTYPE, Env, NodeView, lowers


def _i32(values) -> np.ndarray:
    return np.array(list(values), dtype=np.int32)


def _axes(n: NodeView, input_index: int) -> list[int] | None:
    """Axes from the input (newer opsets) or the attribute (older ones); None when absent."""
    if n.has(input_index):
        return [int(a) for a in n.const(input_index).reshape(-1)]
    a = n.attr("axes")
    return None if a is None else [int(v) for v in a]


@lowers("Constant")
def constant(n: NodeView, env: Env):
    """folded at load time (becomes a named const where used)"""
    return env.graph.consts[n.outputs[0]]


def _training(n: NodeView) -> bool:
    return n.op == "Dropout" and n.has(2) and bool(n.const(2).reshape(-1)[0])


def _check_identity(n: NodeView) -> str | None:
    if n.op != "Dropout":
        return None
    if n.has(2) and n.const(2) is None:
        return "training_mode must be a constant"
    if _training(n):
        ratio = n.const(1) if n.has(1) else np.array(0.5)
        if ratio is None or float(ratio.reshape(-1)[0]) != 0.0:
            return "training-mode Dropout with a non-zero ratio is random; export the model in eval mode"
    if any(o for o in n.outputs[1:]) and n.shape(0) is None:
        return "the mask output needs a static input shape"
    return None


@lowers("Identity", "Dropout", check=_check_identity)
def identity(n: NodeView, env: Env):
    """no op (the tensor is passed through; inference Dropout and training with ratio 0 are the identity, their mask
    all true)"""
    if n.op == "Dropout" and len(n.outputs) > 1 and n.outputs[1]:
        return [env.value(n, 0), np.ones(n.shape(0), dtype=bool)]
    return env.value(n, 0)


def _check_reshape(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "the target shape"))
    if why:
        return why
    if n.attr("allowzero", 0) and 0 in n.const(1).tolist():
        return "allowzero=1 with a 0 in the shape makes an empty tensor; CoreML has none"
    return None


@lowers("Reshape", check=_check_reshape)
def reshape(n: NodeView, env: Env):
    """reshape to the static shape (0 copies the input dim, -1 resolved here)"""
    src = n.shape(0)
    shape = [src[i] if d == 0 else int(d) for i, d in enumerate(n.const(1).tolist())]
    if -1 in shape:
        known = int(np.prod([d for d in shape if d != -1]))
        shape[shape.index(-1)] = int(np.prod(src)) // max(known, 1)
    return mb.reshape(x=env.var(n, 0), shape=_i32(shape), name=env.out(n))


@lowers("Flatten", check=lambda n: need_shape(n, 0))
def flatten(n: NodeView, env: Env):
    """reshape to [prod(dims before axis), prod(dims from axis)]"""
    src = n.shape(0)
    axis = norm_axis(int(n.attr("axis", 1)), len(src))
    shape = [int(np.prod(src[:axis])), int(np.prod(src[axis:]))]
    return mb.reshape(x=env.var(n, 0), shape=_i32(shape), name=env.out(n))


def _check_axes_input(n: NodeView) -> str | None:
    return first(need_shape(n, 0), need_const(n, 1, "axes"))


@lowers("Squeeze", check=_check_axes_input)
def squeeze(n: NodeView, env: Env):
    """squeeze (all size-1 axes when none are given)"""
    src = n.shape(0)
    axes = _axes(n, 1)
    axes = [i for i, d in enumerate(src) if d == 1] if axes is None else [norm_axis(a, len(src)) for a in axes]
    if not axes:
        return env.value(n, 0)
    return mb.squeeze(x=env.var(n, 0), axes=_i32(sorted(axes)), name=env.out(n))


@lowers("Unsqueeze", check=_check_axes_input)
def unsqueeze(n: NodeView, env: Env):
    """expand_dims (axes counted in the output rank)"""
    axes = _axes(n, 1)
    rank = len(n.shape(0)) + len(axes)
    return mb.expand_dims(x=env.var(n, 0), axes=_i32(sorted(norm_axis(a, rank) for a in axes)), name=env.out(n))


@lowers("Transpose", check=lambda n: need_shape(n, 0))
def transpose(n: NodeView, env: Env):
    """transpose (reversed axes by default)"""
    perm = n.attr("perm") or list(reversed(range(len(n.shape(0)))))
    return mb.transpose(x=env.var(n, 0), perm=_i32(perm), name=env.out(n))


@lowers("Concat", check=lambda n: need_shape(n, 0))
def concat(n: NodeView, env: Env):
    """concat"""
    axis = norm_axis(int(n.attr("axis")), len(n.shape(0)))
    values = [env.var(n, i) for i in range(len(n.inputs)) if n.has(i)]
    if len(values) == 1:
        return mb.identity(x=values[0], name=env.out(n))
    return mb.concat(values=values, axis=axis, name=env.out(n))


def _check_split(n: NodeView) -> str | None:
    return first(need_shape(n, 0), need_const(n, 1, "split sizes"))


@lowers("Split", check=_check_split)
def split(n: NodeView, env: Env):
    """split with explicit sizes (even split and opset-18 num_outputs resolved here)"""
    src = n.shape(0)
    axis = norm_axis(int(n.attr("axis", 0)), len(src))
    dim = src[axis]
    if n.has(1):
        sizes = [int(s) for s in n.const(1).reshape(-1)]
    elif n.attr("split") is not None:
        sizes = [int(s) for s in n.attr("split")]
    else:
        parts = len(n.outputs)
        each = -(-dim // parts)  # ceil: opset 18 makes the last chunk smaller
        sizes = [min(each, dim - i * each) for i in range(parts)]
    outs = mb.split(x=env.var(n, 0), split_sizes=_i32(sizes), axis=axis, name=env.out(n))
    return list(outs)


def _check_slice(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    for i, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
        why = need_const(n, i, what)
        if why:
            return why
    return None


@lowers("Slice", check=_check_slice)
def slice_(n: NodeView, env: Env):
    """slice_by_index with begin/end resolved per axis as Python slices (ONNX clamps the same way)"""
    src = n.shape(0)
    rank = len(src)
    if n.has(1):
        starts, ends = n.const(1).tolist(), n.const(2).tolist()
        axes = n.const(3).tolist() if n.has(3) else list(range(len(starts)))
        steps = n.const(4).tolist() if n.has(4) else [1] * len(starts)
    else:  # opset 1: attributes
        starts, ends = n.attr("starts"), n.attr("ends")
        axes = n.attr("axes") or list(range(len(starts)))
        steps = [1] * len(starts)
    begin, end, stride = [0] * rank, list(src), [1] * rank
    end_mask = [False] * rank
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = norm_axis(int(a), rank)
        b, en, stp = slice(int(s), int(e), int(st)).indices(src[a])
        begin[a], end[a], stride[a] = b, en, stp
        end_mask[a] = stp < 0 and en < 0  # "before index 0": MIL would read -1 as the last element
    return mb.slice_by_index(x=env.var(n, 0), begin=_i32(begin), end=_i32(end), stride=_i32(stride),
                             end_mask=np.array(end_mask), name=env.out(n))


@lowers("Gather", check=lambda n: need_shape(n, 0))
def gather(n: NodeView, env: Env):
    """gather; negative indices wrapped (in numpy for constants, with select otherwise)"""
    src = n.shape(0)
    axis = norm_axis(int(n.attr("axis", 0)), len(src))
    idx = n.const(1)
    if idx is not None:
        indices = np.where(idx < 0, idx + src[axis], idx).astype(np.int32)
    else:
        raw = env.var(n, 1)
        neg = mb.less(x=raw, y=np.int32(0), name=env.tmp(n, "neg"))
        wrapped = mb.add(x=raw, y=np.int32(src[axis]), name=env.tmp(n, "wrapped"))
        indices = mb.select(cond=neg, a=wrapped, b=raw, name=env.tmp(n, "idx"))
    return mb.gather(x=env.var(n, 0), indices=indices, axis=axis, name=env.out(n))


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


def _check_pad(n: NodeView) -> str | None:
    why = first(need_shape(n, 0), need_const(n, 1, "pads"), need_const(n, 2, "constant_value"),
                need_const(n, 3, "axes"))
    if why:
        return why
    mode = n.attr("mode", "constant")
    if mode not in _PAD_MODES:
        return f"mode='{mode}' has no CoreML equivalent (constant, reflect, edge are lowered)"
    if n.dtype(0) not in (TensorProto.FLOAT, TensorProto.FLOAT16, None):
        return f"{TensorProto.DataType.Name(n.dtype(0))} input: CoreML pad is float-only"
    pads = n.const(1).tolist() if n.has(1) else n.attr("pads")
    if any(p < 0 for p in pads):
        return "negative pads (cropping) are not lowered"
    return None


@lowers("Pad", check=_check_pad)
def pad(n: NodeView, env: Env):
    """pad on the trailing axes that need it, begin/end interleaved for MIL"""
    src = n.shape(0)
    rank = len(src)
    pads = [int(p) for p in (n.const(1).tolist() if n.has(1) else n.attr("pads"))]
    axes = [norm_axis(int(a), rank) for a in n.const(3).tolist()] if n.has(3) else list(range(rank))
    pairs = [(0, 0)] * rank
    for k, a in enumerate(axes):
        pairs[a] = (pads[k], pads[k + len(axes)])
    busy = [i for i, p in enumerate(pairs) if p != (0, 0)]
    if not busy:
        return env.value(n, 0)
    pairs = pairs[busy[0]:]  # MIL pads the last len(pad)/2 axes
    value = n.const(2) if n.has(2) else np.array(n.attr("value", 0.0))
    return mb.pad(x=env.var(n, 0), pad=_i32(p for pair in pairs for p in pair), mode=_PAD_MODES[n.attr("mode", "constant")],
                  constant_val=np.float32(value.reshape(-1)[0] if value.size else 0.0), name=env.out(n))


def _check_d2s(n: NodeView) -> str | None:
    why = need_shape(n, 0)
    if why:
        return why
    return None if len(n.shape(0)) == 4 else "only 4-D (NCHW) inputs"


@lowers("DepthToSpace", check=_check_d2s)
def depth_to_space(n: NodeView, env: Env):
    """depth_to_space for DCR (the default), pixel_shuffle for CRD"""
    block = int(n.attr("blocksize"))
    if n.attr("mode", "DCR") == "CRD":
        return mb.pixel_shuffle(x=env.var(n, 0), upscale_factor=np.int32(block), name=env.out(n))
    return mb.depth_to_space(x=env.var(n, 0), block_size=np.int32(block), name=env.out(n))


@lowers("SpaceToDepth", check=_check_d2s)
def space_to_depth(n: NodeView, env: Env):
    """space_to_depth (DCR); CRD (opset 24 mode) regroups its channels with one gather"""
    block = int(n.attr("blocksize"))
    crd = n.attr("mode", "DCR") == "CRD"
    y = mb.space_to_depth(x=env.var(n, 0), block_size=np.int32(block), name=env.tmp(n, "dcr") if crd else env.out(n))
    if not crd:
        return y
    # DCR channel (j * C + c) holds what CRD puts at (c * block^2 + j), j = offset inside the block
    c, bb = n.shape(0)[1], block * block
    perm = np.array([j * c + ci for ci in range(c) for j in range(bb)], np.int32)
    return mb.gather(x=y, indices=perm, axis=1, name=env.out(n))


def _cast_to(n: NodeView) -> int | None:
    return int(n.attr("to")) if n.op == "Cast" else n.dtype(1)


def _check_cast(n: NodeView) -> str | None:
    to = _cast_to(n)
    if to is None:
        return "the target type (input 1's dtype) is unknown"
    if to not in MIL_DTYPE:
        return (f"cast to {TensorProto.DataType.Name(to)}: CoreML computes in fp32, fp16, int32 and bool "
                f"(narrower ints and float64 are carried in those) and has no op that rounds to this type")
    return None


# narrow integer targets: int32 results are wrapped to the target's range (two's complement, as ONNX casts do)
_WRAP = {TensorProto.INT8: (-128, 256), TensorProto.UINT8: (0, 256), TensorProto.INT16: (-32768, 65536),
         TensorProto.UINT16: (0, 65536)}
_RANGE = {TensorProto.INT8: (-128, 127), TensorProto.UINT8: (0, 255), TensorProto.INT16: (-32768, 32767),
          TensorProto.UINT16: (0, 65535), TensorProto.BOOL: (0, 1), TensorProto.INT4: (-8, 7), TensorProto.UINT4: (0, 15),
          TensorProto.INT2: (-2, 1), TensorProto.UINT2: (0, 3)}


@lowers("Cast", "CastLike", check=_check_cast)
def cast(n: NodeView, env: Env):
    """cast (int types are int32 in CoreML, float64 is fp32); a cast to int8/uint8/int16/uint16 from a wider
    type wraps to the target's range like ONNX"""
    x = env.var(n, 0)
    to = _cast_to(n)
    dtype = MIL_DTYPE[to]
    src = n.dtype(0)
    wrap = to in _WRAP and not (src in _RANGE and _RANGE[to][0] <= _RANGE[src][0] and _RANGE[src][1] <= _RANGE[to][1])
    if types.builtin_to_string(x.dtype) == dtype and not wrap:
        return x
    y = x if types.builtin_to_string(x.dtype) == dtype else mb.cast(
        x=x, dtype=dtype, name=env.tmp(n, "int") if wrap else env.out(n))
    if not wrap:
        return y
    lo, span = _WRAP[to]
    y = mb.mod(x=mb.sub(x=y, y=np.int32(lo), name=env.tmp(n, "shift")), y=np.int32(span), name=env.tmp(n, "mod"))
    return mb.add(x=y, y=np.int32(lo), name=env.out(n))
