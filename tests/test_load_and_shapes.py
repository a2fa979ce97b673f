import onnx
import pytest
from onnx import numpy_helper

from edgec.errors import ModelLoadError, ShapeError, UsageError
from edgec.graph.load import load_model
from edgec.graph.shapes import fix_input_shapes, parse_input_shape_flags

from conftest import conv_model


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="no such file"):
        load_model(tmp_path / "nope.onnx")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.onnx"
    p.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        load_model(p)


@pytest.mark.parametrize("cut", [0.5, 0.02])
def test_truncated_file(conv_model_path, cut):
    data = conv_model_path.read_bytes()
    conv_model_path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ModelLoadError, match="truncated"):
        load_model(conv_model_path)


def test_text_file(tmp_path):
    p = tmp_path / "notes.onnx"
    p.write_text("this is not a model\n")
    with pytest.raises(ModelLoadError):
        load_model(p)


def _with_external(tmp_path, location):
    model = conv_model()
    w = next(t for t in model.graph.initializer if t.name == "w")
    raw = numpy_helper.to_array(w).tobytes()
    w.ClearField("float_data")
    w.ClearField("raw_data")
    w.data_location = onnx.TensorProto.EXTERNAL
    w.external_data.add(key="location", value=location)
    w.external_data.add(key="length", value=str(len(raw)))
    return model, raw


def test_external_data_outside_folder_refused(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 864)
    model, _ = _with_external(tmp_path, "../secret.bin")
    onnx.save(model, str(folder / "model.onnx"))
    with pytest.raises(ModelLoadError, match="outside the model's folder"):
        load_model(folder / "model.onnx")


def test_external_data_inside_folder_loads(tmp_path):
    model, raw = _with_external(tmp_path, "weights.bin")
    (tmp_path / "weights.bin").write_bytes(raw)
    onnx.save(model, str(tmp_path / "model.onnx"))
    loaded = load_model(tmp_path / "model.onnx")
    w = next(t for t in loaded.graph.initializer if t.name == "w")
    assert numpy_helper.to_array(w).tobytes() == raw


def test_unresolved_dynamic_dim_names_input_and_flag():
    model = conv_model(batch="batch")
    with pytest.raises(ShapeError) as e:
        fix_input_shapes(model, {})
    assert "'images'" in str(e.value) and "--input-shape images=N,3,16,16" in str(e.value)


def test_input_shape_fixes_dynamic_dim():
    model = conv_model(batch="batch")
    assert fix_input_shapes(model, {"images": [2, 3, 16, 16]}) == {"images": [2, 3, 16, 16]}
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 2


def test_minus_one_dim_counts_as_dynamic():
    """paddle2onnx (PaddleOCR's models) writes dim_value -1 for a dynamic dim, where ONNX would leave it unset."""
    model = conv_model()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    with pytest.raises(ShapeError, match="dynamic dim"):
        fix_input_shapes(model, {})
    assert fix_input_shapes(model, {"images": [4, 3, 16, 16]}) == {"images": [4, 3, 16, 16]}


def test_input_shape_conflicting_with_static_dim():
    with pytest.raises(ShapeError, match="fixed to 3"):
        fix_input_shapes(conv_model(), {"images": [1, 4, 16, 16]})


def test_input_shape_for_unknown_input():
    with pytest.raises(ShapeError, match="unknown input"):
        fix_input_shapes(conv_model(), {"image": [1, 3, 16, 16]})


def test_bad_input_shape_flag():
    assert parse_input_shape_flags(["a=1,3,8,8"]) == {"a": [1, 3, 8, 8]}
    with pytest.raises(UsageError):
        parse_input_shape_flags(["a=1,x"])
    with pytest.raises(UsageError):
        parse_input_shape_flags(["1,3"])
