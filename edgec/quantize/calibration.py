"""Calibration data: a folder of .npy/.npz tensors or images, or seeded random; read one sample at a time.

Files are taken in sorted-name order, so a build is deterministic. The first files calibrate; the remaining
ones are held out for the accuracy report, so accuracy is never measured on the data that chose the scales.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edgec.config.models import InputSpec, Preprocess
from edgec.errors import CalibrationError, ValidationDataError

TENSOR_SUFFIXES = (".npy", ".npz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
HOLDOUT_MAX = 32  # held-out samples used for the accuracy report
VALIDATION_SAMPLES = 8  # validation files used (first by name): enough for a verdict, few enough to stay fast
RANDOM_SEED = 1234  # differs from validation's seed so random calibration never sees the validation inputs

Spec = tuple[str, np.dtype, list[int]]  # (input name, dtype, static shape), as edgec.graph.inputs gives


class Role(NamedTuple):
    """What a data folder is for: its errors name that role and the flag that gave the folder."""

    noun: str
    flag: str  # where the user named the folder
    without: str  # what to do instead of giving a folder
    error: type[CalibrationError]


CALIBRATION = Role("calibration", "`quantize.calibration.source` or --calibration", "pass --calibration random",
                   CalibrationError)
VALIDATION = Role("validation", "--validation-data or `validate.data`",
                  "leave out --validation-data (seeded random inputs)", ValidationDataError)


class CalibrationWarning(UserWarning):
    """Calibration on random data: the build works but its accuracy is unmeasured."""


@dataclass
class CalibrationSet:
    """An ordered list of samples that are loaded on demand (never all in memory)."""

    description: str
    measured: bool  # False for random data: accuracy numbers mean nothing about real inputs
    names: list[str]  # one per sample: file name, or "random #i"
    _load: Callable[[int], dict[str, np.ndarray]]

    def __len__(self) -> int:
        return len(self.names)

    def load(self, i: int) -> dict[str, np.ndarray]:
        return self._load(i)

    def iter(self, indices) -> Iterator[dict[str, np.ndarray]]:
        return (self._load(i) for i in indices)


class StreamReader(CalibrationDataReader):
    """ONNX Runtime's reader interface over a CalibrationSet: one sample per get_next()."""

    def __init__(self, cset: CalibrationSet, indices: list[int]):
        self._cset, self._indices = cset, list(indices)
        self.rewind()

    def get_next(self):
        return next(self._it, None)

    def rewind(self) -> None:
        self._it = self._cset.iter(self._indices)

    def __len__(self) -> int:
        return len(self._indices)


def split(n: int, samples: int) -> tuple[list[int], list[int]]:
    """(calibration indices, held-out indices). Held out: the files past `samples`, or a fifth when there are
    no more files than samples (at least one, when there are two or more files)."""
    if n <= 1:
        return list(range(n)), []
    hold = n - samples if n > samples else max(1, n // 5)
    calib = list(range(n - hold))
    return calib, list(range(n - hold, n))[:HOLDOUT_MAX]


def open_source(
    source: str | Path | None,
    specs: list[Spec],
    inputs: dict[str, InputSpec],
    random_samples: int,
    role: Role = CALIBRATION,
    any_shape: bool = False,
    domains: dict | None = None,
) -> CalibrationSet:
    """The calibration set named by `source`: a folder, or "random". `inputs` is the profile's per-input specs
    (layout and image preprocessing). `role`: what the folder is for, as its errors say. `any_shape`: tensors of
    another shape load as they are (the caller picks the files at the shapes it checks). `domains`: each input's
    values (edgec.graph.inputs.input_domains), which random samples keep to."""
    if source is None:
        raise CalibrationError(
            "int8 quantization needs calibration data and none was given: set `quantize: {calibration: {source: "
            "DIR}}` in the profile or pass `--calibration DIR` (a folder of .npy/.npz tensors or images), or "
            "`--calibration random` to build with unmeasured accuracy."
        )
    if str(source) == "random":
        warnings.warn(
            "calibrating on random data: int8 scales come from N(0, 1) inputs, not your data, so the build's "
            "accuracy is unmeasured. Pass --calibration DIR with real samples for a usable int8 model.",
            CalibrationWarning, stacklevel=2,
        )
        return _random_set(specs, random_samples, domains)
    folder = Path(source)
    what = ", ".join(f"'{n}' {list(s)} {np.dtype(d).name}" for n, d, s in specs)
    if not folder.is_dir():
        raise role.error(
            f"{role.noun} folder {folder} does not exist (or is not a folder). It should hold one .npy/.npz "
            f"file or image per sample for input(s) {what}; fix {role.flag}."
        )
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TENSOR_SUFFIXES + IMAGE_SUFFIXES)
    if not files:
        raise role.error(
            f"{role.noun} folder {folder} has no .npy, .npz or image (.png/.jpg) files. Put one file per sample "
            f"for input(s) {what} there, or {role.without}."
        )
    kinds = {"image" if p.suffix.lower() in IMAGE_SUFFIXES else "tensor" for p in files}
    if len(kinds) > 1:
        raise role.error(
            f"{role.noun} folder {folder} mixes images and .npy/.npz files; keep one kind per folder."
        )
    if "image" in kinds:
        loader = _image_loader(folder, specs, inputs, role)
    else:
        loader = _tensor_loader(specs, role, any_shape)
    return CalibrationSet(
        description=f"{len(files)} {'image' if 'image' in kinds else 'tensor'} file(s) in {folder}",
        measured=True,
        names=[p.name for p in files],
        _load=lambda i: loader(files[i]),
    )


def validation_samples(source: str | Path, specs: list[Spec], inputs: dict[str, InputSpec], samples: int,
                       same_shape_only: bool = False) -> tuple[list[dict[str, np.ndarray]], str]:
    """(feeds, description) of a validation folder (--validation-data): its first max(samples, VALIDATION_SAMPLES)
    files by name, each checked against the inputs (a file that does not fit names itself and the input).
    same_shape_only: an artifact with ranged axes is checked at several lengths; at each, the files at that length
    (none: an empty list), the others skipped, not refused."""
    cset = open_source(source, specs, inputs, 0, VALIDATION, any_shape=same_shape_only)
    take = min(len(cset), max(samples, VALIDATION_SAMPLES))
    if not same_shape_only:
        return [cset.load(i) for i in range(take)], f"{cset.description} (first {take}, sorted by name)"
    want = {n: list(s) for n, _, s in specs}
    feeds = []
    for i in range(len(cset)):
        if len(feeds) == take:
            break
        f = cset.load(i)
        if all(list(f[n].shape) == s for n, s in want.items()):
            feeds.append(f)
    return feeds, f"{len(feeds)} file(s) at these shapes of {cset.description} (first by name)"


def _random_set(specs: list[Spec], n: int, domains: dict | None = None) -> CalibrationSet:
    """Seeded random samples, each input from its domain (edgec.graph.inputs: a mask 0/1, token ids within the
    table) as validation draws them: out-of-domain values (a mask of 7) calibrate scales no real input needs."""
    from edgec.graph.inputs import random_feed

    def load(i: int) -> dict[str, np.ndarray]:
        return random_feed(specs, np.random.default_rng([RANDOM_SEED, i]), domains)  # sample i: same whatever is read

    return CalibrationSet(description=f"{n} seeded random sample(s)", measured=False,
                          names=[f"random #{i}" for i in range(n)], _load=load)


# ---------------------------------------------------------------- tensors


def _fit(arr: np.ndarray, name: str, dtype: np.dtype, shape: list[int], path: Path, role: Role,
         any_shape: bool = False) -> np.ndarray:
    """Check one tensor against the input; a sample saved without its batch-of-1 axis is accepted."""
    if list(arr.shape) != shape and [1, *arr.shape] == shape:
        arr = arr[None]
    if list(arr.shape) != shape and not any_shape:
        raise role.error(
            f"{role.noun} file {path} has shape {list(arr.shape)} for input '{name}', which expects {shape}. "
            f"Save each sample with the model's input shape (one sample per file), or fix the input shape "
            f"with --input-shape {name}=... to match the data."
        )
    if not np.can_cast(arr.dtype, dtype, casting="same_kind"):
        raise role.error(
            f"{role.noun} file {path} holds {arr.dtype} data for input '{name}', which is {np.dtype(dtype).name}. "
            f"Save the samples as {np.dtype(dtype).name}."
        )
    # one NaN/inf widens a calibrated range to NaN/inf: every scale downstream of it would be garbage
    if np.issubdtype(arr.dtype, np.inexact) and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise role.error(
            f"{role.noun} file {path} has {bad} NaN/inf value(s) for input '{name}'; {role.noun} needs finite "
            f"samples (fix or remove that file)."
        )
    return np.ascontiguousarray(arr.astype(dtype, copy=False))


def _tensor_loader(specs: list[Spec], role: Role, any_shape: bool = False) -> Callable[[Path], dict[str, np.ndarray]]:
    by_name = {n: (d, s) for n, d, s in specs}

    def load(path: Path) -> dict[str, np.ndarray]:
        try:
            data = np.load(path, allow_pickle=False)  # no pickles: calibration files are untrusted too
        except Exception as e:
            raise role.error(f"{role.noun} file {path} cannot be read as a numpy file ({e}).") from None
        if isinstance(data, np.ndarray):
            if len(specs) != 1:
                raise role.error(
                    f"{role.noun} file {path} is a single .npy array but the model has {len(specs)} inputs "
                    f"({', '.join(by_name)}); save each sample as an .npz with one array per input name."
                )
            arrays = {specs[0][0]: data}
        else:
            with data:
                keys = list(data.keys())
                if len(specs) == 1 and len(keys) == 1:
                    arrays = {specs[0][0]: data[keys[0]]}
                else:
                    missing = [n for n in by_name if n not in keys]
                    if missing:
                        raise role.error(
                            f"{role.noun} file {path} has arrays {keys} but no array for input(s) "
                            f"{', '.join(repr(m) for m in missing)}; save one array per input, keyed by input name."
                        )
                    arrays = {n: data[n] for n in by_name}
        return {n: _fit(a, n, *by_name[n], path, role, any_shape) for n, a in arrays.items()}

    return load


# ---------------------------------------------------------------- images


def _image_loader(folder: Path, specs: list[Spec], inputs: dict[str, InputSpec], role: Role):
    if len(specs) != 1:
        raise role.error(
            f"{role.noun} folder {folder} holds images but the model has {len(specs)} inputs; images calibrate "
            f"single-input models only. Save each sample as an .npz with one array per input name."
        )
    name, dtype, shape = specs[0]
    spec = inputs.get(name) or InputSpec()
    layout = spec.layout or _guess_layout(shape)
    if len(shape) != 4 or layout is None:
        raise role.error(
            f"{role.noun} folder {folder} holds images but input '{name}' has shape {shape}, which is not an "
            f"image batch [N, C, H, W] or [N, H, W, C]; give .npy files, or set "
            f"`inputs: {{{name}: {{layout: NCHW}}}}` in the profile."
        )
    try:
        from PIL import Image
    except ImportError:
        raise role.error(
            f"{role.noun} folder {folder} holds images, and reading them needs Pillow: `pip install pillow` "
            f"(or `pip install edgec[images]`), or convert the images to .npy files."
        ) from None
    pre = spec.preprocess or Preprocess()
    n, c, h, w = shape if layout == "NCHW" else (shape[0], shape[3], shape[1], shape[2])
    if n != 1:
        raise role.error(
            f"{role.noun} folder {folder} holds images but input '{name}' has batch size {n}; each image is one "
            f"sample, so fix the batch with --input-shape {name}=1,... or use .npz files holding whole batches."
        )
    color = "GRAY" if c == 1 else pre.color
    if c not in (1, 3):
        raise role.error(f"{role.noun} folder {folder} holds images but input '{name}' has {c} channels; images "
                         f"give 1 (GRAY) or 3 (RGB/BGR): give .npy files.")

    def load(path: Path) -> dict[str, np.ndarray]:
        try:
            with Image.open(path) as im:
                im = im.convert("L" if color == "GRAY" else "RGB")
                rh, rw = pre.resize or (h, w)
                im = im.resize((rw, rh), Image.Resampling.BILINEAR)
                x = np.asarray(im, dtype=np.float32)
        except CalibrationError:
            raise
        except Exception as e:
            raise role.error(f"{role.noun} image {path} cannot be read ({e}).") from None
        if (x.shape[0], x.shape[1]) != (h, w):
            raise role.error(
                f"{role.noun} image {path}: preprocess.resize {pre.resize} gives {x.shape[0]}x{x.shape[1]} images for input '{name}', "
                f"which expects {h}x{w}; fix `preprocess.resize` in the profile."
            )
        x = x[..., None] if x.ndim == 2 else x
        if color == "BGR":
            x = x[..., ::-1]
        k = x.shape[-1]
        x = (x * pre.scale - np.asarray(pre.mean[:k], np.float32)) / np.asarray(pre.std[:k], np.float32)
        x = x[None] if layout == "NHWC" else x.transpose(2, 0, 1)[None]
        return {name: np.ascontiguousarray(x.astype(dtype))}

    return load


def _guess_layout(shape: list[int]) -> str | None:
    if len(shape) != 4:
        return None
    if shape[1] in (1, 3):
        return "NCHW"
    if shape[3] in (1, 3):
        return "NHWC"
    return None


def source_digest(source: str | Path | None) -> str | None:
    """A fingerprint of a calibration folder (file names, sizes, modification times) for build-cache keys:
    the profile only names the folder, so changed samples must change the key. None for no folder."""
    if source is None or str(source) == "random":
        return None
    import hashlib

    folder = Path(source)
    if not folder.is_dir():
        return "missing"
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in TENSOR_SUFFIXES + IMAGE_SUFFIXES:
            st = p.stat()
            h.update(f"{p.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
