"""Resizing and space/depth rearrangement ops (image_resizing.py, tensor_transformation.py).

Bilinear sampling grids follow the `sampling_mode` table in iOS15 resize_bilinear's docstring.
"""

from __future__ import annotations

import numpy as np

from . import mil_op
from ._util import compute_dtype, ints, scalar

SAMPLING_MODES = ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS", "DEFAULT", "OFFSET_CORNERS", "UNALIGN_CORNERS")


def grid(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """Source coordinates of the n_out output samples along one axis, clamped to [0, n_in - 1]."""
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            g = np.full(1, (n_in - 1) / 2 if mode == "ALIGN_CORNERS" else 0.0)
        else:
            g = i * (n_in - 1) / (n_out - 1)
    elif mode == "DEFAULT":
        g = i * n_in / n_out  # (Xin - Xin/Xout) / (Xout - 1) simplifies to Xin / Xout
    elif mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        g = 0.5 * delta + i * delta
    elif mode == "UNALIGN_CORNERS":
        spacing = n_in / n_out
        g = i * spacing + 0.5 * spacing - 0.5
    else:
        raise ValueError(f"unknown sampling_mode '{mode}'")
    return np.clip(g, 0, n_in - 1)


def _lerp_axis(x: np.ndarray, g: np.ndarray, axis: int) -> np.ndarray:
    lo = np.floor(g).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[axis] - 1)
    frac = (g - lo).astype(x.dtype)
    shape = [1] * x.ndim
    shape[axis] = -1
    frac = frac.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - frac) + np.take(x, hi, axis=axis) * frac


def bilinear(x, out_h: int, out_w: int, mode: str) -> np.ndarray:
    x = np.asarray(x)
    xc = x.astype(compute_dtype(x))
    y = _lerp_axis(xc, grid(x.shape[-2], out_h, mode), x.ndim - 2)
    return _lerp_axis(y, grid(x.shape[-1], out_w, mode), x.ndim - 1)


def _check_mode(consts):
    mode = consts.get("sampling_mode")
    return None if mode is None or mode in SAMPLING_MODES else f"sampling_mode '{mode}' is unknown"


@mil_op("resize_bilinear", check=_check_mode)
def resize_bilinear(x, target_size_height=1, target_size_width=1, sampling_mode="DEFAULT"):
    return bilinear(x, int(target_size_height), int(target_size_width), sampling_mode)


@mil_op("upsample_bilinear")
def upsample_bilinear(x, scale_factor_height=1, scale_factor_width=1, align_corners=True, half_pixel_centers=None):
    x = np.asarray(x)
    out_h = int(np.floor(x.shape[-2] * float(scale_factor_height)))
    out_w = int(np.floor(x.shape[-1] * float(scale_factor_width)))
    half = (not align_corners) if half_pixel_centers is None else bool(half_pixel_centers)
    if align_corners:
        mode = "STRICT_ALIGN_CORNERS"
    elif half:
        mode = "UNALIGN_CORNERS"  # TF half_pixel_centers / PyTorch align_corners=False
    else:
        mode = "DEFAULT"  # TF asymmetric: src = dst * in / out
    return bilinear(x, out_h, out_w, mode)


def nearest(x, out_h: int, out_w: int, half_pixel: bool) -> np.ndarray:
    """src = floor(dst * in / out) (TF asymmetric), or floor((dst + 0.5) * in / out) (TF half-pixel)."""
    x = np.asarray(x)
    off = 0.5 if half_pixel else 0.0
    ih = np.minimum(np.floor((np.arange(out_h) + off) * x.shape[-2] / out_h).astype(np.int64), x.shape[-2] - 1)
    iw = np.minimum(np.floor((np.arange(out_w) + off) * x.shape[-1] / out_w).astype(np.int64), x.shape[-1] - 1)
    return np.take(np.take(x, ih, axis=-2), iw, axis=-1)


@mil_op("upsample_nearest_neighbor")
def upsample_nearest_neighbor(x, scale_factor_height=1, scale_factor_width=1):
    x = np.asarray(x)
    out_h = int(np.floor(x.shape[-2] * float(scale_factor_height)))
    out_w = int(np.floor(x.shape[-1] * float(scale_factor_width)))
    return nearest(x, out_h, out_w, half_pixel=False)


@mil_op("resize_nearest_neighbor")
def resize_nearest_neighbor(x, target_size_height, target_size_width):
    # coremltools' TF frontend maps ResizeNearestNeighbor(half_pixel_centers=True) to this op
    return nearest(x, int(target_size_height), int(target_size_width), half_pixel=True)


def _check_resize(consts):
    if consts.get("interpolation_mode", "LINEAR") not in ("LINEAR", "NEAREST_NEIGHBOR"):
        return f"interpolation_mode '{consts['interpolation_mode']}' is unknown"
    mode = consts.get("sampling_mode", "DEFAULT")
    if consts.get("interpolation_mode") == "NEAREST_NEIGHBOR" and mode not in ("DEFAULT", "UNALIGN_CORNERS"):
        return f"nearest-neighbor resize with sampling_mode '{mode}' is not implemented by the MIL interpreter"
    return _check_mode(consts)


@mil_op("resize", check=_check_resize)
def resize(x, shape, resized_dims, interpolation_mode="LINEAR", sampling_mode="DEFAULT"):
    """iOS17: the last `resized_dims` dims take their size from `shape` (0 keeps the input's)."""
    x = np.asarray(x)
    shape = ints(shape)
    n = int(resized_dims)
    if n != 2:
        raise ValueError(f"resize over {n} dims is not implemented (only the last two)")
    sizes = [x.shape[x.ndim - 2 + i] if s == 0 else s for i, s in enumerate(shape[-2:])]
    if interpolation_mode == "NEAREST_NEIGHBOR":
        return nearest(x, sizes[0], sizes[1], half_pixel=sampling_mode == "UNALIGN_CORNERS")
    return bilinear(x, sizes[0], sizes[1], sampling_mode)


def _check_crop_resize(consts):
    mode = consts.get("sampling_mode", "DEFAULT")
    if mode not in ("ALIGN_CORNERS", "STRICT_ALIGN_CORNERS"):
        return f"crop_resize with sampling_mode '{mode}' is not implemented by the MIL interpreter"
    return None


@mil_op("crop_resize", check=_check_crop_resize)
def crop_resize(x, roi, target_height=1, target_width=1, normalized_coordinates=False, spatial_scale=1.0,
                box_coordinate_mode="CORNERS_HEIGHT_FIRST", sampling_mode="DEFAULT", pad_value=0.0):
    x = np.asarray(x)
    ct = compute_dtype(x)
    B, C, H, W = x.shape
    roi = np.asarray(roi, dtype=np.float64).reshape(roi.shape[0], -1)
    th, tw = int(target_height), int(target_width)
    crops = []
    for r in roi:
        images = [int(r[0])] if r.size == 5 else list(range(B))
        box = r[-4:] * float(spatial_scale)
        if box_coordinate_mode == "CORNERS_HEIGHT_FIRST":
            h0, w0, h1, w1 = box
        elif box_coordinate_mode == "CORNERS_WIDTH_FIRST":
            w0, h0, w1, h1 = box
        elif box_coordinate_mode == "CENTER_SIZE_HEIGHT_FIRST":
            hc, wc, bh, bw = box
            h0, h1, w0, w1 = hc - bh / 2, hc + bh / 2, wc - bw / 2, wc + bw / 2
        else:
            wc, hc, bw, bh = box
            h0, h1, w0, w1 = hc - bh / 2, hc + bh / 2, wc - bw / 2, wc + bw / 2
        if normalized_coordinates:
            h0, h1, w0, w1 = h0 * (H - 1), h1 * (H - 1), w0 * (W - 1), w1 * (W - 1)
        gh = h0 + np.arange(th) * ((h1 - h0) / (th - 1) if th > 1 else 0.0)
        gw = w0 + np.arange(tw) * ((w1 - w0) / (tw - 1) if tw > 1 else 0.0)
        outside = (gh[:, None] < 0) | (gh[:, None] > H - 1) | (gw[None, :] < 0) | (gw[None, :] > W - 1)
        per_image = []
        for b in images:
            img = x[b].astype(ct)
            y = _lerp_axis(_lerp_axis(img, np.clip(gh, 0, H - 1), 1), np.clip(gw, 0, W - 1), 2)
            per_image.append(np.where(outside[None], ct(scalar(pad_value)), y))
        crops.append(np.stack(per_image))
    return np.stack(crops)


@mil_op("depth_to_space")
def depth_to_space(x, block_size):
    """DCR order (TF): channel = (bh * bs + bw) * C_out + c."""
    x = np.asarray(x)
    b = int(block_size)
    N, C, H, W = x.shape
    y = x.reshape(N, b, b, C // (b * b), H, W).transpose(0, 3, 4, 1, 5, 2)
    return y.reshape(N, C // (b * b), H * b, W * b)


@mil_op("space_to_depth")
def space_to_depth(x, block_size):
    x = np.asarray(x)
    b = int(block_size)
    N, C, H, W = x.shape
    y = x.reshape(N, C, H // b, b, W // b, b).transpose(0, 3, 5, 1, 2, 4)
    return y.reshape(N, C * b * b, H // b, W // b)


@mil_op("pixel_shuffle")
def pixel_shuffle(x, upscale_factor):
    """CRD order (PyTorch): channel = c * r * r + rh * r + rw."""
    x = np.asarray(x)
    r = int(upscale_factor)
    N, C, H, W = x.shape
    y = x.reshape(N, C // (r * r), r, r, H, W).transpose(0, 1, 4, 2, 5, 3)
    return y.reshape(N, C // (r * r), H * r, W * r)


@mil_op("pixel_unshuffle")
def pixel_unshuffle(x, downscale_factor):
    x = np.asarray(x)
    r = int(downscale_factor)
    N, C, H, W = x.shape
    y = x.reshape(N, C, H // r, r, W // r, r).transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(N, C * r * r, H // r, W // r)


@mil_op("space_to_batch")
def space_to_batch(x, block_shape, paddings):
    x = np.asarray(x)
    b0, b1 = ints(block_shape)
    p = np.asarray(paddings).reshape(2, 2)
    x = np.pad(x, [(0, 0), (0, 0), tuple(p[0]), tuple(p[1])])
    N, C, H, W = x.shape
    y = x.reshape(N, C, H // b0, b0, W // b1, b1).transpose(3, 5, 0, 1, 2, 4)
    return y.reshape(b0 * b1 * N, C, H // b0, W // b1)


@mil_op("batch_to_space")
def batch_to_space(x, block_shape, crops):
    x = np.asarray(x)
    b0, b1 = ints(block_shape)
    c = np.asarray(crops).reshape(2, 2)
    NB, C, H, W = x.shape
    N = NB // (b0 * b1)
    y = x.reshape(b0, b1, N, C, H, W).transpose(2, 3, 4, 0, 5, 1).reshape(N, C, H * b0, W * b1)
    return y[:, :, c[0, 0]:H * b0 - c[0, 1], c[1, 0]:W * b1 - c[1, 1]]


@mil_op("crop")
def crop(x, crop_height, crop_width):
    x = np.asarray(x)
    (t, b), (l, r) = ints(crop_height), ints(crop_width)
    return x[..., t:x.shape[-2] - b, l:x.shape[-1] - r]
