"""Small models, profiles and calibration folders for the quantize tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PROFILE = """\
name: quant-test
target: ort-mobile
hardware:
  cpu: {{cores: 2, peak_gflops_fp32: 10}}
  memory_bandwidth_gbps: 10
runtime: {{threads: 1}}
quantize:
  mode: {mode}
  calibration: {{source: {source}, samples: {samples}{method}}}
  sensitivity: {sensitivity}
{quantize_extra}{target}validate:
  latency: {{mode: off}}
"""


def write_profile(folder: Path, mode: str = "int8", source: str = "random", samples: int = 8,
                  sensitivity: int = 2, extra: str = "", target: str = "",
                  method: str = "minmax", quantize_extra: str = "") -> Path:
    """`target`: the quantize.target mapping in flow style, e.g. "{min_top1_agreement: 0.99}"; `quantize_extra`:
    more lines of the quantize mapping, each indented two spaces."""
    # a new file name each time: the config loader caches profiles by path
    path = folder / f"quant-test-{len(list(folder.glob('quant-test-*.yaml')))}.yaml"
    path.write_text(PROFILE.format(mode=mode, source=source, samples=samples, sensitivity=sensitivity,
                                   method="" if method == "minmax" else f", method: {method}",
                                   target=f"  target: {target}\n" if target else "", quantize_extra=quantize_extra)
                    + extra)
    return path


def classifier(classes: int = 20, softmax: bool = False, seed: int = 0) -> onnx.ModelProto:
    """Conv-Relu-Conv-Relu-GAP-Flatten-Gemm(-Softmax) on [1, 3, 32, 32]; weights big enough that int8 shrinks it."""
    rng = np.random.default_rng(seed)

    def he(shape, fan_in):
        return rng.normal(0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)

    inits = [
        numpy_helper.from_array(he((32, 3, 3, 3), 27), "w1"),
        numpy_helper.from_array(rng.normal(0, 0.05, 32).astype(np.float32), "b1"),
        numpy_helper.from_array(he((128, 32, 3, 3), 288), "w2"),
        numpy_helper.from_array(rng.normal(0, 0.05, 128).astype(np.float32), "b2"),
        numpy_helper.from_array(he((classes, 128), 128), "wf"),
        numpy_helper.from_array(rng.normal(0, 0.05, classes).astype(np.float32), "bf"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1),
    ]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], name="softmax", axis=1))
        out = "probs"
    graph = helper.make_graph(
        nodes, "classifier", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, classes])], initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgec-tests")
    model.ir_version = 8
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def npy_folder(folder: Path, shape, n: int, seed: int = 0, drop_batch: bool = False) -> Path:
    """n calibration samples, one .npy per sample, named so sorted order is sample order."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        x = rng.standard_normal(shape).astype(np.float32)
        np.save(folder / f"sample_{i:03d}.npy", x[0] if drop_batch else x)
    return folder


# crops of the CALIBRATION photos other than tests/photos.py's VARIANTS, for quantize.target's held-out folder:
# (side as a fraction of the shorter edge, centre x, centre y, mirrored); never a crop of an evaluation photo
TARGET_VARIANTS = [(0.9, .45, .55, True), (0.8, .4, .4, True), (0.8, .6, .6, False), (0.7, .35, .5, True),
                   (0.7, .65, .5, False), (0.55, .5, .35, True), (0.55, .5, .65, False), (0.5, .4, .6, True)]


def target_variants(per_photo: int = len(TARGET_VARIANTS)) -> list[tuple]:
    """`per_photo` variants: TARGET_VARIANTS, then (past 8) seeded random crops with a small rotation and colour
    jitter: (side, centre x, centre y, mirrored, degrees, brightness, contrast, saturation). Seeded numpy draws
    rounded to 2-3 digits: the same list on every machine."""
    rng = np.random.default_rng(19)
    extra = [(round(float(rng.uniform(0.4, 1.0)), 2), round(float(rng.uniform(0.3, 0.7)), 2),
              round(float(rng.uniform(0.3, 0.7)), 2), bool(i % 2), round(float(rng.uniform(-10, 10)), 1),
              round(float(rng.uniform(0.8, 1.2)), 2), round(float(rng.uniform(0.8, 1.2)), 2),
              round(float(rng.uniform(0.7, 1.3)), 2))
             for i in range(max(0, per_photo - len(TARGET_VARIANTS)))]
    return [*TARGET_VARIANTS, *extra][:per_photo]


def target_inputs(names: list[str], size: int,
                  per_photo: int = len(TARGET_VARIANTS)) -> tuple[list[np.ndarray], list[str]]:
    """`per_photo` other crops/flips (target_variants) of the photos in `names` ([1, 3, size, size]
    ImageNet-normalized), named `t_{photo}_{i:02d}`: quantize.target's held-out folder, never an evaluation photo."""
    from tests.photos import _crop, photo_path

    xs, labels = [], []
    for name in names:
        for i, variant in enumerate(target_variants(per_photo)):
            xs.append(_crop(photo_path(name), size, *variant))
            labels.append(f"t_{name}_{i:02d}")
    return xs, labels


def target_profile(folder: Path, goal: dict | None, method: str | None = None, settings: dict | None = None,
                   sections: dict | None = None) -> Path:
    """pixel-8's profile with `quantize.target: goal` (none when None), quantize.calibration.method `method`, more
    quantize `settings` (e.g. {"activations": "int16"}) and other top-level `sections` (e.g. {"tflite": {...}}): one
    profile for `--target all`, so the three targets share one quantized graph."""
    import yaml

    data = yaml.safe_load((Path(__file__).parents[2] / "profiles" / "pixel-8.yaml").read_text())
    data.update(sections or {})
    quantize = data.setdefault("quantize", {})
    quantize.update(settings or {})
    if goal is not None:
        quantize["target"] = goal
    if method:
        quantize.setdefault("calibration", {})["method"] = method
    path = folder / "target-profile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
