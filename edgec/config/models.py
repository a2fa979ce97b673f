"""Pydantic models for targets (what a platform accepts) and profiles (what a device is and must meet).

Every model forbids unknown keys so a typo in a YAML file is an error that names the key and line.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Format = Literal["ort", "tflite", "coreml"]
QuantMode = Literal["none", "fp16", "int8", "int8-dynamic", "int8-weights"]
LatencyMode = Literal["host", "emulate", "estimate", "device", "off"]
# cores QEMU user-mode emulates by name (edgec.runtimes.emulator.cores); never `max` (SVE/SME kernels no phone runs)
EmulatedCore = Literal["cortex-a35", "cortex-a53", "cortex-a57", "cortex-a72", "cortex-a76", "neoverse-n1"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- target


class Target(Strict):
    name: str
    description: str = ""
    format: Format
    runtime: str  # e.g. "onnxruntime-mobile", "litert", "coreml"
    runtime_version: str = ""  # lowest runtime version the artifact must load on
    extension: str  # artifact file suffix, e.g. ".ort"
    precisions: list[Literal["fp32", "fp16", "int8"]] = ["fp32"]
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    default_profile: str
    integration: Literal["xcode", "gradle", "python", "none"] = "none"
    # backend-specific knobs, validated by the backend that reads them (kept flat and typed here)
    ort_optimization_level: Literal["basic", "extended", "all"] = "extended"
    ort_optimization_style: Literal["fixed", "runtime"] = "fixed"
    coreml_minimum_deployment_target: str = "iOS16"
    coreml_compute_precision: Literal["fp16", "fp32"] = "fp16"


# ---------------------------------------------------------------- profile


class CpuSpec(Strict):
    cores: int = Field(ge=1)
    big_cores: int | None = None
    peak_gflops_fp32: float = Field(gt=0)
    peak_gops_int8: float | None = Field(default=None, gt=0)
    peak_gflops_fp16: float | None = Field(default=None, gt=0)
    emulate: EmulatedCore | None = None  # the QEMU core closest to the device's (big) cores, for --emulator qemu
    clock_ghz: float | None = Field(default=None, gt=0)  # cores' clock: the instruction model's cycles -> ms
    # last-level cache (MB): the instruction model's memory term leaves out the activations of ops that fit in it
    llc_mb: float | None = Field(default=None, gt=0)
    # per-core L2 (KB) below the last level: with llc_mb, the emulator simulates the core's caches (stall term)
    l2_kb: float | None = Field(default=None, gt=0)


class AcceleratorSpec(Strict):
    name: str
    peak_gflops_fp16: float | None = Field(default=None, gt=0)
    peak_gops_int8: float | None = Field(default=None, gt=0)
    peak_gflops_fp32: float | None = Field(default=None, gt=0)


class EstimateSpec(Strict):
    """Roofline knobs of edgec.validate.estimate; `edgec profiles detect` measures them for the host."""

    # share of the unit's peak that each kind of op reaches (gemm: large, well-shaped GEMMs)
    # (depthwise_unaligned: depthwise convs whose channel count is not a multiple of channel_block, where a
    # runtime's vector kernel falls back to a slower path; costfit fits both on the host)
    efficiency: dict[Literal["gemm", "depthwise", "elementwise", "reduce", "move", "depthwise_unaligned"], float] = {
        "gemm": 0.6, "depthwise": 0.25, "elementwise": 0.25, "reduce": 0.2, "move": 0.2}
    channel_block: int | None = Field(default=None, ge=1)
    # GEMM sides at which the vector units are full; shorter sides scale efficiency by sqrt(side / full)
    # (GEMM micro-kernels tile a few rows by tens of columns; fitted on 14 models in bench/estimate.py)
    gemm_full_m: int = Field(default=16, ge=1)
    gemm_full_n: int = Field(default=64, ge=1)
    gemm_full_k: int = Field(default=64, ge=1)
    # a strided conv's runtime expands its input (im2col, K x N elements) in a slower pass than at stride 1:
    # that pass's rate (None: no such pass, the runtime convolves strides directly; costfit fits it per runtime)
    strided_conv_gbps: float | None = Field(default=None, gt=0)
    bandwidth_efficiency: float = Field(default=0.7, gt=0, le=1.5)  # achievable share of the memory bandwidth
    # weights stream at this share of the memory bandwidth (None: min(1, bandwidth_efficiency))
    weight_bandwidth_efficiency: float | None = Field(default=None, gt=0, le=1.5)
    # a pass whose activations fit in this much cache runs at cache_bandwidth_gbps, not from DRAM (None: no tier)
    cache_mb: float | None = Field(default=None, gt=0)
    cache_bandwidth_gbps: float | None = Field(default=None, gt=0)
    op_overhead_us: float = Field(default=8.0, ge=0)  # per-op dispatch cost on the CPU runtime
    accelerator_op_overhead_us: float = Field(default=30.0, ge=0)  # per-op cost on a GPU/NPU delegate
    view_overhead_factor: float = Field(default=0.3, ge=0)  # reshape-like ops cost this share of an op overhead
    # per ONNX op type, overrides its kind's efficiency (a runtime with a slow kernel, e.g. ORT's LRN)
    op_efficiency: dict[str, float] = {}


class Hardware(Strict):
    cpu: CpuSpec
    memory_bandwidth_gbps: float = Field(gt=0)
    memory_gb: float | None = None
    accelerators: dict[str, AcceleratorSpec] = {}
    estimate: EstimateSpec = EstimateSpec()
    # "this machine": the numbers are measured on first use and cached per CPU fingerprint (validate/hostcache);
    # the ones written in the YAML are only the fallback
    calibrated: bool = False


class RuntimeSettings(Strict):
    threads: int = Field(default=4, ge=1)
    delegate: str | None = None  # xnnpack, gpu, nnapi, coreml, ...
    compute_units: Literal["all", "cpu_only", "cpu_and_gpu", "cpu_and_ne"] | None = None


class Preprocess(Strict):
    """How an image becomes the input tensor (used for calibration images and CoreML ImageType)."""

    resize: list[int] | None = None  # [H, W]
    mean: list[float] = [0.0, 0.0, 0.0]
    std: list[float] = [1.0, 1.0, 1.0]
    scale: float = 1.0 / 255.0
    color: Literal["RGB", "BGR", "GRAY"] = "RGB"


class InputSpec(Strict):
    # a dim is a size, or [min, max]: that axis stays dynamic in the artifact where the target can (graph/dynamic.py)
    shape: list[int | list[int]] | None = None
    layout: Literal["NCHW", "NHWC"] | None = None
    dtype: Literal["float32", "float16", "int64", "int32", "uint8", "bool"] | None = None
    preprocess: Preprocess | None = None
    # a fixed value (scalar or small list): the input becomes a constant before simplification (graph/values.py)
    value: int | float | list[int | float] | None = None
    # the values validation feeds this input (else inferred from the graph: edgec.graph.inputs)
    values: list[float] | None = None
    range: list[float] | None = Field(default=None, min_length=2, max_length=2)

    @field_validator("shape")
    @classmethod
    def _ranges(cls, v):
        for d in v or []:
            if isinstance(d, list) and (len(d) != 2 or not 1 <= d[0] <= d[1]):
                raise ValueError(f"a dim range is [min, max] with 1 <= min <= max, not {d}")
        return v


class CalibrationSpec(Strict):
    source: str | None = None  # folder of .npy/.npz/images, or "random"
    samples: int = Field(default=128, ge=1)
    # auto: per tensor, the one of the three whose int8 round trip loses least (edgec/quantize/range_choice.py)
    method: Literal["minmax", "entropy", "percentile", "auto"] = "minmax"


class QuantTarget(Strict):
    """int8: the accuracy the quantized graph must keep on held-out data (edgec/quantize/target.py); nodes go back
    to float, most sensitive first, until it does, or the build fails with a QuantizationError."""

    min_top1_agreement: float | None = Field(default=None, gt=0, le=1)  # classifier outputs: top-1 vs fp32
    min_cosine: float | None = Field(default=None, ge=-1, le=1)  # every output (Softmax as logits)
    held_out: str | None = None  # folder of held-out samples; None: every k-th calibration file (k = 1/fraction)
    held_out_fraction: float = Field(default=0.25, gt=0, lt=1)
    candidates: int = Field(default=16, ge=1)  # worst-ranked nodes measured float one at a time
    max_float_nodes: int = Field(default=12, ge=0)  # count bound: never more nodes float than this
    # size bound: float nodes' weights at most this fraction of all weight elements (int8 conv nets are ~0.27x of
    # fp32; each float element adds 3 of its 4 bytes back: 0.02 keeps them under ~0.30x)
    max_float_weight_fraction: float = Field(default=0.02, gt=0, le=1)

    @model_validator(mode="after")
    def _some_goal(self):
        if self.min_top1_agreement is None and self.min_cosine is None:
            raise ValueError("quantize.target needs min_top1_agreement and/or min_cosine")
        return self


class QuantizeSpec(Strict):
    mode: QuantMode = "none"
    target: QuantTarget | None = None  # int8 only: accuracy to reach on held-out data
    calibration: CalibrationSpec = CalibrationSpec()
    per_channel: bool = True  # int8: one weight scale per output channel
    keep_float: list[str] = []  # node names or op types never quantized (int8) / kept fp32 (fp16)
    sensitivity: int = Field(default=8, ge=0)  # int8: how many of the worst nodes to re-measure left float
    max_float_nodes: int = Field(default=4, ge=0)  # int8: at most this many nodes go back to float to meet min_cosine
    # int8: the first weighted layers reading a float model input stay float, so the input is never rounded to int8
    # (edgec/quantize/islands.py input_layers: the measurement behind it)
    float_input_layers: bool = True
    # int8: activation width. int16 ("16x8": int8 weights, symmetric int16 activations) for models whose error is in
    # the activations (MTCNN's P-Net: 0.86 -> 0.97 of detections kept). auto: int8, and with quantize.target int16
    # when int8 cannot meet the target (edgec/quantize/stage.py)
    activations: Literal["auto", "int8", "int16"] = "auto"


class PrecisionThresholds(Strict):
    """Numerics thresholds for a reduced-precision build (None: the fp32 threshold, or no gate for top-k)."""

    min_cosine: float | None = Field(default=None, ge=-1, le=1)
    min_delta_cosine: float | None = Field(default=None, ge=-1, le=1)  # None: same as min_cosine
    max_abs: float | None = Field(default=None, ge=0)
    min_top1: float | None = Field(default=None, ge=0, le=1)  # top-1 agreement with fp32 on classifier outputs
    min_top5: float | None = Field(default=None, ge=0, le=1)


class NumericsSpec(Strict):
    min_cosine: float = Field(default=0.999, ge=-1, le=1)
    max_abs: float | None = Field(default=None, ge=0)
    min_top1: float | None = Field(default=None, ge=0, le=1)  # top-1 agreement with the reference (classifiers)
    min_top5: float | None = Field(default=None, ge=0, le=1)
    # per-precision overrides: int8 cannot meet an fp32 cosine; int8 covers int8-dynamic and int8-weights too.
    # delta cosine (difference of two inputs' outputs) is tiny signal on random-weight nets, so reduced precision
    # gates it loosely (a layout bug gives ~0; fp16 on random resnet50 measured 0.982, int8 ~0.9)
    precision: dict[Literal["fp16", "int8"], PrecisionThresholds] = {
        "fp16": PrecisionThresholds(min_cosine=0.999, min_delta_cosine=0.95),
        "int8": PrecisionThresholds(min_cosine=0.99, min_delta_cosine=0.5, min_top1=0.9),
    }
    samples: int = Field(default=2, ge=1)
    seed: int = 0
    # qemu[:CORE]: also run android/ort-mobile artifacts with the real aarch64 runtime under QEMU user-mode
    # (CORE default: hardware.cpu.emulate); for int8 the ARM-kernel verdict is the one that gates
    emulator: str | None = Field(default=None, pattern=r"^qemu(:[a-z0-9-]+)?$")
    emulator_samples: int = Field(default=4, ge=2)  # at most this many inputs under emulation (~40-400x slower)


class LatencySpec(Strict):
    mode: LatencyMode = "host"

    @field_validator("mode", mode="before")
    @classmethod
    def _yaml_off(cls, v):
        # YAML 1.1 reads a bare `off` as the boolean False
        return "off" if v is False else v
    budget_ms: float | None = Field(default=None, gt=0)
    budget_on: Literal["median", "p90"] = "median"
    runs: int = Field(default=20, ge=1)
    warmup: int = Field(default=3, ge=0)
    device: str | None = None  # ssh://user@host[:port], adb:SERIAL, coreml (latency mode 'device')
    time_budget_s: float | None = Field(default=None, gt=0)  # stop timing after this long (at least 3 runs)
    host_profile: str | None = None  # emulate: profile (name or YAML) of this machine; default: detected, else 'host'


class ValidateSpec(Strict):
    data: str | None = None  # folder of .npy/.npz/images to validate on (as quantize.calibration.source)
    numerics: NumericsSpec = NumericsSpec()
    latency: LatencySpec = LatencySpec()


class CoreMLCompression(Strict):
    """Weight compression after conversion (coremltools.optimize.coreml); compute stays float."""

    mode: Literal["none", "int8", "palettize", "int4-block"] = "none"
    nbits: Literal[1, 2, 3, 4, 6, 8] = 6  # palettize: bits per weight (a 2**nbits-entry lookup table)
    palette: Literal["kmeans", "uniform"] = "kmeans"  # palettize: table = 1-D k-means centroids, or an even grid
    block_size: int = Field(default=32, ge=1)  # int4-block: weights sharing one scale along the input axis
    weight_threshold: int = Field(default=2048, ge=0)  # smaller weight tensors stay uncompressed


class CoreMLSpec(Strict):
    """CoreML-only choices (other targets ignore them)."""

    compute_precision: Literal["fp16", "fp32"] | None = None  # None: the target's coreml_compute_precision
    # int8 graphs below iOS17 (no int8 activation ops there): false keeps activations float and the weights 8-bit
    # (fp16 program, Neural Engine); true re-rounds every activation to its int8 grid as fp32 arithmetic, so the
    # numbers match the ORT/TFLite int8 artifacts, at float cost and off the Neural Engine
    emulate_int8_activations: bool = False
    compression: CoreMLCompression = CoreMLCompression()
    image_inputs: list[str] = []  # ONNX inputs the app passes as images (ct.ImageType), normalised by inputs.<name>.preprocess
    labels: str | None = None  # text file, one class label per line: the model becomes a CoreML classifier
    classifier_output: str | None = None  # ONNX output holding the class scores (default: the only/first output)


class TFLiteSpec(Strict):
    """TFLite-only choices (other targets ignore them)."""

    # nhwc: 4-D float model inputs/outputs are channels-last (what Android camera frames are), no boundary
    # TRANSPOSE; onnx: they keep the ONNX model's layout. The signature keeps the ONNX names either way.
    io_layout: Literal["onnx", "nhwc"] = "onnx"
    # int8 (with quantize.mode int8): the model takes and returns int8 tensors at the QDQ model's scale/zero point
    # (no QUANTIZE/DEQUANTIZE at the boundary); float: float I/O
    io_dtype: Literal["float", "int8"] = "float"
    # true: the .tflite's batch axis (axis 0 of the inputs) is -1 in its shape_signature, so apps may
    # resize_tensor_input to any batch; built and validated at the profile's concrete batch
    dynamic_batch: bool = False
    # quantize.activations int16: float = the 16-bit Q/DQ pairs dropped: float activations, int8 weights (within a
    # 16-bit step of ORT's 16-bit QDQ, at float speed); kernels = LiteRT's 16x8 ops on int16 tensors, for NPU
    # delegates that take them: on CPU LiteRT has only reference 16x8 kernels, outside XNNPACK (P-Net: 25x slower
    # than fp32 on an x86 host, bench/quantize_trained.py --detector)
    int16_activations: Literal["float", "kernels"] = "float"


class Profile(Strict):
    name: str
    target: str
    description: str = ""
    hardware: Hardware
    runtime: RuntimeSettings = RuntimeSettings()
    inputs: dict[str, InputSpec] = {}
    quantize: QuantizeSpec = QuantizeSpec()
    validate_: ValidateSpec = Field(default=ValidateSpec(), alias="validate")
    metadata: dict[str, str] = {}  # author, license, version, ... carried into artifacts that have metadata
    descriptions: dict[str, str] = {}  # ONNX input/output name -> description, for artifacts with per-feature metadata
    coreml: CoreMLSpec = CoreMLSpec()
    tflite: TFLiteSpec = TFLiteSpec()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
