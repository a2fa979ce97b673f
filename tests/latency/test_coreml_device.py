"""CoreML device latency: the real runtime exists only on macOS; elsewhere the device says so and points to
estimate mode (the MIL interpreter is never timed)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from edgec.artifact import Artifact
from edgec.config.loader import load_profile
from edgec.errors import DeviceError, UsageError
from edgec.validate.devices.device import device_for


@pytest.mark.skipif(sys.platform == "darwin", reason="off-macOS behaviour")
def test_coreml_device_off_macos_is_a_clear_error(tmp_path):
    dev = device_for("coreml", "coreml")
    art = Artifact("ios", "iphone-15-pro", "coreml", tmp_path / "m.mlpackage", "fp16")
    with pytest.raises(DeviceError, match="needs macOS.*--latency estimate"):
        dev.benchmark(art, load_profile("iphone-15-pro"), {})


def test_coreml_device_only_for_coreml_artifacts():
    with pytest.raises(UsageError, match="CoreML packages"):
        device_for("coreml", "tflite")
    with pytest.raises(UsageError, match="Unknown device"):
        device_for("usb:123", "ort")
    with pytest.raises(UsageError, match="needs a device"):
        device_for(None, "ort")


@pytest.mark.skipif(sys.platform != "darwin", reason="CoreML runs only on macOS")
def test_coreml_device_on_a_mac(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from edgec.artifact import LowerContext
    from edgec.config.loader import load_target
    from edgec.lower.backend import get_backend

    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])])
    model = onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    prof = load_profile("iphone-15-pro")
    ctx = LowerContext(target=load_target("ios"), profile=prof, model_name="m", staging_dir=tmp_path)
    art = get_backend("coreml").lower(model, ctx)
    stats = device_for("coreml", "coreml").benchmark(art, prof, {"x": np.ones((1, 8), np.float32)})
    assert stats.times_ms and "compute units all" in stats.method
