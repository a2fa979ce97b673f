"""fp16 safety: find tensors whose float32 range does not fit fp16 and keep the ops touching them in fp32.

ONNX Runtime runs the graph with every intermediate tensor exposed as an output, on the same seeded
inputs validation uses. A tensor whose max |x| exceeds FP16_MAX / HEADROOM (or is not finite) is
"hot": any MIL op that reads or writes it (or an intermediate a lowering made for it) stays fp32.
HEADROOM = 2 because seeded N(0, 1) inputs are a sample, not a bound: real inputs can be larger.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

FP16_MAX = 65504.0
HEADROOM = 2.0


@dataclass
class RangeReport:
    hot: dict[str, float] = field(default_factory=dict)  # ONNX tensor -> max |x| seen (inf if not finite)
    checked: int = 0


def tensor_ranges(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """max |x| of every float tensor the graph computes (inputs included), over all feeds."""
    from edgec.runtimes.host_ort import OrtRunner

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {v.name: v for v in list(probe.graph.value_info) + list(probe.graph.output)}
    have = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if not name or name in have:
                continue
            elem = known[name].type.tensor_type.elem_type if name in known else 0
            if elem in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
                probe.graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
                have.add(name)
    runner = OrtRunner(probe, threads=1, level="disable", name="onnxruntime (fp16 range probe)")
    ranges: dict[str, float] = {}
    for feed in feeds:
        outs = dict(feed)
        outs.update(runner.run(feed))
        for name, value in outs.items():
            if value.dtype.kind != "f" or value.size == 0:
                continue
            m = float(np.max(np.abs(value))) if np.all(np.isfinite(value)) else float("inf")
            ranges[name] = max(ranges.get(name, 0.0), m)
    return ranges


def find_hot(model: onnx.ModelProto, feeds: list[dict[str, np.ndarray]]) -> RangeReport:
    ranges = tensor_ranges(model, feeds)
    limit = FP16_MAX / HEADROOM
    return RangeReport(hot={k: v for k, v in sorted(ranges.items()) if v > limit}, checked=len(ranges))


class Fp32Keeper:
    """op_selector for FP16ComputePrecision: False (stay fp32) for ops touching a hot tensor.

    Matching is by MIL var name: a hot ONNX tensor's MIL name, or any var a lowering derived from it
    (`<name>_<suffix>`); coremltools' fusions keep the fused op's output name, so they still match.
    """

    def __init__(self, hot_mil_names: set[str]):
        self.hot = hot_mil_names
        self.kept: set[str] = set()

    def _is_hot(self, var_name: str) -> bool:
        return var_name in self.hot or any(var_name.startswith(h + "_") for h in self.hot)

    def __call__(self, op) -> bool:
        names = [v.name for v in op.outputs]
        for v in op.inputs.values():
            names.extend(x.name for x in (v if isinstance(v, (list, tuple)) else [v]))
        if any(self._is_hot(n) for n in names):
            if op.op_type != "const":
                self.kept.add(op.outputs[0].name)  # the name visible in the package (fused ops keep it)
            return False
        return True


def fp32_ops(spec) -> list[str]:
    """Output names of compute ops that still produce float32 in a converted fp16 program: the ones our
    selector kept, plus any coremltools kept itself (e.g. a fused conv whose weights overflow fp16)."""
    from coremltools.proto import MIL_pb2

    names = []
    for block in spec.mlProgram.functions["main"].block_specializations.values():
        for op in block.operations:
            if op.type in ("const", "cast"):
                continue
            if any(o.type.tensorType.dataType == MIL_pb2.FLOAT32 for o in op.outputs):
                names.append(op.outputs[0].name)
    return sorted(names)
