"""Calibration sources: tensor folders, image folders with preprocessing, random; their errors."""

import warnings

import numpy as np
import pytest

from edgec.config.models import InputSpec, Preprocess
from edgec.errors import CalibrationError
from edgec.quantize.calibration import CalibrationWarning, StreamReader, open_source, split

from .helpers import npy_folder

SPEC = [("x", np.dtype(np.float32), [1, 3, 8, 8])]


def test_split_holds_out_files_past_the_sample_count():
    assert split(12, 8) == (list(range(8)), [8, 9, 10, 11])
    calib, hold = split(10, 128)  # fewer files than samples: a fifth is held out
    assert calib == list(range(8)) and hold == [8, 9]
    assert split(1, 8) == ([0], [])


def test_tensor_folder_streams_samples_in_name_order(tmp_path):
    folder = npy_folder(tmp_path / "c", [1, 3, 8, 8], 5, drop_batch=True)  # batch axis added back
    cset = open_source(str(folder), SPEC, {}, 0)
    assert len(cset) == 5 and cset.measured
    reader = StreamReader(cset, [0, 1, 2])
    got = [reader.get_next() for _ in range(4)]
    assert got[3] is None
    np.testing.assert_array_equal(got[1]["x"], np.load(folder / "sample_001.npy")[None])
    reader.rewind()
    assert reader.get_next()["x"].shape == (1, 3, 8, 8)


def test_npz_per_input_and_missing_key(tmp_path):
    specs = [("a", np.dtype(np.float32), [1, 4]), ("b", np.dtype(np.int64), [1, 2])]
    (tmp_path / "c").mkdir()
    np.savez(tmp_path / "c" / "s0.npz", a=np.ones((1, 4), np.float32), b=np.array([[1, 2]]))
    np.savez(tmp_path / "c" / "s1.npz", a=np.ones((1, 4), np.float32))
    cset = open_source(str(tmp_path / "c"), specs, {}, 0)
    assert cset.load(0)["b"].dtype == np.int64
    with pytest.raises(CalibrationError, match=r"s1.npz.*no array for input\(s\) 'b'"):
        cset.load(1)


def test_wrong_shape_and_dtype_name_the_file_and_input(tmp_path):
    folder = npy_folder(tmp_path / "c", [1, 3, 4, 4], 1)
    with pytest.raises(CalibrationError, match=r"sample_000.npy has shape \[1, 3, 4, 4\] for input 'x'"):
        open_source(str(folder), SPEC, {}, 0).load(0)
    np.save(folder / "sample_000.npy", np.zeros((1, 3, 8, 8), np.complex64))
    with pytest.raises(CalibrationError, match="complex64 data for input 'x'"):
        open_source(str(folder), SPEC, {}, 0).load(0)
    x = np.zeros((1, 3, 8, 8), np.float32)
    x[0, 1, 2, 3] = np.nan
    np.save(folder / "sample_000.npy", x)
    with pytest.raises(CalibrationError, match="sample_000.npy has 1 NaN/inf value"):
        open_source(str(folder), SPEC, {}, 0).load(0)


def test_a_bad_file_after_the_first_fails_the_build_naming_it(tmp_path):
    """Only the first sample is checked before ORT's calibrator starts; a later bad file still stops the build
    with a CalibrationError naming it, not an ORT traceback."""
    from edgec import api

    from .helpers import classifier, save, write_profile

    folder = npy_folder(tmp_path / "c", [1, 3, 32, 32], 8)
    x = np.ones((1, 3, 32, 32), np.float32)
    x[0, 0, 0, 0] = np.inf
    np.save(folder / "sample_005.npy", x)
    prof = write_profile(tmp_path, source=str(folder), samples=6, sensitivity=0)
    with pytest.raises(CalibrationError, match="sample_005.npy has 1 NaN/inf"):
        api.build(save(classifier(), tmp_path / "c.onnx"),
                  api.BuildOptions(target="ort-mobile", profile=str(prof), out_dir=tmp_path / "out"))


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(CalibrationError, match="does not exist"):
        open_source(str(tmp_path / "nope"), SPEC, {}, 0)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no samples here")
    with pytest.raises(CalibrationError, match="has no .npy, .npz or image"):
        open_source(str(tmp_path / "empty"), SPEC, {}, 0)
    with pytest.raises(CalibrationError, match="needs calibration data"):
        open_source(None, SPEC, {}, 0)


def test_random_warns_and_is_deterministic():
    with pytest.warns(CalibrationWarning, match="accuracy is unmeasured"):
        a = open_source("random", SPEC, {}, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = open_source("random", SPEC, {}, 4)
    assert not a.measured and len(a) == 4
    np.testing.assert_array_equal(a.load(3)["x"], b.load(3)["x"])


def test_random_samples_keep_each_inputs_domain():
    """A mask stays 0/1 and token ids index the table, as validation's random inputs do: a mask of 7 once made
    MiniLM's attention-mask Add reach 80,000 (inf in an fp16 program) in the calibration and held-out samples."""
    from onnx import TensorProto, helper, numpy_helper

    from edgec.graph.inputs import input_domains, input_specs

    table = numpy_helper.from_array(np.zeros((50, 4), np.float32), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["emb"]),
         helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
         helper.make_node("Unsqueeze", ["m", "axes"], ["m3"]),
         helper.make_node("Mul", ["emb", "m3"], ["y"])], "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 16]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 4])],
        [table, numpy_helper.from_array(np.array([2], np.int64), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        cset = open_source("random", input_specs(model), {}, 6, domains=input_domains(model, {}))
    samples = [cset.load(i) for i in range(6)]
    assert all(set(np.unique(s["attention_mask"])) <= {0, 1} for s in samples)
    assert all(s["ids"].min() >= 0 and s["ids"].max() < 50 for s in samples)
    assert max(int(s["ids"].max()) for s in samples) >= 10  # the whole table, not [0, 10)


def test_images_with_profile_preprocessing(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    folder = tmp_path / "imgs"
    folder.mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "a.png")
    pre = Preprocess(mean=[0.5, 0.25, 0.0], std=[0.5, 0.5, 1.0], color="BGR")
    cset = open_source(str(folder), SPEC, {"x": InputSpec(layout="NCHW", preprocess=pre)}, 0)
    x = cset.load(0)["x"]
    bgr = rgb[..., ::-1].astype(np.float32) / 255.0
    want = ((bgr - np.array([0.5, 0.25, 0.0])) / np.array([0.5, 0.5, 1.0])).transpose(2, 0, 1)[None]
    np.testing.assert_allclose(x, want, atol=1e-6)
    # NHWC input: channels last, and a resize that does not give the input's size is an error
    nhwc = [("x", np.dtype(np.float32), [1, 8, 8, 3])]
    assert open_source(str(folder), nhwc, {}, 0).load(0)["x"].shape == (1, 8, 8, 3)
    bad = {"x": InputSpec(preprocess=Preprocess(resize=[4, 4]))}
    with pytest.raises(CalibrationError, match="preprocess.resize"):
        open_source(str(folder), SPEC, bad, 0).load(0)


def test_source_digest_changes_with_the_samples(tmp_path):
    from edgec.quantize.calibration import source_digest

    folder = npy_folder(tmp_path / "c", [1, 3, 8, 8], 2)
    first = source_digest(str(folder))
    assert first == source_digest(str(folder)) and source_digest("random") is None
    np.save(folder / "sample_002.npy", np.zeros((1, 3, 8, 8), np.float32))
    assert source_digest(str(folder)) != first
