"""Fit the roofline's op-class coefficients per runtime on this machine, from timed one-op sub-graphs.

ONNX Runtime (MLAS) and LiteRT (XNNPACK) run the same op at different speeds: ORT's LRN is a scalar loop,
its depthwise conv far below its GEMM, LiteRT's Sigmoid a fast vector kernel. One roofline for both carries
those differences into every emulated device number (emulate divides by the host estimate of the runtime it
timed). So each runtime gets its own coefficients: small synthetic graphs built here in-process (not the test
zoo), one op class each, timed in that runtime at one thread in CPU time; each coefficient is the one that makes
the roofline reproduce that probe's time. A few seconds per runtime; hostcache keeps the result per CPU
fingerprint and runtime versions.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec.validate import opcost
from edgec.validate.hostcal import _model, _vi
from edgec.validate.timing import time_runs

# ort: ONNX Runtime at level 'all' (host mode, the float form of int8 graphs); ort-extended: at level 'extended',
# as an .ort artifact runs (ORT format leaves out the x86-only NCHWc layouts: convs ~1.5x slower here); litert
RUNTIMES = ("ort", "ort-extended", "litert")
F = TensorProto.FLOAT
# depthwise shapes of mobile nets (channels, size): vector kernels take channels in blocks (channel_block()),
# and a count off the block (ShuffleNet's 58, 116) takes a slower path in some runtimes
DW_ALIGNED = ((64, 56), (96, 112), (128, 28))
DW_UNALIGNED = ((58, 56), (116, 28), (58, 28))


REPEAT = 3  # a probe's op is timed as a chain of 1 and of REPEAT: the difference is REPEAT - 1 ops, without
# what the graph's boundary costs (LiteRT's runner transposes NCHW feeds to NHWC; the first op's cold input)


@dataclass
class Probe:
    name: str
    one: onnx.NodeProto  # the op, reading "x" and writing "y" of the same shape (or, parallel, of out_shape)
    shape: tuple[int, ...]
    weights: dict[str, np.ndarray]
    runs: int = 15
    repeat: int = REPEAT
    # an op whose output is not its input's shape (a strided conv) cannot be chained: `repeat` copies read "x"
    # side by side, each writing a graph output of out_shape
    out_shape: tuple[int, ...] | None = None

    def model(self, repeat: int) -> onnx.ModelProto:
        nodes = []
        parallel = self.out_shape is not None
        for i in range(repeat):
            n = onnx.NodeProto()
            n.CopyFrom(self.one)
            n.input[0] = "x" if i == 0 or parallel else f"t{i}"
            n.output[0] = f"y{i}" if parallel else "y" if i == repeat - 1 else f"t{i + 1}"
            n.name = f"{self.name}_{i}"
            for j, w in enumerate(n.input[1:], 1):  # each op its own weights, as in a network (not hot in cache)
                n.input[j] = f"{w}{i}"
            nodes.append(n)
        inits = [numpy_helper.from_array(v, f"{k}{i}") for i in range(repeat) for k, v in self.weights.items()]
        outs = ([_vi(f"y{i}", F, list(self.out_shape)) for i in range(repeat)] if parallel
                else [_vi("y", F, list(self.shape))])
        m = onnx.load_from_string(_model(nodes, [_vi("x", F, list(self.shape))], outs, inits))
        return onnx.shape_inference.infer_shapes(m)

    def feeds(self) -> dict[str, np.ndarray]:
        return {"x": np.random.default_rng(0).standard_normal(self.shape).astype(np.float32)}

    @property
    def flops(self) -> float:
        """Of one op, as the roofline counts it (opcost)."""
        return opcost.work_of(_probe_view(self)).flops

    @property
    def act_bytes(self) -> int:
        """Bytes of one op's pass: its input and output once."""
        return 2 * int(np.prod(self.shape)) * 4


def _probe_view(p: Probe):
    from edgec.validate.estimate import _tensor_types, _view

    m = p.model(1)
    return _view(m.graph.node[0], _tensor_types(m))


def _conv(c: int, hw: int, k: int, group: int = 1, runs: int = 15, stride: int = 0) -> tuple:
    """stride 0: chained (same shape in and out); 1 or 2: side by side, an output of hw / stride pixels."""
    w = np.random.default_rng(1).standard_normal((c, c // group, k, k)).astype(np.float32) * 0.05
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[k // 2] * 4, group=group, strides=[stride or 1] * 2)
    out = (1, c, hw // stride, hw // stride) if stride else None
    return node, (1, c, hw, hw), {"w": w}, runs, REPEAT, out


def _op(op: str, shape, runs: int = 15, **attrs) -> tuple:
    return helper.make_node(op, ["x"], ["y"], **attrs), tuple(shape), {}, runs


def _add(shape, runs: int) -> tuple:
    return helper.make_node("Add", ["x", "c"], ["y"]), tuple(shape), {"c": np.full(1, 0.5, np.float32)}, runs


def probes() -> list[Probe]:
    """One sub-graph per coefficient (names are what fit() reads)."""
    specs = {
        # weights streamed from memory: GEMVs whose weights together (10 x 4 MB) outgrow the caches, as a
        # network's do between one layer's use and the next inference's
        "gemv": (helper.make_node("MatMul", ["x", "w"], ["y"]), (1, 1024),
                 {"w": np.random.default_rng(2).standard_normal((1024, 1024)).astype(np.float32)}, 10, 10),
        # per-op dispatch: a long chain of tiny Adds
        "overhead": (helper.make_node("Add", ["x", "one"], ["y"]), (16,), {"one": np.ones(16, np.float32)}, 30, 60),
        "conv3x3": _conv(64, 56, 3),
        "conv1x1": _conv(128, 28, 1),
        # the same GEMM over 7x7 pixels (N = 49: late layers of every mobile net): how fast efficiency falls
        # with a short N side (gemm_full_n)
        "conv1x1_7": _conv(256, 7, 1, runs=30),
        # and with a short K side (K = 24: MobileNet's narrow bottlenecks), for gemm_full_k
        "conv1x1_k24": _conv(24, 56, 1, runs=30),
        # and with few output channels (M = 16: detector stems and necks, squeeze layers), for gemm_full_m: the
        # conv3x3 probe's shape with a quarter of its channels (K = 144 stays long); ORT's im2col + SGEMM packs
        # the K x N side once per conv, so few output rows leave that pass unamortized (~0.5x at M = 16)
        "conv3x3_m16": _conv(16, 56, 3, runs=20),
        # a stride-2 conv and the same GEMM at stride 1 (same outputs, side by side): ORT's im2col takes a slow
        # element-wise path for strides, one extra pass over the K x N expanded input (strided_conv_gbps)
        "conv3x3_s1": _conv(64, 56, 3, stride=1),
        "conv3x3_s2": _conv(64, 112, 3, stride=2),
        **{f"dw{c}x{hw}": _conv(c, hw, 3, group=c, runs=10) for c, hw in DW_ALIGNED + DW_UNALIGNED},
        # an activation pass that fits in L2 (0.4 + 0.4 MB) and one that does not (3.2 + 3.2 MB): flat, so no
        # runtime changes their layout, and an Add of a constant (a chain of Relus is fused into one)
        "pass_small": (*_add((32 * 28 * 56,), runs=30), 12),
        "pass_large": _add((64 * 112 * 112,), runs=15),
        "sigmoid": (*_op("Sigmoid", (32 * 28 * 56,), runs=30), 12),
        "maxpool": _op("MaxPool", (1, 64, 56, 56), kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        "lrn": _op("LRN", (1, 64, 28, 28), runs=10, size=5),
    }
    return [Probe(name, *spec) for name, spec in specs.items()]


def _runner(runtime: str, model: onnx.ModelProto, stage: Path):
    if runtime in ("ort", "ort-extended"):
        from edgec.runtimes.host_ort import OrtRunner

        return OrtRunner(model.SerializeToString(), threads=1, level="all" if runtime == "ort" else "extended")
    from edgec.artifact import LowerContext
    from edgec.config.loader import load_profile, load_target
    from edgec.lower.backend import get_backend

    ctx = LowerContext(target=load_target("android"), profile=load_profile("pixel-8"), model_name="probe",
                       staging_dir=Path(tempfile.mkdtemp(dir=stage)))
    backend = get_backend("tflite")
    return backend.runner(backend.lower(model, ctx), 1)


def measure(runtime: str, rounds: int = 2) -> dict[str, float]:
    """Median CPU ms of each probe in `runtime` at one thread; the best of `rounds` interleaved rounds (load on a
    shared machine only ever slows a round down)."""
    with tempfile.TemporaryDirectory(prefix="edgec-costfit-") as tmp:
        stage = Path(tmp)
        runners = [(p, p.feeds(), _runner(runtime, p.model(1), stage), _runner(runtime, p.model(p.repeat), stage))
                   for p in probes()]
        best: dict[str, float] = {}
        for _ in range(rounds):
            for p, feeds, one, chain in runners:
                t1, tn = (float(np.median(time_runs(lambda r=r: r.run(feeds), p.runs, warmup=3,
                                                    clock=time.process_time))) for r in (one, chain))
                ms = max(tn - t1, 1e-4) / (p.repeat - 1)
                best[p.name] = min(best.get(p.name, ms), ms)
    return best


def _geomean(xs) -> float:
    return float(np.exp(np.mean(np.log(xs))))


def fit(times: dict[str, float], peak_1t: float, dram_gbps: float, cache_mb: float, block: int = 16) -> dict:
    """The estimate block (EstimateSpec fields) that makes the roofline reproduce the probes' times.

    peak_1t: GFLOP/s of one core (the probes run on one); dram_gbps: one core's DRAM bandwidth (hostcal's
    64 MB Add); cache_mb: the per-core cache (L2) below which a pass is charged at the fitted cache bandwidth;
    block: channel_block() of this CPU (depthwise convs off it use the unaligned rate)."""
    by = {p.name: p for p in probes()}
    oh_ms = times["overhead"]
    busy = {k: max(t - oh_ms, 1e-4) for k, t in times.items()}  # the op's own time, without its dispatch

    def eff(name: str) -> float:  # share of the one-core peak the probe's arithmetic reached
        return by[name].flops / (peak_1t * 1e9 * busy[name] / 1e3)

    def rate(name: str) -> float:  # GB/s of the probe's one pass over its tensors
        return by[name].act_bytes / (busy[name] / 1e3) / 1e9

    pool = eff("maxpool")
    gemm = _geomean([eff("conv3x3"), eff("conv1x1")])
    # estimate: efficiency x sqrt(min(1, N / gemm_full_n)) (and K); a short-side probe's drop gives the full side
    drop = min(1.0, eff("conv1x1_7") / gemm)
    full_n = int(min(1024, max(16, round(49 / drop**2))))
    # against both 64-channel 3x3 probes at the same 56x56 (chained and side by side): the ratio is squared
    # below, so one noisy reference would double full_m
    drop = min(1.0, eff("conv3x3_m16") / _geomean([eff("conv3x3"), eff("conv3x3_s1")]))
    full_m = int(min(1024, max(16, round(16 / drop**2))))
    # the K = 24 probe has M = 24 too: its drop beyond what the short M side explains is the K side's
    drop = min(1.0, eff("conv1x1_k24") / (gemm * min(1.0, 24 / full_m) ** 0.5))
    full_k = int(min(1024, max(16, round(24 / drop**2))))
    # the stride-2 probe's time beyond the same GEMM at stride 1 (same outputs): one pass over its K x N input
    m, n, k = opcost.work_of(_probe_view(by["conv3x3_s2"])).gemm
    extra_ms = busy["conv3x3_s2"] - busy["conv3x3_s1"]
    strided = round(k * n * 4 / (extra_ms / 1e3) / 1e9, 2) if extra_ms > 0.05 * busy["conv3x3_s1"] else None
    spec = {
        "efficiency": {
            # capped at the MatMul peak: a probe's convs, in cache and of ideal shape, can beat hostcal's 1024^3
            # MatMul timed at another moment, and networks' convs (stride 2, 3-channel stems) never do
            "gemm": round(min(1.0, gemm), 3),
            "depthwise": round(min(1.0, _geomean([eff(f"dw{c}x{hw}") for c, hw in DW_ALIGNED])), 3),
            "depthwise_unaligned": round(min(1.0, _geomean([eff(f"dw{c}x{hw}") for c, hw in DW_UNALIGNED])), 3),
            "elementwise": round(min(1.0, pool), 3), "reduce": round(min(1.0, pool), 3),
            "move": round(min(1.0, pool), 3),
        },
        "gemm_full_m": full_m, "gemm_full_n": full_n, "gemm_full_k": full_k, "strided_conv_gbps": strided,
        "op_overhead_us": round(oh_ms * 1e3, 3),
        # activations bigger than the cache: the rate of a large pass, relative to DRAM (caches beyond L2 help)
        "bandwidth_efficiency": round(min(1.5, rate("pass_large") / dram_gbps), 3),
        "weight_bandwidth_efficiency": round(min(1.5, 4 * 1024**2 / (busy["gemv"] / 1e3) / 1e9 / dram_gbps), 3),
        "channel_block": block,
        "cache_mb": round(cache_mb, 3),
        "cache_bandwidth_gbps": round(rate("pass_small"), 2),
        "op_efficiency": {"LRN": round(min(1.0, eff("lrn")), 4), "Sigmoid": round(min(1.0, eff("sigmoid")), 4)},
    }
    return spec


def channel_block(flags) -> int:
    """fp32 channels per vector register for these CPU flags: 16 with AVX-512, 8 with AVX, 4 on NEON and
    elsewhere."""
    return 16 if "avx512f" in flags else 8 if "avx" in flags else 4


def l2_mb() -> float:
    """This core's L2 (sysfs); 1 MB where the kernel does not say."""
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for idx in sorted(base.glob("index*")) if base.exists() else []:
        try:
            if (idx / "level").read_text().strip() == "2":
                size = (idx / "size").read_text().strip().upper()
                mult = {"K": 1 / 1024, "M": 1.0}.get(size[-1], 1 / 1024**2)
                return float(size.rstrip("KM")) * mult
        except (OSError, ValueError):
            continue
    return 1.0


def fitted_estimates(profile: dict, flags, runtimes=RUNTIMES) -> dict[str, dict]:
    """Per runtime, the host profile's estimate block fitted in that runtime (profile: hostcal's dict; flags:
    the CPU's, from the fingerprint)."""
    hw = profile["hardware"]
    peak_1t = hw["cpu"]["peak_gflops_fp32"] / hw["cpu"]["cores"]
    return {rt: fit(measure(rt), peak_1t, hw["memory_bandwidth_gbps"], l2_mb(), channel_block(flags))
            for rt in runtimes}
