"""LiteRT (TFLite) on this machine, XNNPACK on: runs a .tflite through its SignatureDef.

Feeds and results are keyed by the ONNX input/output names (the signature carries them) and are in the
ONNX layout: the model itself holds the boundary transposes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edgec.errors import LoweringError


def interpreter(path: Path | str, threads: int = 1, xnnpack: bool = True) -> Interpreter:
    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interp = Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise LoweringError(f"LiteRT cannot load {path}: {e}") from None
    return interp


class LiteRTRunner:
    def __init__(self, path: Path | str, threads: int = 1, xnnpack: bool = True):
        self.name = "litert" if xnnpack else "litert (no XNNPACK)"
        self.interp = interpreter(path, threads, xnnpack)
        self.signature = self.interp.get_signature_runner("serving_default")
        self._dtypes = {k: v["dtype"] for k, v in self.signature.get_input_details().items()}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(self._dtypes) - set(feeds)
        if missing:
            raise LoweringError(f"LiteRT model needs inputs {sorted(missing)}")
        args = {k: np.ascontiguousarray(feeds[k], dtype=self._dtypes[k]) for k in self._dtypes}
        try:
            out = self.signature(**args)
        except (ValueError, RuntimeError) as e:
            raise LoweringError(f"LiteRT failed to run the model: {e}") from None
        return {k: np.array(v) for k, v in out.items()}
