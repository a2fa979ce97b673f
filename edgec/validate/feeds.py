"""The inputs an artifact is validated on: the user's data (--validation-data / validate.data, read as calibration
reads it) or seeded values inside each input's domain (edgec.graph.inputs)."""

from __future__ import annotations

import numpy as np
import onnx

from edgec.graph.inputs import describe_inputs, input_domains, input_specs, random_inputs
from edgec.quantize.calibration import validation_samples


def validation_feeds(model: onnx.ModelProto, profile, original: onnx.ModelProto | None = None,
                     shapes: dict[str, list[int]] | None = None,
                     ranged: bool = False) -> tuple[list[dict[str, np.ndarray]], str]:
    """(feeds, description) for checking an artifact of `model` (shapes fixed): the profile's validate.data folder
    (--validation-data; read as calibration reads it, images with the profile's preprocessing), else seeded
    random inputs in each input's domain (given in profile.inputs, else inferred from the original graph).
    `shapes`: the input shapes to feed (a model that keeps dynamic axes, at one length). `ranged`: one of several
    lengths an artifact with ranged axes is checked at: the folder's files at this length, else seeded random
    (edgec.validate.lengths refuses a folder with no file at any checked length)."""
    specs = input_specs(model, shapes)
    spec = profile.validate_.numerics
    n = max(spec.samples, 2)
    missing = ""
    if profile.validate_.data:
        feeds, what = validation_samples(profile.validate_.data, specs, dict(profile.inputs), n, ranged)
        if feeds:
            return feeds, what
        missing = f" (no file of {profile.validate_.data} has these shapes)"
    # read off the original graph, for the inputs the artifact takes (fixed ones are constants now)
    domains = input_domains(original if original is not None else model, dict(profile.inputs),
                            only={name for name, _, _ in specs})
    feeds = random_inputs(specs, seed=spec.seed, samples=n, domains=domains)
    return feeds, describe_inputs(specs, domains, f"seeded random (seed {spec.seed}, {n} samples){missing}")
