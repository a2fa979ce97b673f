"""YOLO11n (Ultralytics) at 640x640, fp32 ONNX, with seeded random weights: the model of the Raspberry Pi 5 ONNX
Runtime figure in published_latency.yaml. Latency does not depend on the weights, so none are downloaded: the
`ultralytics` package builds the architecture from its own yolo11n.yaml.

ultralytics needs torch and torchvision, which edgec does not install, so the export runs once in a side venv
and the file goes into the edgec cache, where bench/published.py reads it (it is checked in nowhere):

    python3 -m venv /tmp/yolo-venv
    echo ~/.cache/edgec/zoo-venv/lib/python3.11/site-packages > /tmp/yolo-venv/lib/python3.11/site-packages/zoo.pth
    /tmp/yolo-venv/bin/pip install ultralytics            # torch comes from the zoo venv (tests/zoo.py)
    YOLO_OFFLINE=1 /tmp/yolo-venv/bin/python bench/yolo11n.py ~/.cache/edgec/bench/yolo11n.onnx

The export is Ultralytics' own (`model.export(format="onnx", imgsz=640)`: opset 18 here, NMS-free raw head
output [1, 84, 8400]) without onnxslim (edgec simplifies the graph itself). Measured with ultralytics 8.4.190 /
torch 2.13.0: 2,616,248 parameters, 6.5 GFLOPs, 10.2 MB.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path


def path(cache_dir: Path) -> Path:
    """The export in the edgec cache; a clear error naming the command above when it is not there."""
    out = Path(cache_dir) / "yolo11n.onnx"
    if not out.exists():
        raise FileNotFoundError(f"{out} is missing: export it once with bench/yolo11n.py (see its docstring: it "
                                f"needs the ultralytics package in a side venv)")
    return out


def export(out: Path) -> None:
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(YOLO("yolo11n.yaml").export(format="onnx", imgsz=640, simplify=False, dynamic=False, batch=1,
                                                project=d), out)


if __name__ == "__main__":
    export(Path(sys.argv[1]))
