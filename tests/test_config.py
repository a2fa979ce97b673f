import pytest

from edgec.config.loader import BUILTIN_PROFILES, all_profiles, all_targets, load_profile, load_target
from edgec.errors import ConfigError


def test_builtin_profiles_and_targets_load():
    names = {p.name for p in all_profiles()}
    assert {"iphone-15-pro", "pixel-8", "raspberry-pi-5", "jetson-orin-nano", "host"} <= names
    assert {t.name for t in all_targets()} >= {"ios", "android", "ort-mobile"}
    for p in all_profiles():
        assert load_target(p.target).name == p.target
        assert p.hardware.cpu.peak_gflops_fp32 > 0


def test_builtin_hardware_numbers_say_where_they_come_from():
    for f in BUILTIN_PROFILES.glob("*.yaml"):
        for line in f.read_text().splitlines():
            if "peak_" in line or "memory_bandwidth" in line:
                assert "#" in line, f"{f.name}: hardware number without a source comment: {line}"


def _write(tmp_path, text):
    p = tmp_path / "my-profile.yaml"
    p.write_text(text)
    return p


GOOD = """name: mine
target: android
hardware:
  cpu: {cores: 4, peak_gflops_fp32: 100}
  memory_bandwidth_gbps: 20
"""


def test_user_profile_by_path(tmp_path):
    p = load_profile(str(_write(tmp_path, GOOD)))
    assert p.name == "mine" and p.target == "android" and p.runtime.threads == 4


def test_unknown_key_names_file_line_and_key(tmp_path):
    path = _write(tmp_path, GOOD + "validate:\n  latency:\n    budjet_ms: 5\n")
    with pytest.raises(ConfigError) as e:
        load_profile(str(path))
    msg = str(e.value)
    assert f"{path}:8" in msg and "validate.latency.budjet_ms" in msg and "unknown key" in msg


def test_wrong_type_names_line(tmp_path):
    path = _write(tmp_path, GOOD.replace("cores: 4", "cores: four"))
    with pytest.raises(ConfigError) as e:
        load_profile(str(path))
    assert f"{path}:4" in str(e.value) and "hardware.cpu.cores" in str(e.value)


def test_missing_field(tmp_path):
    path = _write(tmp_path, "name: x\ntarget: android\n")
    with pytest.raises(ConfigError) as e:
        load_profile(str(path))
    assert "hardware" in str(e.value) and "required key is missing" in str(e.value)


def test_bad_yaml_syntax_names_line(tmp_path):
    path = _write(tmp_path, GOOD + "runtime: {threads: 2\n")
    with pytest.raises(ConfigError) as e:
        load_profile(str(path))
    assert str(path) in str(e.value) and "invalid YAML" in str(e.value)


def test_unknown_target_in_profile(tmp_path):
    path = _write(tmp_path, GOOD.replace("target: android", "target: windows-phone"))
    with pytest.raises(ConfigError) as e:
        load_profile(str(path))
    assert f"{path}:2" in str(e.value) and "windows-phone" in str(e.value)


def test_unknown_builtin_name_lists_choices():
    with pytest.raises(ConfigError) as e:
        load_profile("pixel-99")
    assert "pixel-8" in str(e.value)


def test_relative_paths_in_a_profile_are_relative_to_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir("/")
    path = _write(tmp_path, GOOD + "quantize:\n  calibration:\n    source: calib\ncoreml:\n  labels: labels.txt\n")
    p = load_profile(str(path))
    assert p.quantize.calibration.source == str(tmp_path / "calib")
    assert p.coreml.labels == str(tmp_path / "labels.txt")


def test_random_and_absolute_calibration_sources_are_kept(tmp_path):
    path = _write(tmp_path, GOOD + "quantize:\n  calibration:\n    source: random\n")
    assert load_profile(str(path)).quantize.calibration.source == "random"


def test_a_profile_edited_during_the_process_is_read_again(tmp_path):
    path = _write(tmp_path, GOOD)
    first = load_profile(str(path))
    path.write_text(GOOD.replace("cores: 4", "cores: 6") + "\n")
    assert (first.hardware.cpu.cores, load_profile(str(path)).hardware.cpu.cores) == (4, 6)


def test_the_readme_profile_example_is_a_valid_profile(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    example = re.search(r"```yaml\n(name: my-board.*?)```", readme, re.S).group(1)
    p = load_profile(str(_write(tmp_path, example)))
    assert p.quantize.mode == "int8" and p.quantize.calibration.source == str(tmp_path / "calib/")
