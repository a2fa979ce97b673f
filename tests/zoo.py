"""The test-model zoo: real PyTorch-exported ONNX models (torchvision architectures, a ViT block, a YOLO-style head).

    from tests.zoo import ZOO, INPUT_SHAPES, zoo_model, zoo_input
    path = zoo_model("mobilenet_v3_small")   # Path to <cache_dir>/zoo/mobilenet_v3_small.onnx (input "input")

The first call on a machine builds the whole zoo once: a private venv at <cache_dir>/zoo-venv with a CPU torch
(torch never goes into the test interpreter: it slows `import coremltools` 10x), then tools/export_zoo.py in it.
A file lock makes parallel test workers wait for one build instead of racing. The build is stamped with a hash of
the export script and the pinned requirements, so editing either rebuilds. A failed build raises ZooBuildError
(never a skip: CI must notice).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edgec.paths import cache_dir, exclusive, write_atomic

INPUT_SHAPES = {
    "mobilenet_v2": (1, 3, 224, 224),
    "mobilenet_v3_small": (1, 3, 224, 224),
    "efficientnet_b0": (1, 3, 224, 224),
    "resnet18": (1, 3, 224, 224),
    "shufflenet_v2_x1_0": (1, 3, 224, 224),
    "squeezenet1_1": (1, 3, 224, 224),
    "transformer_block": (1, 64, 128),
    "detection_head": (1, 3, 256, 256),
}
ZOO = list(INPUT_SHAPES)
INPUT_NAME, OUTPUT_NAME = "input", "output"
# sequence models with several named inputs/outputs: name -> ({input: (shape, dtype)}, [outputs])
SEQ_INPUTS = {
    "text_encoder": ({"input_ids": ((1, 16), "int64"), "attention_mask": ((1, 16), "int64"),
                      "token_type_ids": ((1, 16), "int64")}, ["embedding"]),
    "streaming_vad": ({"x": ((1, 512), "float32"), "state": ((3, 1, 32), "float32"), "sr": ((), "int64")},
                      ["prob", "state_out"]),
    "speech_encoder": ({"features": ((1, 40, 100), "float32")}, ["encoded"]),
    "detr_head": ({"features": ((1, 128, 8, 8), "float32")}, ["logits", "boxes"]),
    "decoder_step": ({"input_ids": ((1, 1), "int64"), "past_key": ((1, 4, 8, 16), "float32"),
                      "past_value": ((1, 4, 8, 16), "float32")}, ["logits", "present_key", "present_value"]),
}
SEQ_ZOO = list(SEQ_INPUTS)
# exported with a dynamic sequence axis (tools/export_zoo.py DYNAMIC_AXES); seq_inputs(name) at the exported length
DYNAMIC_INPUTS = {"text_encoder_dyn": SEQ_INPUTS["text_encoder"]}

EXPORT_SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "export_zoo.py"
# Exactly what the legacy TorchScript exporter imports, installed --no-deps: torch's other requirements
# (sympy, networkx, jinja2, fsspec, filelock, setuptools) are never imported on this path.
REQUIREMENTS = (
    "torch==2.13.0",  # the CPU wheel in $EDGEC_TORCH_WHEELS (default /opt/wheels)
    "typing_extensions==4.15.0",
    "numpy==2.4.6",
    "onnx==1.23.2",
    "protobuf==7.36.2",
    "ml_dtypes==0.6.0",
)
TIMEOUT_S = 1800


class ZooBuildError(RuntimeError):
    """The zoo venv or the export failed; the message carries the command and its output."""


def zoo_dir() -> Path:
    return cache_dir() / "zoo"


def venv_dir() -> Path:
    return cache_dir() / "zoo-venv"


def zoo_model(name: str) -> Path:
    """Path of the cached ONNX export of `name`, building the zoo first if it is missing or stale."""
    if name not in INPUT_SHAPES and name not in SEQ_INPUTS and name not in DYNAMIC_INPUTS:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(ZOO + SEQ_ZOO)}")
    out = zoo_dir() / f"{name}.onnx"
    if not _is_fresh(out):
        with exclusive(cache_dir() / "zoo.lock"):
            if not _is_fresh(out):  # another worker may have built it while we waited
                build()
    return out


def zoo_input(name: str, seed: int = 0) -> np.ndarray:
    """A seeded N(0, 1) float32 input of the model's shape."""
    return np.random.default_rng(seed).standard_normal(INPUT_SHAPES[name]).astype(np.float32)


def seq_inputs(name: str, seed: int = 0, length: int | None = None) -> dict[str, np.ndarray]:
    """Seeded feeds for a sequence model: token ids in range, 0/1 masks with the tail padded, N(0, 1) floats,
    sr = 16000. `length`: the last axis at this size (a model of DYNAMIC_INPUTS)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp, (shape, dtype) in {**SEQ_INPUTS, **DYNAMIC_INPUTS}[name][0].items():
        shape = shape if length is None else (*shape[:-1], length)
        if inp == "sr":
            feeds[inp] = np.array(16000, np.int64)
        elif inp == "attention_mask":
            keep = rng.integers(shape[-1] // 2, shape[-1] + 1)
            feeds[inp] = (np.arange(shape[-1]) < keep).astype(np.int64).reshape(shape)
        elif dtype == "int64":
            feeds[inp] = rng.integers(0, 10, size=shape).astype(np.int64)
        else:
            feeds[inp] = (rng.standard_normal(shape) * (0.1 if inp == "x" else 1.0)).astype(np.float32)
    return feeds


def build() -> dict:
    """(Re)build the venv if needed and export every zoo model. Returns the timings/sizes also kept in build.json."""
    t0 = time.perf_counter()
    python = _ensure_venv()
    t_venv = time.perf_counter() - t0
    zoo_dir().mkdir(parents=True, exist_ok=True)
    _stamp_file().unlink(missing_ok=True)  # a half-done rebuild must not look fresh
    out = _run([str(python), "-I", str(EXPORT_SCRIPT), str(zoo_dir()), *ZOO, *SEQ_ZOO, *DYNAMIC_INPUTS], "export the zoo")
    models = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    info = {"venv_s": round(t_venv, 1), "export_s": round(time.perf_counter() - t0 - t_venv, 1), "models": models}
    write_atomic(zoo_dir() / "build.json", json.dumps(info, indent=1))
    write_atomic(_stamp_file(), _zoo_stamp())
    return info


# ---------------------------------------------------------------- internals
def _zoo_stamp() -> str:
    h = hashlib.sha256(EXPORT_SCRIPT.read_bytes())
    h.update("\n".join(REQUIREMENTS).encode())
    return h.hexdigest()


def _venv_stamp() -> str:
    return hashlib.sha256("\n".join([sys.version, *REQUIREMENTS]).encode()).hexdigest()


def _stamp_file() -> Path:
    return zoo_dir() / "STAMP"


def _is_fresh(model: Path) -> bool:
    stamp = _stamp_file()
    return model.exists() and stamp.exists() and stamp.read_text() == _zoo_stamp()


def _ensure_venv() -> Path:
    venv = venv_dir()
    python, stamp = venv / "bin" / "python", venv / "edgec-zoo-stamp"
    if python.exists() and stamp.exists() and stamp.read_text() == _venv_stamp():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    # --without-pip + the host pip's --python: skips ensurepip (~5 s); --no-compile skips byte-compiling
    # torch's thousands of modules (~15 s) of which the export imports a few
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], "create the zoo venv")
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-compile",
           "--only-binary=:all:", "--disable-pip-version-check", "--no-warn-script-location"]
    wheels = os.environ.get("EDGEC_TORCH_WHEELS", "/opt/wheels")
    if Path(wheels).is_dir():
        cmd += ["--find-links", wheels]
    _run(cmd + list(REQUIREMENTS), "install torch + onnx into the zoo venv")
    _run([str(python), "-I", "-c", "import torch, onnx"], "import torch in the zoo venv")
    write_atomic(stamp, _venv_stamp())
    return python


def _run(cmd: list[str], what: str) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ZooBuildError(f"could not {what}: {' '.join(cmd)}: {e}") from e
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise ZooBuildError(f"could not {what} (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


