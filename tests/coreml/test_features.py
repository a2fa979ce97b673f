"""Profile-driven CoreML features: image inputs (ct.ImageType + normalisation), classifier labels,
per-feature descriptions and extra metadata."""

from __future__ import annotations

import numpy as np
import pytest

from edgec.config.models import InputSpec, Preprocess
from edgec.errors import ConfigError
from tests.conftest import conv_model
from tests.coreml.helpers import HAVE_RUNTIME, backend, context, cosine, infer, mil_ops, mil_spec, reference

needs_runtime = pytest.mark.skipif(not HAVE_RUNTIME, reason="needs a CoreML runtime or the MIL interpreter")
IMAGENET = Preprocess(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], scale=1 / 255)


def _ctx(tmp_path, name="m", coreml=None, **profile_update):
    ctx = context(tmp_path, name=name)
    prof = ctx.profile
    if coreml:
        profile_update["coreml"] = prof.coreml.model_copy(update=coreml)
    return type(ctx)(**{**ctx.__dict__, "profile": prof.model_copy(update=profile_update)})


def _run(model, art, feeds):
    return backend().runner(art, 1).run(feeds)


def _image_feed(seed=0):
    """An ONNX-domain tensor that came from real 0..255 pixels (ImageNet normalisation)."""
    px = np.random.default_rng(seed).integers(0, 256, (1, 3, 16, 16)).astype(np.float32)
    mean, std = np.array(IMAGENET.mean).reshape(1, 3, 1, 1), np.array(IMAGENET.std).reshape(1, 3, 1, 1)
    return {"images": ((px / 255 - mean) / std).astype(np.float32)}


@pytest.mark.parametrize("color", ["RGB", "BGR"])
def test_image_input_with_per_channel_std(tmp_path, color):
    model = infer(conv_model())
    pre = IMAGENET.model_copy(update={"color": color})
    art = backend().lower(model, _ctx(tmp_path, coreml={"image_inputs": ["images"]},
                                      inputs={"images": InputSpec(preprocess=pre)}))
    image = mil_spec(art.path).description.input[0].type.imageType
    assert (image.width, image.height) == (16, 16)
    assert image.colorSpace == {"RGB": 20, "BGR": 30}[color]  # ImageFeatureType.ColorSpace enum values
    # CoreML's scalar scale + per-channel bias, then our per-channel 1/std multiply
    assert [o.type for o in mil_ops(art.path) if o.type != "const"][:3] == ["mul", "add", "mul"]
    assert any("is a CoreML " + color + " image" in n for n in art.notes)
    if not HAVE_RUNTIME:
        pytest.skip("no runtime")
    feeds = [_image_feed(0), _image_feed(1)]
    got = [_run(model, art, f)["logits"] for f in feeds]
    want = [reference(model, f)["logits"] for f in feeds]
    assert min(cosine(g, w) for g, w in zip(got, want)) > 0.9999
    assert cosine(got[0] - got[1], want[0] - want[1]) > 0.9999


def test_image_input_with_one_std_needs_no_extra_multiply(tmp_path):
    pre = Preprocess(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    art = backend().lower(infer(conv_model()), _ctx(tmp_path, coreml={"image_inputs": ["images"]},
                                                   inputs={"images": InputSpec(preprocess=pre)}))
    types = [o.type for o in mil_ops(art.path) if o.type != "const"]
    assert types[:2] == ["mul", "add"] and types[2] != "mul"
    assert art.details["name_map"]["images"]["images"] == {"color": "RGB", "scale": pytest.approx(2 / 255),
                                                           "bias": [-1.0, -1.0, -1.0], "post_scale": None}


@pytest.mark.parametrize("coreml, inputs, match", [
    ({"image_inputs": ["pixels"]}, {}, "'pixels', which is not an input"),
    ({"image_inputs": ["images"]}, {"images": InputSpec(preprocess=Preprocess(color="GRAY"))}, "1 channel"),
])
def test_bad_image_inputs_are_config_errors(tmp_path, coreml, inputs, match):
    with pytest.raises(ConfigError, match=match):
        backend().lower(infer(conv_model()), _ctx(tmp_path, coreml=coreml, inputs=inputs))


def _labels(tmp_path, n=8):
    path = tmp_path / "labels.txt"
    path.write_text("".join(f"class {i}\n" for i in range(n)))
    return str(path)


def test_classifier_labels(tmp_path):
    model = infer(conv_model())
    art = backend().lower(model, _ctx(tmp_path, coreml={"labels": _labels(tmp_path)}))
    desc = mil_spec(art.path).description
    assert desc.predictedFeatureName == "classLabel"
    assert desc.predictedProbabilitiesName == art.details["name_map"]["outputs"]["logits"]
    assert "classify" in [o.type for o in mil_ops(art.path)]
    if not HAVE_RUNTIME:
        pytest.skip("no runtime")
    feeds = {"images": np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)}
    runner = backend().runner(art, 1)
    got = runner.run(feeds)["logits"]
    want = reference(model, feeds)["logits"]
    assert got.shape == want.shape and cosine(got, want) > 0.9999
    if runner.name == "mil-interpreter":  # the label feature names the top class
        raw = runner.inner.run({"images": feeds["images"]})
        assert raw["classLabel"] == f"class {int(np.argmax(want))}"


@pytest.mark.parametrize("n, match", [(7, "has 7 labels"), (None, "cannot be read")])
def test_bad_labels_are_config_errors(tmp_path, n, match):
    labels = _labels(tmp_path, n) if n else str(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match=match):
        backend().lower(infer(conv_model()), _ctx(tmp_path, coreml={"labels": labels}))


def test_descriptions_and_extra_metadata(tmp_path):
    art = backend().lower(infer(conv_model()), _ctx(
        tmp_path, descriptions={"images": "RGB photo, ImageNet-normalised", "logits": "class scores"},
        metadata={"author": "A", "com.example.dataset": "imagenet-1k"}))
    desc = mil_spec(art.path).description
    assert desc.input[0].shortDescription == "RGB photo, ImageNet-normalised"
    assert desc.output[0].shortDescription == "class scores"
    assert desc.metadata.author == "A" and desc.metadata.userDefined["com.example.dataset"] == "imagenet-1k"


def test_unknown_description_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="'nope'"):
        backend().lower(infer(conv_model()), _ctx(tmp_path, descriptions={"nope": "x"}))


@needs_runtime
def test_classifier_on_a_4d_score_tensor(tmp_path):
    """squeezenet-style [1, classes, 1, 1] scores are flattened for CoreML and reshaped back by the runner."""
    from onnx import helper

    model = conv_model()
    del model.graph.node[-1]  # drop Flatten: output 'g' [1, 8, 1, 1]
    model.graph.output[0].CopyFrom(helper.make_tensor_value_info("g", 1, [1, 8, 1, 1]))
    model = infer(model)
    art = backend().lower(model, _ctx(tmp_path, coreml={"labels": _labels(tmp_path)}))
    feeds = {"images": np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)}
    got, want = backend().runner(art, 1).run(feeds)["g"], reference(model, feeds)["g"]
    assert got.shape == (1, 8, 1, 1) and cosine(got, want) > 0.9999
