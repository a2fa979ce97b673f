"""Roofline latency and memory estimate of an ONNX graph (static shapes) on a profile's hardware.

Per node: work (FLOPs or int8 ops, from opcost.py) and bytes moved (inputs + outputs; weights included).
Time of a node = max(work / (peak of its compute unit and precision x efficiency of its kind),
bytes / memory bandwidth) + a fixed per-op overhead; a pass whose activations fit the cache (profile
estimate.cache_mb) moves them at the cache's bandwidth. Activations that runtimes fuse into the producing
conv/matmul (Relu, Clip, ... with one consumer) cost no extra pass over memory.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from edgec.config.models import EstimateSpec, Profile
from edgec.graph.view import consumers as _consumers
from edgec.graph.view import tensor_types
from edgec.validate import opcost
from edgec.validate.opcost import DEPTHWISE, GEMM, VIEW, NodeView

# activations every mobile runtime fuses into the conv/matmul that produces their input
_FUSABLE = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "BatchNormalization"}
_FUSE_INTO = {"Conv", "ConvTranspose", "Gemm", "MatMul", "QLinearConv", "QLinearMatMul", "ConvInteger"}


@dataclass
class OpEstimate:
    name: str
    op_type: str
    kind: str
    precision: str
    gflop: float
    mbytes: float
    ms: float
    bound: str  # compute | memory | overhead | fused
    fused: bool = False
    generic: bool = False  # no cost function for this op type: costed as a copy


@dataclass
class Estimate:
    profile: str
    unit: str  # compute unit the roofline used: cpu | gpu | ane
    threads: int
    total_ms: float
    compute_ms: float  # summed time of compute-bound ops (their roofline term)
    memory_ms: float  # summed time of memory-bound ops
    overhead_ms: float
    gflop: float
    peak_activation_mb: float
    weight_mb: float
    ops: list[OpEstimate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def compute_share(self) -> float:
        busy = self.compute_ms + self.memory_ms
        return self.compute_ms / busy if busy > 0 else 0.0

    def top(self, n: int = 10) -> list[OpEstimate]:
        return sorted(self.ops, key=lambda o: (-o.ms, o.name))[:n]

    def summary(self, top: int = 10) -> dict:
        """The JSON-serialisable part that goes into the manifest (the full table is a file)."""
        return {
            "profile": self.profile, "unit": self.unit, "threads": self.threads,
            "total_ms": round(self.total_ms, 4), "compute_ms": round(self.compute_ms, 4),
            "memory_ms": round(self.memory_ms, 4), "overhead_ms": round(self.overhead_ms, 4),
            "compute_share": round(self.compute_share, 4), "gflop": round(self.gflop, 4),
            "peak_activation_mb": round(self.peak_activation_mb, 3), "weight_mb": round(self.weight_mb, 3),
            "top_ops": [_op_row(o) for o in self.top(top)], "notes": list(self.notes),
        }

    def write_table(self, path: Path) -> Path:
        """Every op, slowest first, as CSV (.csv) or JSON (.json)."""
        rows = [_op_row(o) for o in self.top(len(self.ops))]
        if path.suffix == ".json":
            path.write_text(json.dumps({"estimate": {k: v for k, v in self.summary(0).items() if k != "top_ops"},
                                        "ops": rows}, indent=1) + "\n")
            return path
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else list(OpEstimate.__dataclass_fields__))
            w.writeheader()
            w.writerows(rows)
        return path


def _op_row(o: OpEstimate) -> dict:
    d = asdict(o)
    for k in ("gflop", "mbytes", "ms"):
        d[k] = round(d[k], 6)
    return d


# ---------------------------------------------------------------- tensors


_ITEMSIZE = {t: np.dtype(helper.tensor_dtype_to_np_dtype(t)).itemsize for t in
             (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.INT8,
              onnx.TensorProto.UINT8, onnx.TensorProto.INT32, onnx.TensorProto.INT64, onnx.TensorProto.BOOL,
              onnx.TensorProto.INT16, onnx.TensorProto.UINT16)}


def _tensor_types(model: onnx.ModelProto) -> dict[str, tuple[list[int] | None, int]]:
    return {name: (shape, elem) for name, (elem, shape) in tensor_types(model).items()}


_QDQ = ("QuantizeLinear", "DequantizeLinear")


def _nbytes(types, name: str) -> int:
    shape, dtype = types.get(name, (None, 0))
    if shape is None or not name:
        return 0
    return int(np.prod(shape)) * _ITEMSIZE.get(dtype, 4)


def _view(node: onnx.NodeProto, types) -> NodeView:
    ins = [types.get(n, (None, 0)) for n in node.input]
    outs = [types.get(n, (None, 0)) for n in node.output]
    return NodeView(node, [s for s, _ in ins], [s for s, _ in outs], [d for _, d in ins], [d for _, d in outs],
                    opcost.attrs_of(node))


def _fused(model: onnx.ModelProto) -> set[int]:
    """Indices of nodes a runtime folds into the conv/matmul before them (one consumer, same tensor)."""
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers = _consumers(model)
    graph_outputs = {o.name for o in model.graph.output}
    fused: set[int] = set()
    for i, node in enumerate(model.graph.node):
        if node.op_type not in _FUSABLE or not node.input:
            continue
        src = producer.get(node.input[0])
        if src is None or src.op_type not in _FUSE_INTO or src.output[0] in graph_outputs:
            continue
        if len(consumers.get(src.output[0], [])) == 1:
            fused.add(i)
    return fused


def _qdq_fusion(model: onnx.ModelProto, inits: set[str]) -> tuple[set[int], set[str]]:
    """(node indices, tensors): weight DQs and the activation Q/DQ that int8 kernels absorb, and the float-typed
    tensors around them that are int8 in memory. An op is quantized when it has an int8 kernel, every
    non-constant input comes from a DequantizeLinear and only QuantizeLinear read it; a DQ whose readers are all
    quantized ops, and a Q written by a quantized op, vanish into those kernels (TFLite's int8 kernels, ORT's QLinear* fusions). Q/DQ at graph inputs/outputs and around ops
    left float stay real."""
    nodes = list(model.graph.node)
    dq_out = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    producer = {o: n for n in nodes for o in n.output}
    readers = _consumers(model)

    from edgec.lower.backend import int8_kernel_ops

    int8_ops = int8_kernel_ops()  # the ops the int8 lowerings fold into int8 kernels

    def quantized(n: onnx.NodeProto) -> bool:
        acts = [x for x in n.input if x and x not in inits]
        outs = [u for o in n.output for u in readers.get(o, [])]
        return (n.op_type in int8_ops and bool(acts) and all(x in dq_out for x in acts)
                and bool(outs) and all(u.op_type == "QuantizeLinear" for u in outs))

    fused, int8_tensors = set(), set()
    for i, n in enumerate(nodes):
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            fused.add(i)  # a weight's DQ is folded into the kernel's constant at load time
            int8_tensors.add(n.output[0])
        elif n.op_type == "DequantizeLinear":
            users = readers.get(n.output[0], [])
            if users and all(quantized(u) for u in users):
                fused.add(i)
                int8_tensors.add(n.output[0])
        elif n.op_type == "QuantizeLinear":
            src = producer.get(n.input[0])
            if src is not None and quantized(src):
                fused.add(i)
                int8_tensors.add(n.input[0])
    return fused, int8_tensors


def _int8_inputs(model: onnx.ModelProto) -> set[str]:
    """Tensors produced by DequantizeLinear: a conv/matmul reading them runs as an int8 kernel (QDQ fusion)."""
    return {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}


def peak_activation_bytes(model: onnx.ModelProto, types=None) -> int:
    """Largest sum of live intermediate tensors over the node order (each freed after its last consumer)."""
    types = types or _tensor_types(model)
    g = model.graph
    consts = {i.name for i in g.initializer}
    last_use: dict[str, int] = {}
    for i, node in enumerate(g.node):
        for name in node.input:
            last_use[name] = i
    keep = {o.name for o in g.output}
    live = {i.name: _nbytes(types, i.name) for i in g.input if i.name not in consts}
    peak = sum(live.values())
    for i, node in enumerate(g.node):
        if node.op_type == "Constant":
            continue
        for name in node.output:
            live[name] = _nbytes(types, name)
        peak = max(peak, sum(live.values()))
        for name in list(live):
            if last_use.get(name, -1) <= i and name not in keep:
                del live[name]
    return peak


# ---------------------------------------------------------------- roofline


def _unit(profile: Profile, float_program: bool = False) -> tuple[str, list[str]]:
    """Which compute unit the runtime settings put the model on."""
    acc = profile.hardware.accelerators
    rt = profile.runtime
    if rt.delegate == "gpu" and "gpu" in acc:
        return "gpu", []
    if rt.compute_units in ("all", "cpu_and_ne") and "ane" in acc:
        if not float_program:
            return "ane", []
        # the Neural Engine computes in fp16 only: CoreML places an fp32 program on the GPU (or the CPU)
        unit = "gpu" if rt.compute_units == "all" and "gpu" in acc else "cpu"
        return unit, [f"fp32 program: not on the Neural Engine (fp16 only), estimated on the {unit}"]
    if rt.compute_units == "cpu_and_gpu" and "gpu" in acc:
        return "gpu", []
    return "cpu", []


def _peaks(profile: Profile, unit: str, threads: int) -> tuple[dict[str, float], list[str]]:
    """GFLOP/s (GOP/s for int8) per precision on the unit; missing precisions derived with a note."""
    hw = profile.hardware
    notes: list[str] = []
    if unit == "cpu":
        c = hw.cpu
        busy = min(threads, c.cores)
        # peaks in profiles are for the whole CPU; threads use the biggest cores first
        share = min(1.0, busy / (c.big_cores or c.cores))
        fp32 = c.peak_gflops_fp32 * share
        fp16 = (c.peak_gflops_fp16 or c.peak_gflops_fp32) * share
        int8 = (c.peak_gops_int8 or 2 * c.peak_gflops_fp32) * share  # without a figure: 2x fp32
        return {"fp32": fp32, "fp16": fp16, "int8": int8}, notes
    a = hw.accelerators[unit]
    fp16 = a.peak_gflops_fp16 or (a.peak_gops_int8 / 2 if a.peak_gops_int8 else None) or a.peak_gflops_fp32
    if a.peak_gflops_fp16 is None:
        notes.append(f"{unit} fp16 peak not in profile: derived from its other peaks")
    fp32 = a.peak_gflops_fp32 or fp16  # ANE/GPU delegates compute fp32 models in fp16
    int8 = a.peak_gops_int8 or fp16
    return {"fp32": fp32, "fp16": fp16, "int8": int8}, notes


def _gemm_efficiency(spec: EstimateSpec, gemm: tuple[int, int, int] | None) -> float:
    """Small GEMMs cannot fill the vector units: efficiency falls off as M, N or K gets short."""
    base = spec.efficiency.get(GEMM, 0.6)
    if gemm is None:
        return base
    m, n, k = gemm
    fill = 1.0
    for dim, full in ((m, spec.gemm_full_m), (n, spec.gemm_full_n), (k, spec.gemm_full_k)):
        fill *= min(1.0, dim / full) ** 0.5 if full > 0 else 1.0
    return base * max(fill, 0.05)


def _depthwise_kind(spec: EstimateSpec, view: NodeView) -> str:
    """'depthwise_unaligned' for a depthwise conv whose channels miss the runtime's vector block (ORT's NCHWc
    kernels on AVX-512 take 16 channels at a time; 58 or 116 channels run several times slower per FLOP)."""
    w = view.in_shapes[1] if len(view.in_shapes) > 1 else None
    if not spec.channel_block or w is None or "depthwise_unaligned" not in spec.efficiency:
        return DEPTHWISE
    return DEPTHWISE if w[0] % spec.channel_block == 0 else "depthwise_unaligned"


def _strided_expand_ms(spec: EstimateSpec, node: onnx.NodeProto, work, unit: str, prec: str) -> float:
    """A strided conv's im2col pass (K x N elements) in a runtime that expands strides slowly (costfit)."""
    if not spec.strided_conv_gbps or unit != "cpu" or work.gemm is None or node.op_type not in _FUSE_INTO:
        return 0.0
    if all(s == 1 for s in opcost.attrs_of(node).get("strides", [1])):
        return 0.0
    _, n, k = work.gemm
    return k * n * (1 if prec == "int8" else 4) / (spec.strided_conv_gbps * 1e9) * 1e3


def as_built(model: onnx.ModelProto, artifact) -> tuple[onnx.ModelProto, str | None]:
    """(graph, program precision) an artifact actually runs, from its backend (Backend.as_built): a CoreML
    program fixes its compute precision, and below iOS17 runs an int8 graph with float activations."""
    from edgec.lower.backend import as_built as backend_as_built

    return backend_as_built(model, artifact)


def estimate(model: onnx.ModelProto, profile: Profile, precision: str = "fp32", threads: int | None = None,
             program_precision: str | None = None) -> Estimate:
    """Roofline estimate of `model` (static shapes, inferred value_info) on `profile`'s hardware.

    program_precision is the precision the artifact itself computes in where the format fixes it (a CoreML
    program's compute_precision). "fp32" means float arithmetic throughout: off the Neural Engine, and activation
    Q/DQ are float round/clip ops (CoreML below iOS17), not int8 kernels."""
    spec = profile.hardware.estimate
    threads = threads or profile.runtime.threads
    float_program = program_precision == "fp32"
    unit, notes = _unit(profile, float_program)
    peaks, more = _peaks(profile, unit, threads)
    notes += more
    bw = profile.hardware.memory_bandwidth_gbps * (spec.bandwidth_efficiency if unit == "cpu" else 1.0)
    weight_eff = spec.weight_bandwidth_efficiency or min(1.0, spec.bandwidth_efficiency)
    dram = profile.hardware.memory_bandwidth_gbps * (weight_eff if unit == "cpu" else 1.0)
    # a pass over activations that fit the cache (one core's L2, fitted per runtime: costfit) runs at its rate
    cache_bw = spec.cache_bandwidth_gbps if unit == "cpu" and spec.cache_mb else None
    cache_bytes = (spec.cache_mb or 0) * 1024**2
    types = _tensor_types(model)
    if any(o and o not in types for n in model.graph.node for o in n.output):
        # a model straight from disk (edgec validate) has no value_info yet: infer it, static input shapes assumed
        try:
            model = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
            types = _tensor_types(model)
        except Exception:  # noqa: BLE001 - inference errors leave those tensors unknown: costed as 0 bytes
            notes.append("shape inference failed: ops with unknown shapes are costed as overhead only")
    fused = _fused(model)
    int8_src = _int8_inputs(model)
    inits = {i.name for i in model.graph.initializer}
    qdq_fused, int8_tensors = _qdq_fusion(model, inits)
    if float_program:  # weights still decompress at load; activation Q/DQ run as float elementwise passes
        nodes = model.graph.node
        qdq_fused = {i for i in qdq_fused if nodes[i].op_type == "DequantizeLinear" and nodes[i].input[0] in inits}
        int8_tensors, int8_src = set(), set()
        if any(n.op_type == "QuantizeLinear" for n in nodes):
            notes.append("int8 activations as float arithmetic: every activation Q/DQ costed as one fp32 pass")
    half = (precision == "fp16" or unit != "cpu") and not float_program  # accelerators compute fp32 models in fp16
    # constants and dequantized constant weights: streamed from DRAM, int8-sized when quantized
    weights = inits | {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits}

    def act_nbytes(name: str) -> int:  # a float tensor an int8 kernel keeps as int8: one byte per element
        n = _nbytes(types, name)
        return n // _ITEMSIZE.get(types.get(name, (None, 0))[1], 4) if name in int8_tensors else n

    def moved(name: str) -> int:  # bytes a pass over the tensor moves: 8-bit stays 8-bit, float halves in fp16
        n = _nbytes(types, name) if name in inits else act_nbytes(name)
        is_float = name not in int8_tensors and types.get(name, (None, 0))[1] == onnx.TensorProto.FLOAT
        return n // 2 if half and is_float else n
    overhead_ms = (spec.op_overhead_us if unit == "cpu" else spec.accelerator_op_overhead_us) / 1000.0

    ops: list[OpEstimate] = []
    for i, node in enumerate(model.graph.node):
        if node.op_type == "Constant":
            continue
        view = _view(node, types)
        work = opcost.work_of(view)
        kind = work.kind
        int8 = not float_program and (work.int8 or (kind in (GEMM, DEPTHWISE) and node.input
                                                     and node.input[0] in int8_src))
        prec = "int8" if int8 else ("fp16" if half else "fp32")
        if kind == VIEW:
            ops.append(OpEstimate(node.name or f"{node.op_type}_{i}", node.op_type, kind, prec, 0.0, 0.0,
                                  overhead_ms * spec.view_overhead_factor, "overhead", generic=work.generic))
            continue
        # weights stream from DRAM every inference; activations mostly hit the caches (bandwidth_efficiency)
        weight_bytes = sum(moved(n) for n in node.input if n in weights)
        act_bytes = sum(moved(n) for n in node.input if n not in weights) + sum(moved(n) for n in node.output)
        is_fused = i in fused or i in qdq_fused
        if is_fused:  # computed in the producer's epilogue, in registers: no pass over memory, no dispatch
            ops.append(OpEstimate(node.name or f"{node.op_type}_{i}", node.op_type, kind, prec, work.flops / 1e9,
                                  0.0, 0.0, "fused", fused=True, generic=work.generic))
            continue
        nbytes = weight_bytes + act_bytes
        eff = _gemm_efficiency(spec, work.gemm) if kind == GEMM else spec.efficiency.get(_depthwise_kind(
            spec, view) if kind == DEPTHWISE else kind, spec.efficiency.get(kind, 0.3))
        eff = spec.op_efficiency.get(node.op_type, eff)
        compute_ms = work.flops / (peaks[prec] * eff * 1e9) * 1e3 if work.flops else 0.0
        act_bw = cache_bw if cache_bw and act_bytes <= cache_bytes else bw
        memory_ms = (act_bytes / (act_bw * 1e9) + weight_bytes / (dram * 1e9)) * 1e3
        busy = max(compute_ms, memory_ms) + _strided_expand_ms(spec, node, work, unit, prec)
        oh = overhead_ms
        bound = "overhead" if busy < oh else ("compute" if compute_ms >= memory_ms else "memory")
        ops.append(OpEstimate(node.name or f"{node.op_type}_{i}", node.op_type, kind, prec, work.flops / 1e9,
                              nbytes / 1e6, busy + oh, bound, fused=is_fused, generic=work.generic))

    generic = sorted({o.op_type for o in ops if o.generic})
    if generic:
        notes.append("costed as plain copies (no cost function): " + ", ".join(generic))
    weight = sum(_nbytes(types, n) for n in inits)
    if precision == "fp16":
        weight //= 2
    total = sum(o.ms for o in ops)
    oh_total = sum(min(o.ms, overhead_ms) for o in ops if not o.fused)
    return Estimate(
        profile=profile.name, unit=unit, threads=threads, total_ms=total,
        compute_ms=sum(o.ms for o in ops if o.bound == "compute"),
        memory_ms=sum(o.ms for o in ops if o.bound == "memory"),
        overhead_ms=oh_total, gflop=sum(o.gflop for o in ops),
        peak_activation_mb=peak_activation_bytes(model, types) / 1e6 / (2 if precision == "fp16" else 1),
        weight_mb=weight / 1e6, ops=ops, notes=notes,
    )
