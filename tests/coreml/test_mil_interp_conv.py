"""conv / conv_transpose / pools through a saved .mlpackage vs ONNX Runtime Conv / ConvTranspose / pools."""

from __future__ import annotations

import numpy as np
import pytest

from .mil_interp_helpers import mb, interp, onnx_ref, rand

# (x shape, w shape, strides, dilations, groups, MIL pad_type, MIL pad [b0, e0, b1, e1, ...])
CONV_CASES = {
    "same_odd_kernel": ((1, 4, 9, 10), (6, 4, 3, 3), (1, 1), (1, 1), 1, "same", None),
    "same_even_kernel_stride2": ((1, 4, 9, 10), (6, 4, 4, 4), (2, 2), (1, 1), 1, "same", None),
    "same_lower_even_kernel_stride2": ((1, 4, 9, 10), (6, 4, 4, 4), (2, 2), (1, 1), 1, "same_lower", None),
    "same_dilated": ((1, 3, 11, 8), (5, 3, 3, 2), (2, 1), (2, 3), 1, "same", None),
    "custom_asymmetric_dilated": ((2, 4, 9, 10), (6, 4, 3, 3), (2, 1), (2, 1), 1, "custom", (1, 2, 0, 3)),
    "valid_groups2": ((1, 4, 9, 10), (6, 2, 3, 3), (1, 2), (1, 1), 2, "valid", None),
    "depthwise_same_stride2": ((1, 4, 9, 10), (4, 1, 3, 3), (2, 2), (1, 1), 4, "same", None),
    "depthwise_multiplier2": ((1, 4, 9, 10), (8, 1, 3, 3), (1, 1), (1, 1), 4, "custom", (1, 1, 1, 1)),
    "pointwise": ((1, 8, 5, 6), (3, 8, 1, 1), (1, 1), (1, 1), 1, "valid", None),
    "conv1d_same_stride2": ((1, 4, 17), (5, 4, 3), (2,), (1,), 1, "same", None),
    "conv3d_custom": ((1, 2, 5, 6, 7), (3, 2, 3, 2, 3), (1, 2, 1), (1, 1, 2), 1, "custom", (1, 0, 0, 1, 2, 2)),
}

_AUTO_PAD = {"same": "SAME_UPPER", "same_lower": "SAME_LOWER", "valid": "VALID"}


def _onnx_pad_attrs(pad_type, pad, nsp, x_shape=None, kernel=None, strides=None, dil=None):
    if pad_type == "same" and dil is not None and any(d > 1 for d in dil):
        # ORT refuses SAME_UPPER with dilation: spell out TF SAME (odd pixel at the end)
        pad = []
        for i, k, s, d in zip(x_shape[2:], kernel, strides, dil):
            total = max(0, (-(-i // s) - 1) * s + (k - 1) * d + 1 - i)
            pad += [total // 2, total - total // 2]
        pad_type = "custom"
    if pad_type == "custom":
        # MIL: [b0, e0, b1, e1]; ONNX: [b0, b1, e0, e1]
        return {"pads": list(pad[0::2]) + list(pad[1::2])}
    return {"auto_pad": _AUTO_PAD[pad_type]}


@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv_matches_onnxruntime(case, tmp_path):
    xs, ws, strides, dil, groups, pad_type, pad = CONV_CASES[case]
    bias = case in ("same_even_kernel_stride2", "depthwise_same_stride2", "conv3d_custom", "pointwise")
    w = rand(*ws, seed=1)
    b = rand(ws[0], seed=2) if bias else None
    x = rand(*xs, seed=3)

    @mb.program(input_specs=[mb.TensorSpec(shape=xs)])
    def prog(x):
        kw = dict(weight=w, strides=list(strides), dilations=list(dil), groups=groups, pad_type=pad_type)
        if pad is not None:
            kw["pad"] = list(pad)
        if b is not None:
            kw["bias"] = b
        return mb.conv(x=x, **kw)

    (got,), runner = interp(prog, {"x": x}, tmp_path)
    assert "conv" in runner.op_types
    inits = {"w": w, **({"b": b} if b is not None else {})}
    attrs = dict(strides=list(strides), dilations=list(dil), group=groups, **_onnx_pad_attrs(pad_type, pad, len(strides), xs, ws[2:], strides, dil))
    (want,) = onnx_ref("Conv", {"x": x}, attrs, inits)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# (x shape, w shape [C_in, C_out/groups, *K], strides, dilations, groups, pad_type, pad, output_shape)
DECONV_CASES = {
    "valid_stride2": ((1, 4, 5, 6), (4, 3, 3, 3), (2, 2), (1, 1), 1, "valid", None, None),
    "custom_pads_dilated": ((1, 4, 5, 6), (4, 3, 3, 2), (2, 1), (1, 2), 1, "custom", (1, 0, 2, 1), None),
    "groups2": ((1, 4, 5, 5), (4, 2, 3, 3), (2, 2), (1, 1), 2, "custom", (1, 1, 1, 1), None),
    "output_shape_crops_end": ((1, 4, 4, 4), (4, 3, 3, 3), (2, 2), (1, 1), 1, "valid", None, (1, 3, 8, 8)),
    "conv1d": ((1, 3, 7), (3, 2, 4), (3,), (1,), 1, "custom", (1, 2), None),
}


@pytest.mark.parametrize("case", list(DECONV_CASES))
def test_conv_transpose_matches_onnxruntime(case, tmp_path):
    xs, ws, strides, dil, groups, pad_type, pad, out_shape = DECONV_CASES[case]
    w = rand(*ws, seed=4)
    b = rand(ws[1] * groups, seed=5)
    x = rand(*xs, seed=6)

    @mb.program(input_specs=[mb.TensorSpec(shape=xs)])
    def prog(x):
        kw = dict(weight=w, bias=b, strides=list(strides), dilations=list(dil), groups=groups, pad_type=pad_type)
        if pad is not None:
            kw["pad"] = list(pad)
        if out_shape is not None:
            kw["output_shape"] = list(out_shape)
        return mb.conv_transpose(x=x, **kw)

    (got,), runner = interp(prog, {"x": x}, tmp_path)
    assert "conv_transpose" in runner.op_types
    nsp = len(strides)
    if pad_type == "custom":
        pads = list(pad[0::2]) + list(pad[1::2])
    else:
        pads = [0] * (2 * nsp)
    if out_shape is not None:  # MIL crops the full output at the end; ONNX says so with end pads
        full = [s * (n - 1) + (k - 1) * d + 1 for s, n, k, d in zip(strides, xs[2:], ws[2:], dil)]
        pads = pads[:nsp] + [f - o for f, o in zip(full, out_shape[2:])]
    (want,) = onnx_ref("ConvTranspose", {"x": x}, dict(strides=list(strides), dilations=list(dil), group=groups,
                                                       pads=pads), {"w": w, "b": b})
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv_transpose_same_is_stride_times_input(tmp_path):
    """pad_type 'same': output = stride * input, the centre crop of the full output (TF SAME)."""
    x = rand(1, 2, 4, 5, seed=7)
    w = rand(2, 3, 3, 3, seed=8)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x):
        return mb.conv_transpose(x=x, weight=w, strides=[2, 2], pad_type="same")

    (got,), _ = interp(prog, {"x": x}, tmp_path)
    # full output 9x11, crop total k - s = 1: nothing before, one row/col after
    (full,) = onnx_ref("ConvTranspose", {"x": x}, dict(strides=[2, 2]), {"w": w})
    np.testing.assert_allclose(got, full[:, :, :8, :10], rtol=1e-4, atol=1e-4)


# (x shape, kernel, strides, MIL pad_type, MIL pad, ceil_mode)
POOL_CASES = {
    "k3s2_valid": ((1, 3, 9, 10), (3, 3), (2, 2), "valid", None, False),
    "k3s2_custom_pad": ((1, 3, 9, 10), (3, 3), (2, 2), "custom", (1, 1, 0, 1), False),
    "k3s2_ceil": ((1, 3, 10, 10), (3, 3), (2, 2), "valid", None, True),
    "k3s2_ceil_pad": ((1, 3, 10, 11), (3, 3), (2, 2), "custom", (1, 1, 1, 1), True),
    "k2s2_same": ((1, 3, 7, 9), (2, 2), (2, 2), "same", None, False),
    "k3s1_same": ((2, 2, 6, 7), (3, 3), (1, 1), "same", None, False),
}


def _pool_onnx_attrs(kernel, strides, pad_type, pad, ceil):
    attrs = dict(kernel_shape=list(kernel), strides=list(strides), ceil_mode=int(ceil))
    attrs.update(_onnx_pad_attrs(pad_type, pad, len(kernel)))
    return attrs


@pytest.mark.parametrize("case", list(POOL_CASES))
def test_max_pool_matches_onnxruntime(case, tmp_path):
    xs, k, s, pt, pad, ceil = POOL_CASES[case]
    x = rand(*xs, seed=9)

    @mb.program(input_specs=[mb.TensorSpec(shape=xs)])
    def prog(x):
        kw = {"pad": list(pad)} if pad is not None else {}
        return mb.max_pool(x=x, kernel_sizes=list(k), strides=list(s), pad_type=pt, ceil_mode=ceil, **kw)

    (got,), runner = interp(prog, {"x": x}, tmp_path)
    assert "max_pool" in runner.op_types
    (want,) = onnx_ref("MaxPool", {"x": x}, _pool_onnx_attrs(k, s, pt, pad, ceil))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", list(POOL_CASES))
@pytest.mark.parametrize("exclude", [True, False])
def test_avg_pool_matches_onnxruntime(case, exclude, tmp_path):
    xs, k, s, pt, pad, ceil = POOL_CASES[case]
    x = rand(*xs, seed=10)

    @mb.program(input_specs=[mb.TensorSpec(shape=xs)])
    def prog(x):
        kw = {"pad": list(pad)} if pad is not None else {}
        return mb.avg_pool(x=x, kernel_sizes=list(k), strides=list(s), pad_type=pt, ceil_mode=ceil,
                           exclude_padding_from_average=exclude, **kw)

    (got,), runner = interp(prog, {"x": x}, tmp_path)
    assert "avg_pool" in runner.op_types
    attrs = _pool_onnx_attrs(k, s, pt, pad, ceil)
    attrs["count_include_pad"] = int(not exclude)
    (want,) = onnx_ref("AveragePool", {"x": x}, attrs)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_l2_pool_matches_onnxruntime_lppool(tmp_path):
    x = rand(1, 3, 9, 10, seed=11)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x):
        return mb.l2_pool(x=x, kernel_sizes=[3, 2], strides=[2, 1], pad_type="custom", pad=[1, 0, 0, 1])

    (got,), _ = interp(prog, {"x": x}, tmp_path)
    (want,) = onnx_ref("LpPool", {"x": x}, dict(p=2, kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 0, 1]))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
