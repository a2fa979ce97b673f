"""LiteRT (TFLite) on this machine, XNNPACK on: runs a .tflite through its SignatureDef.

Feeds and results are keyed by the ONNX input/output names (the signature carries them) and are in the
ONNX layout: the model itself holds the boundary transposes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edgec.errors import LoweringError, ShapeError
from edgec.runtimes.metadata import IO_LAYOUT_KEY, IO_QUANT_KEY, read_metadata
from edgec.runtimes.native_log import drop_native_lines

_STARTUP_CHATTER = ("INFO: Created TensorFlow Lite XNNPACK delegate",)


def interpreter(path: Path | str, threads: int = 1, xnnpack: bool = True) -> Interpreter:
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        with drop_native_lines(_STARTUP_CHATTER):
            interp = Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise LoweringError(f"LiteRT cannot load {path}: {e}") from None
    return interp


def io_layout(path: Path | str) -> dict[str, str]:
    """{ONNX name: "NHWC"} for the channels-last inputs/outputs edgec recorded in the file's metadata."""
    try:
        raw = read_metadata(path, IO_LAYOUT_KEY)
    except (OSError, ValueError):
        return {}
    return json.loads(raw) if raw else {}


class LiteRTRunner:
    """nhwc: ONNX input/output names the model holds channels-last (profile tflite.io_layout: nhwc); the
    runner still takes and returns them in the ONNX layout, transposing at the boundary."""

    def __init__(self, path: Path | str, threads: int = 1, xnnpack: bool = True, nhwc: tuple[str, ...] | None = None):
        self.name = "litert" if xnnpack else "litert (no XNNPACK)"
        self.nhwc = set(io_layout(path)) if nhwc is None else set(nhwc)
        self.interp = interpreter(path, threads, xnnpack)
        self.signature = self.interp.get_signature_runner("serving_default")
        self._dtypes = {k: v["dtype"] for k, v in self.signature.get_input_details().items()}
        # -1 = any size (a batch-polymorphic file, tflite.dynamic_batch): the signature runner resizes the
        # input and re-allocates when a feed's shape differs; any other dim must match the file's
        self._signatures = {k: [int(d) for d in v["shape_signature"]]
                            for k, v in self.signature.get_input_details().items()}
        # int8 model I/O standing for float ONNX tensors (tflite.io_dtype: int8, named in the file's metadata):
        # feeds are quantized and outputs dequantized with the file's params
        quantized = set(_quantized_io(path))
        self._qin = {k: v["quantization"] for k, v in self.signature.get_input_details().items() if k in quantized}
        self._qout = {k: v["quantization"] for k, v in self.signature.get_output_details().items() if k in quantized}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(self._dtypes) - set(feeds)
        if missing:
            raise LoweringError(f"LiteRT model needs inputs {sorted(missing)}")
        feeds = {k: _quantize(v, self._qin[k]) if k in self._qin else v for k, v in feeds.items()}
        # np.asarray(order="C"), not ascontiguousarray: that one turns a rank-0 feed into shape [1]
        args = {k: np.asarray(feeds[k].transpose(0, 2, 3, 1) if k in self.nhwc else feeds[k],
                              dtype=self._dtypes[k], order="C") for k in self._dtypes}
        for k, v in args.items():
            sig = self._signatures[k]
            if len(v.shape) != len(sig) or any(s not in (-1, d) for s, d in zip(sig, v.shape)):
                raise ShapeError(f"LiteRT model input '{k}' takes shape {sig} (-1: any size), got {list(v.shape)}"
                                 + (" (channels-last)" if k in self.nhwc else "")
                                 + "; build with profile tflite.dynamic_batch: true for a batch-polymorphic model.")
        try:
            out = self.signature(**args)
        except (ValueError, RuntimeError) as e:
            raise LoweringError(f"LiteRT failed to run the model: {e}") from None
        out = {k: (v.astype(np.float32) - self._qout[k][1]) * np.float32(self._qout[k][0]) if k in self._qout else v
               for k, v in out.items()}
        return {k: np.array(v.transpose(0, 3, 1, 2) if k in self.nhwc else v) for k, v in out.items()}


def _quantized_io(path: Path | str) -> list[str]:
    try:
        raw = read_metadata(path, IO_QUANT_KEY)
    except (OSError, ValueError):
        return []
    return json.loads(raw) if raw else []


def _quantize(x: np.ndarray, params: tuple[float, int]) -> np.ndarray:
    """Float -> int8 like QuantizeLinear (round half to even, saturate)."""
    scale, zero = params
    return np.clip(np.rint(np.asarray(x, np.float32) / np.float32(scale)) + zero, -128, 127).astype(np.int8)


def xnnpack_coverage(path: Path | str) -> dict[str, dict[str, int]]:
    """Which ops XNNPACK took: {"xnnpack": {op: n}, "cpu": {op: n}} (TFLite builtin op names).

    LiteRT keeps the original nodes next to the DELEGATE nodes that replaced them, without saying which
    were replaced, so this derives it from the DELEGATE nodes' boundary tensors (from the last op back):
    an op is delegated if it writes a DELEGATE output, or if every consumer of its outputs is delegated
    and none of them is a DELEGATE input or a model output (those the CPU had to compute).
    Uses the interpreter's `_get_ops_details()` (private, but the only per-node view the Python API has).
    """
    interp = interpreter(path, 1, xnnpack=True)
    ops = interp._get_ops_details()
    model_outputs = {d["index"] for d in interp.get_output_details()}
    delegates = [o for o in ops if o["op_name"] == "DELEGATE"]
    d_out = {int(t) for o in delegates for t in o["outputs"]}
    d_in = {int(t) for o in delegates for t in o["inputs"]}
    nodes = [o for o in ops if o["op_name"] != "DELEGATE"]
    consumers: dict[int, list[int]] = {}
    for k, o in enumerate(nodes):
        for t in o["inputs"]:
            consumers.setdefault(int(t), []).append(k)
    delegated = [False] * len(nodes)
    for k in range(len(nodes) - 1, -1, -1):
        outs = [int(t) for t in nodes[k]["outputs"]]
        if any(t in d_out for t in outs):
            delegated[k] = True
        elif any(t in d_in or t in model_outputs for t in outs):
            delegated[k] = False
        else:
            users = [c for t in outs for c in consumers.get(t, [])]
            delegated[k] = bool(users) and all(delegated[c] for c in users)
    report: dict[str, dict[str, int]] = {"xnnpack": {}, "cpu": {}}
    for k, o in enumerate(nodes):
        side = report["xnnpack" if delegated[k] else "cpu"]
        side[o["op_name"]] = side.get(o["op_name"], 0) + 1
    return {k: dict(sorted(v.items())) for k, v in report.items()}
