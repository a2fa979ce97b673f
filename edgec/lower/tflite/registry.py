"""The TFLite op registry: one small function per ONNX op, registered with `@lowers("Conv")`.

How to add an op (put it in a family file under ops/; every module there is imported automatically):

    from ai_edge_litert import schema_py_generated as S
    from edgec.lower.tflite.registry import LowerCtx, lowers

    @lowers("HardSwish")
    def hard_swish(ctx: LowerCtx) -> None:
        ctx.emit("HARD_SWISH", [ctx.input(0)], [ctx.output(0)])

What a lowering gets (`ctx`):
- ctx.node: the IR node (ctx.node.op, .name, .inputs, .outputs); ctx.attr("axis", default) reads an attribute.
- ctx.input(i): the TFLite tensor index of input i (constants are materialised on first use);
  ctx.const(i): the numpy value of input i if it is a constant, else None; ctx.has_input(i).
- ctx.shape(i) / ctx.out_shape(j) / ctx.dtype(i): static shapes and dtypes AS THE TENSORS ARE LAID OUT.
- Layout: ctx.nhwc is True when the layout pass made this node channels-last (ops listed in
  layout.NHWC_OPS, 4-D input): input 0 and output 0 are NHWC, every other input keeps its ONNX layout
  (weights stay OIHW: permute them yourself). For a layout-agnostic op (elementwise, Concat, Softmax,
  Slice, Pad, Reduce...) the pass has already rewritten the axis attributes and constant operands, so just
  use ctx.attr("axis") as given. To declare how a NEW op follows a transpose, add it to layout.AGNOSTIC
  (with an axis rewrite rule) or to layout.NHWC_OPS -- that table is the only place layout is decided.
  1-D spatial ops (3-D input) in layout.NHWC_1D_OPS get (N, W, C); decorate a 2-D lowering with
  ops/_util.lift_1d to run it on (N, 1, W, C).
- ctx.output(j): the tensor index for output j (created with its shape/dtype); ctx.alias(j, t) makes output j
  be tensor t without an op (Identity, Dropout).
- ctx.constant(array, tag) -> a new constant tensor; ctx.temp(shape, dtype, tag) -> an intermediate tensor.
- ctx.emit("CONV_2D", inputs, outputs, S.Conv2DOptionsT(...), version=1) adds an operator; use -1 for an
  omitted optional input. Activations are fused into producers by a later peephole, don't do it here.
- int8 (later): ctx.output(j, quant=Quant(scale, zero_point, axis)) and ctx.b.const(array, name, quant) carry
  per-tensor / per-channel quantization into the flatbuffer (builder.Quant -> QuantizationParameters).
- ctx.unsupported("why") raises; the node is then reported in UnsupportedOp with that reason (and
  `unsupported(model)` lists it without writing anything). Check attributes BEFORE emitting anything, or pass
  `check=fn` (fn(ctx) -> why or None, run before the lowering).

int8: a QDQ group DequantizeLinear -> op -> QuantizeLinear folds into an int8 kernel when "int8.<op>" is
registered (one edit adds an op; qdq.py reads the registry):

    @lowers("int8.Sigmoid", check=lambda ctx: None)   # check(ctx) -> why the group stays float, or None
    def sigmoid_int8(ctx: LowerCtx) -> None: ...

  A float lowering that runs on int8 tensors unchanged registers itself under the int8 name too, flagged
  float_kernel=True (same_scale=True when output and input must share one scale: it moves values only).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from edgec.lower.tflite.builder import ModelBuilder, Quant, Unsupported  # noqa: F401  (Unsupported re-exported)
from edgec.lower.tflite.ir import Graph, Node
from edgec.registry import Registry, Rule  # noqa: F401  (Rule re-exported)

REGISTRY = Registry("TFLite lowerings", package="edgec.lower.tflite.ops")
INT8 = "int8."  # prefix of the int8 kernels' rules


def lowers(*op_types: str, check: Callable[["LowerCtx"], str | None] | None = None, note: str = "", **flags):
    """Register the decorated function as the TFLite lowering of `op_types` (flags: float_kernel, same_scale,
    int16: an "int8.<op>" rule whose kernel also runs 16x8, int16 activations)."""
    return REGISTRY.register(*op_types, check=check, note=note, **flags)


# ops with no lowering on purpose: why, and what to do (the UnsupportedOp entry says it instead of "no lowering")
_SHAPE = "its output size depends on the data (TFLite tensors need a static shape here)"
_RANDOM = "a random op: no deterministic TFLite equivalent (fix the values in the model for inference)"
REFUSED: dict[str, str] = {
    "NonMaxSuppression": _SHAPE + "; TFLite's NON_MAX_SUPPRESSION_V5 takes one batch and class with a padded "
                         "output: export the model with its post-processing outside, or target ort-mobile",
    "NonZero": _SHAPE, "Unique": _SHAPE,
    "Bernoulli": _RANDOM, "RandomNormal": _RANDOM, "RandomUniform": _RANDOM, "RandomNormalLike": _RANDOM,
    "RandomUniformLike": _RANDOM, "Multinomial": _RANDOM,
    "RoiAlign": "no TFLite lowering yet (data-dependent crops per box); target ort-mobile",
    "DeformConv": "no TFLite lowering (offsets computed at run time drive the sampling); target ort-mobile",
    "FlexAttention": "its score_mod / prob_mod subgraphs are not lowered; use Attention",
    "ImageDecoder": "decoding images is an app-side step, not a TFLite op",
}


class LowerCtx:
    def __init__(self, graph: Graph, builder: ModelBuilder | None, tensors: dict[str, int], node: Node):
        self.g, self.b, self._tensors, self.node = graph, builder, tensors, node

    @property
    def nhwc(self) -> bool:
        return self.node.nhwc

    @property
    def opset(self) -> int:
        return self.g.opset

    def attr(self, name: str, default=None):
        return self.node.attrs.get(name, default)

    def unsupported(self, why: str):
        raise Unsupported(why)

    def has_input(self, i: int) -> bool:
        return i < len(self.node.inputs) and bool(self.node.inputs[i])

    def const(self, i: int) -> np.ndarray | None:
        return self.g.consts.get(self.node.inputs[i]) if self.has_input(i) else None

    def shape(self, i: int) -> tuple[int, ...]:
        name = self.node.inputs[i]
        if name not in self.g.shapes:
            self.unsupported(f"input '{name}' has no static shape")
        return tuple(self.g.shapes[name])

    def out_shape(self, j: int = 0) -> tuple[int, ...]:
        name = self.node.outputs[j]
        if name not in self.g.shapes:
            self.unsupported(f"output '{name}' has no static shape (shape inference could not infer it)")
        return tuple(self.g.shapes[name])

    def dtype(self, i: int) -> np.dtype:
        return np.dtype(self.g.dtypes.get(self.node.inputs[i], np.float32))

    def out_dtype(self, j: int = 0) -> np.dtype:
        return np.dtype(self.g.dtypes.get(self.node.outputs[j], np.float32))

    def input(self, i: int) -> int:
        name = self.node.inputs[i]
        if name not in self._tensors:
            if name in self.g.consts:
                value = self.g.consts[name]
                if value.dtype == np.int64 and value.size and np.abs(value).max() < 2**31:
                    value = value.astype(np.int32)  # TFLite kernels take int32 indices/shapes
                self._tensors[name] = self.b.const(value, name)
            else:
                raise Unsupported(f"input '{name}' is not produced by any lowered node")
        return self._tensors[name]

    def output(self, j: int = 0, quant: Quant | None = None) -> int:
        name = self.node.outputs[j]
        if name not in self._tensors:
            quant = quant or self.g.quant.get(name)  # int8 tensors of a QDQ model (qdq.py)
            self._tensors[name] = self.b.tensor(name, self.out_shape(j), self.out_dtype(j), quant)
        return self._tensors[name]

    def alias(self, j: int, tensor: int) -> None:
        name = self.node.outputs[j]
        if name in self.g.outputs:  # graph outputs need their own tensor: copy with a no-op reshape
            self.emit("RESHAPE", [tensor, self.constant(np.array(self.out_shape(j), np.int32), "shape")],
                      [self.output(j)])
        else:
            self._tensors[name] = tensor

    def constant(self, array: np.ndarray, tag: str = "const") -> int:
        return self.b.const(np.asarray(array), f"{self.node.name}/{tag}")

    def temp(self, shape, dtype=np.float32, tag: str = "t") -> int:
        return self.b.tensor(f"{self.node.name}/{tag}", shape, dtype)

    def emit(self, code: str, inputs: list[int], outputs: list[int], options=None, version: int = 1):
        return self.b.op(code, inputs, outputs, options, version)
