"""Weight compression of a converted ML Program (coremltools.optimize.coreml), from the profile's
coreml.compression. Only const weights change (to constexpr_* ops the runtime expands at load time);
activations and compute precision stay as converted.

  int8        linear symmetric int8, one scale per output channel        (iOS16+)
  palettize   2**nbits-entry lookup table per tensor, k-means or uniform  (iOS16+; nbits 3 needs iOS18+)
  int4-block  linear symmetric int4, one scale per block of block_size    (iOS18+)
"""

from __future__ import annotations

import contextlib
import io

from edgec.config.models import CoreMLCompression
from edgec.errors import ConfigError, LoweringError

# lowest deployment target (per OS family) each mode's constexpr ops exist in
_IOS18_FAMILY = {"iOS": 18, "macOS": 15, "watchOS": 11, "tvOS": 18}


def needs_ios18(spec: CoreMLCompression) -> bool:
    return spec.mode == "int4-block" or (spec.mode == "palettize" and spec.nbits == 3)


def check(spec: CoreMLCompression, deployment_target: str, profile: str) -> None:
    """ConfigError naming the YAML key when the mode cannot be expressed for the deployment target."""
    if spec.mode == "none" or not needs_ios18(spec):
        return
    family = deployment_target.rstrip("0123456789")
    version = int(deployment_target[len(family):] or 0)
    lowest = _IOS18_FAMILY.get(family)
    if lowest is None or version < lowest:
        what = "int4-block" if spec.mode == "int4-block" else "palettize with nbits: 3"
        raise ConfigError(
            f"profile '{profile}': coreml.compression.mode {what} needs CoreML's iOS18 weight ops, but the "
            f"target's coreml_minimum_deployment_target is {deployment_target}; raise it to "
            f"{family}{lowest if lowest else ''} or use coreml.compression.mode int8 / palettize (nbits 4, 6 or 8)."
        )


def _config(spec: CoreMLCompression):
    import coremltools.optimize.coreml as cto

    if spec.mode == "int8":
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                         weight_threshold=spec.weight_threshold)
    elif spec.mode == "int4-block":
        op = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int4", granularity="per_block",
                                         block_size=spec.block_size, weight_threshold=spec.weight_threshold)
    elif spec.palette == "uniform":
        op = cto.OpPalettizerConfig(mode="uniform", nbits=spec.nbits, granularity="per_tensor",
                                    weight_threshold=spec.weight_threshold)
    else:  # our own k-means: coremltools' needs scikit-learn (and kmeans1d), which edgec does not depend on
        op = cto.OpPalettizerConfig(mode="custom", lut_function=KMeansLut(spec.nbits), granularity="per_tensor",
                                    weight_threshold=spec.weight_threshold)
    return cto.OptimizationConfig(global_config=op)


class KMeansLut:
    """lut_function for coremltools' custom palettization: weighted 1-D Lloyd k-means, deterministic.

    Centroids start at density**(1/3) quantiles and take a fixed number of iterations; they are fitted on at
    most _FIT_SAMPLES evenly strided weights (big fc layers have 10^8), then every weight gets its nearest.
    """

    _ITERATIONS = 25
    _FIT_SAMPLES = 1 << 20

    def __init__(self, nbits: int):
        self.nbits = nbits

    @staticmethod
    def _start(sample, k: int):
        """Centres spaced by density**(1/3) (the high-resolution optimum for squared error): Lloyd's from
        plain quantiles converges slowly for 64+ centres."""
        import numpy as np

        hist, edges = np.histogram(sample, bins=4096)
        cdf = np.concatenate([[0.0], np.cumsum(np.cbrt(hist))])
        if cdf[-1] == 0:
            return np.unique(sample)
        return np.interp((np.arange(k) + 0.5) / k * cdf[-1], cdf, edges)

    def __call__(self, weight):
        import numpy as np

        flat = np.asarray(weight).reshape(-1)
        k = 1 << self.nbits
        work = flat.astype(np.float64)
        sample = np.sort(work[:: max(1, work.size // self._FIT_SAMPLES)])
        centers = self._start(sample, k)
        for _ in range(self._ITERATIONS):
            centers = np.unique(centers)  # merged centres (few distinct weights) drop out
            assign = np.searchsorted((centers[1:] + centers[:-1]) / 2, sample)
            sums = np.bincount(assign, weights=sample, minlength=centers.size)
            counts = np.bincount(assign, minlength=centers.size)
            centers = np.where(counts > 0, sums / np.maximum(counts, 1), centers)
        centers = np.sort(centers)
        lut = np.zeros(k, np.float64)
        lut[: centers.size] = centers
        lut[centers.size:] = centers[-1]  # unused entries: repeat the last centre
        indices = np.searchsorted((centers[1:] + centers[:-1]) / 2, work).astype(np.uint8)
        return lut.astype(flat.dtype), indices


def describe(spec: CoreMLCompression) -> str:
    if spec.mode == "int8":
        return "int8 linear symmetric, per output channel"
    if spec.mode == "int4-block":
        return f"int4 linear symmetric, blocks of {spec.block_size}"
    return f"{spec.nbits}-bit palettization ({spec.palette} lookup table per tensor)"


def compress(mlmodel, spec: CoreMLCompression, profile: str):
    """The compressed MLModel (a new object), or the same one for mode none."""
    if spec.mode == "none":
        return mlmodel
    import coremltools.optimize.coreml as cto

    fn = cto.linear_quantize_weights if spec.mode in ("int8", "int4-block") else cto.palettize_weights
    stderr = io.StringIO()  # progress bars
    try:
        with contextlib.redirect_stderr(stderr):
            return fn(mlmodel, _config(spec))
    except Exception as e:  # coremltools raises ValueError/AssertionError alike
        raise LoweringError(f"coremltools could not compress the weights ({describe(spec)}, from profile "
                            f"'{profile}' coreml.compression): {type(e).__name__}: {e}") from None


def artifact_precision(compute: str, spec: CoreMLCompression) -> str:
    """What Artifact.precision says: the compute precision, or "<weights>-weights" for compressed weights
    (numerics gates treat "*-weights" like int8: low-bit weights cannot meet an fp16 cosine)."""
    if spec.mode == "none":
        return compute
    if spec.mode == "int8":
        return "int8-weights"
    if spec.mode == "int4-block":
        return "int4-weights"
    return f"lut{spec.nbits}-weights"


def const_bytes(mlmodel) -> int:
    """Bytes of the float weights in a converted (uncompressed) program."""
    import numpy as np

    total = 0
    for fn in mlmodel._mil_program.functions.values():
        for op in fn.find_ops(op_type="const"):
            val = op.outputs[0].val
            if isinstance(val, np.ndarray):
                total += val.nbytes
    return total


def weight_file_bytes(package) -> int:
    """Size of the saved weight blob file(s) of an .mlpackage."""
    from pathlib import Path

    folder = Path(package) / "Data" / "com.apple.CoreML" / "weights"
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) if folder.exists() else 0
