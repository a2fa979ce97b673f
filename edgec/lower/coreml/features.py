"""App-facing CoreML features from the profile: image inputs (ct.ImageType) and classifier labels.

Image input: CoreML feeds pixels x (0..255) and computes x * scale + bias[c] itself. The profile's
inputs.<name>.preprocess says the ONNX tensor is y = (x * p.scale - mean[c]) / std[c]. With one std for
all channels that is exactly scale = p.scale / std, bias = -mean / std; with per-channel stds CoreML's
scalar scale cannot express it, so the image gets scale = p.scale, bias = -mean and the program starts
with a per-channel multiply by 1 / std (`post_scale`).
Runners get ONNX-domain tensors y and invert this to pixels (ImageSpec.to_pixels).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgec.config.models import Preprocess, Profile
from edgec.errors import ConfigError
from edgec.runtimes.metadata import ImageSpec


def image_specs(profile: Profile, input_shapes: dict[str, list[int]]) -> dict[str, ImageSpec]:
    """ONNX input name -> ImageSpec for the profile's coreml.image_inputs (ConfigError when impossible)."""
    out = {}
    for name in profile.coreml.image_inputs:
        if name not in input_shapes:
            raise ConfigError(f"profile '{profile.name}': coreml.image_inputs names '{name}', which is not an input "
                              f"of the model (inputs: {', '.join(sorted(input_shapes)) or 'none'}).")
        spec = profile.inputs.get(name)
        pre = spec.preprocess if spec is not None and spec.preprocess is not None else Preprocess()
        shape = list(input_shapes[name])
        channels = 1 if pre.color == "GRAY" else 3
        if len(shape) != 4 or shape[1] != channels:
            raise ConfigError(
                f"profile '{profile.name}': coreml.image_inputs '{name}' has shape {shape}; a CoreML image input "
                f"must be NCHW with {channels} channel(s) for inputs.{name}.preprocess.color {pre.color}.")
        mean, std = list(pre.mean)[:channels], list(pre.std)[:channels]
        if len(mean) != channels or len(std) != channels:
            raise ConfigError(f"profile '{profile.name}': inputs.{name}.preprocess mean/std need {channels} values.")
        if len(set(std)) == 1:
            out[name] = ImageSpec(pre.color, pre.scale / std[0], [-m / std[0] for m in mean], None)
        else:
            out[name] = ImageSpec(pre.color, pre.scale, [-m for m in mean], [1.0 / s for s in std])
    return out


def ct_image_type(ct, mil_name: str, shape: list[int], spec: ImageSpec):
    layout = {"RGB": ct.colorlayout.RGB, "BGR": ct.colorlayout.BGR, "GRAY": ct.colorlayout.GRAYSCALE}[spec.color]
    bias = spec.bias[0] if spec.color == "GRAY" else list(spec.bias)
    return ct.ImageType(name=mil_name, shape=tuple(shape), scale=spec.scale, bias=bias, color_layout=layout,
                        channel_first=True)


@dataclass
class ClassifierSpec:
    output: str  # ONNX output holding the scores
    labels: list[str]
    shape: list[int]

    def to_json(self) -> dict:
        return asdict(self)


def classifier_spec(profile: Profile, output_shapes: dict[str, list[int]]) -> ClassifierSpec | None:
    cfg = profile.coreml
    if not cfg.labels:
        return None
    path = Path(cfg.labels)
    try:
        labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as e:
        raise ConfigError(f"profile '{profile.name}': coreml.labels file {path} cannot be read: {e.strerror}.") from None
    names = list(output_shapes)
    output = cfg.classifier_output or (names[0] if names else None)
    if output not in output_shapes:
        raise ConfigError(f"profile '{profile.name}': coreml.classifier_output '{output}' is not a model output "
                          f"(outputs: {', '.join(names)}).")
    shape = list(output_shapes[output])
    classes = int(np.prod(shape)) if shape else 0
    if not shape or sum(d != 1 for d in shape) > 1:
        raise ConfigError(f"profile '{profile.name}': the classifier output '{output}' has shape {shape}; CoreML "
                          f"classifiers take one score vector (batch 1: one axis longer than 1).")
    if len(labels) != classes or len(set(labels)) != len(labels):
        raise ConfigError(f"profile '{profile.name}': coreml.labels {path} has {len(labels)} labels "
                          f"({len(set(labels))} distinct); output '{output}' has {classes} classes.")
    return ClassifierSpec(output, labels, shape)
