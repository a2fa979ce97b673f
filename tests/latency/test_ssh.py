"""The ssh device runner against a REAL OpenSSH server this test starts on 127.0.0.1 (throwaway keys, a high
port, `sshd -D -f` with a config in a temp folder). The "board" is this machine: the runner copies the artifact,
the inputs and bench_script.py over scp and runs onnxruntime there through ssh.

Needs Debian's openssh-server (`apt-get install -y openssh-server`); skipped with that message when absent.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgec.artifact import Artifact
from edgec.config.loader import load_profile
from edgec.errors import DeviceError
from edgec.validate.devices.device import device_for
from edgec.validate.devices.ssh import SshDevice

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(not Path(SSHD).exists() or shutil.which("ssh") is None,
                                reason="openssh-server/client not installed (apt-get install -y openssh-server)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    (tmp / "authorized_keys").write_text((tmp / "user_key.pub").read_text())
    os.chmod(tmp / "authorized_keys", 0o600)
    port = _free_port()
    user = getpass.getuser()
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\nPidFile {tmp / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n"
        f"KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin prohibit-password\n"
        f"AllowUsers {user}\nSubsystem sftp internal-sftp\nLogLevel ERROR\n")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation folder
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(tmp / "sshd_config")], stderr=subprocess.PIPE, text=True)
    host_pub = (tmp / "host_key.pub").read_text().split()
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    options = ["-F", "/dev/null", "-i", str(tmp / "user_key"), "-o", "IdentitiesOnly=yes",
               "-o", f"UserKnownHostsFile={tmp / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes"]
    dev = SshDevice("127.0.0.1", user, port, python=sys.executable, options=options, timeout=120)
    deadline = time.time() + 20
    while True:  # wait until sshd accepts logins
        if proc.poll() is not None:
            pytest.fail(f"sshd exited: {proc.stderr.read()}")
        try:
            if dev._run(dev.ssh_command("echo ready"), "probe").strip() == "ready":
                break
        except DeviceError:
            if time.time() > deadline:
                proc.terminate()
                pytest.fail("sshd did not accept the test key within 20 s")
            time.sleep(0.3)
    yield dev, options, port, user
    proc.terminate()
    proc.wait(timeout=10)


def _ort_artifact(tmp_path) -> Artifact:
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 64])], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "tiny.onnx"
    path.write_bytes(m.SerializeToString())
    return Artifact(target="ort-mobile", profile="raspberry-pi-5", format="ort", path=path, precision="fp32")


def _profile(runs=7):
    p = load_profile("raspberry-pi-5")
    lat = p.validate_.latency.model_copy(update={"runs": runs, "warmup": 1, "mode": "device"})
    return p.model_copy(update={"validate_": p.validate_.model_copy(update={"latency": lat}),
                                "runtime": p.runtime.model_copy(update={"threads": 1})})


def test_benchmark_over_real_ssh(sshd, tmp_path):
    dev, _, port, _ = sshd
    stats = dev.benchmark(_ort_artifact(tmp_path), _profile(), {"x": np.ones((8, 64), np.float32)})
    assert len(stats.times_ms) == 7 and all(t > 0 for t in stats.times_ms)
    assert stats.runtime.startswith("onnxruntime ") and f"127.0.0.1:{port}" in stats.runtime
    # the remote work folder is gone afterwards
    left = dev._run(dev.ssh_command("ls -d /tmp/edgec-bench.* 2>/dev/null || true"), "ls")
    assert left.strip() == ""


def test_measure_latency_device_mode_end_to_end(sshd, tmp_path, monkeypatch):
    """The build's entry point with `device: ssh://...`: URI parsing, $EDGEC_SSH_OPTIONS, summary, budget."""
    from edgec.validate.latency import measure_latency

    _, options, port, user = sshd
    import shlex

    monkeypatch.setenv("EDGEC_SSH_OPTIONS", shlex.join(options))
    prof = _profile(runs=5)
    lat = prof.validate_.latency.model_copy(update={
        "device": f"ssh://{user}@127.0.0.1:{port}?python={sys.executable}", "budget_ms": 1e-6})
    prof = prof.model_copy(update={"validate_": prof.validate_.model_copy(update={"latency": lat})})
    art = _ort_artifact(tmp_path)
    import onnx

    result = measure_latency(None, art, onnx.load(art.path), prof, {"x": np.ones((8, 64), np.float32)}, 1)
    assert result.mode == "device" and result.runs == 5 and result.median_ms > 0
    assert result.details["device"] == f"ssh://{user}@127.0.0.1:{port}"
    assert result.passed is False and "exceeds the budget" in result.message and "slowest ops" in result.message


def test_bad_host_key_is_a_device_error(sshd, tmp_path):
    dev, options, port, user = sshd
    bad = tmp_path / "known_hosts"
    bad.write_text(f"[127.0.0.1]:{port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    opts = [o if not o.startswith("UserKnownHostsFile=") else f"UserKnownHostsFile={bad}" for o in options]
    with pytest.raises(DeviceError, match="failed"):
        SshDevice("127.0.0.1", user, port, options=opts, timeout=30).benchmark(
            _ort_artifact(tmp_path), _profile(), {"x": np.ones((8, 64), np.float32)})


def test_uri_parsing_and_commands():
    dev = device_for("ssh://pi@raspberrypi.local:2222?python=/opt/venv/bin/python", "ort")
    assert (dev.user, dev.host, dev.port, dev.python) == ("pi", "raspberrypi.local", 2222, "/opt/venv/bin/python")
    cmd = dev.scp_command([Path("a.ort")], "/tmp/x")
    assert cmd[:2] == ["scp", "-q"] and "-P" in cmd and cmd[-1] == "pi@raspberrypi.local:/tmp/x/"
    assert "-p" in dev.ssh_command("true") and "BatchMode=yes" in dev.ssh_command("true")


def _cli_build(sshd, model, out, monkeypatch, *extra):
    """The real CLI, `--latency device --device ssh://...` against the test's sshd."""
    import shlex

    from typer.testing import CliRunner

    from edgec.cli import app

    _, options, port, user = sshd
    monkeypatch.setenv("EDGEC_SSH_OPTIONS", shlex.join(options))
    args = ["build", str(model), "--target", "ort-mobile", "--profile", "raspberry-pi-5", "--latency", "device",
            "--device", f"ssh://{user}@127.0.0.1:{port}?python={sys.executable}", "--out", str(out), "--no-cache",
            *extra]
    r = CliRunner().invoke(app, args)
    manifest = (out / "manifest.json")
    import json

    return r, (json.loads(manifest.read_text()) if manifest.exists() else None)


def test_cli_build_measures_on_the_remote_runner(sshd, conv_model_path, tmp_path, monkeypatch):
    """`edgec build --latency device --device ssh://...`: the manifest's numbers carry facts only the process
    sshd started knows - SSH_CONNECTION naming this sshd's port, a pid that is not ours, a work folder that
    the runner removed afterwards."""
    _, _, port, user = sshd
    r, m = _cli_build(sshd, conv_model_path, tmp_path / "ok", monkeypatch, "--budget-ms", "60000")
    assert r.exit_code == 0, r.output
    lat = m["artifacts"][0]["latency"]
    assert lat["mode"] == "device" and lat["runs"] > 0 and lat["median_ms"] > 0 and lat["passed"] is True
    assert lat["details"]["device"] == f"ssh://{user}@127.0.0.1:{port}"
    assert lat["runtime"].startswith("onnxruntime ") and "via ssh" in lat["details"]["method"]
    remote = lat["details"]["remote"]
    # SSH_CONNECTION exists only in sessions sshd starts; its server port is the test's sshd
    assert remote["ssh_connection"] is True and remote["ssh_server_port"] == port
    assert os.environ.get("SSH_CONNECTION", "").split()[3:] != [str(port)]  # not inherited from us
    assert remote["pid"] != os.getpid() and remote["ppid"] != os.getpid()
    assert remote["hostname"] == socket.gethostname()  # the "board" is this machine
    assert remote["workdir"].startswith("/tmp/edgec-bench.") and not Path(remote["workdir"]).exists()
    assert remote["python"] == sys.executable


def test_cli_build_impossible_budget_fails_with_exit_11(sshd, conv_model_path, tmp_path, monkeypatch):
    r, m = _cli_build(sshd, conv_model_path, tmp_path / "tight", monkeypatch, "--budget-ms", "0.0001")
    assert r.exit_code == 11, r.output
    assert "exceeds the budget of 0.0001 ms" in r.output and "slowest ops" in r.output
    lat = m["artifacts"][0]["latency"]
    assert m["passed"] is False and lat["passed"] is False and lat["details"]["remote"]["ssh_connection"] is True
