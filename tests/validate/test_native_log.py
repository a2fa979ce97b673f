import os

from edgec.runtimes.native_log import drop_native_lines


def test_known_lines_are_dropped_and_others_pass_through(capfd):
    with drop_native_lines(("INFO: chatter",)):
        os.write(2, b"INFO: chatter from C++\nERROR: a real problem\n")
    err = capfd.readouterr().err
    assert "a real problem" in err and "chatter" not in err


def test_android_build_prints_no_xnnpack_banner(tmp_path, capfd):
    from edgec.runtimes.host_litert import interpreter
    from tests.conftest import conv_model
    from edgec.lower.tflite.convert import convert

    (tmp_path / "m.tflite").write_bytes(convert(conv_model()).data)
    interpreter(tmp_path / "m.tflite", threads=1)
    assert "XNNPACK delegate" not in capfd.readouterr().err
