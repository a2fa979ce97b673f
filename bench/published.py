"""edgec's device estimates against published latencies (bench/published_latency.yaml).

    python bench/published.py [--data bench/published_latency.yaml] [--all] [--emulate] [--profile P] [--model M]

For every figure with an edgec model: the roofline estimate (edgec.validate.estimate) of that model on the
figure's profile, at the published input size and thread count, beside the published ms; then the median
|estimate - published| / published over the figures marked comparable. --all also prints the figures without
an edgec model (listed for their source, e.g. an ONNX Runtime / ncnn pair on the same board). --emulate also
builds each CPU figure's model for its profile with `--emulator qemu:CORE --latency emulate` (the instruction
model of docs/emulator.md, the profile's `hardware.cpu.emulate` core; ~1-4 min per model) and adds that column:
the hot blocks at llvm-mca's cycles (with llvm-19 installed), beside the peak-rate model + stalls and the peak
rates alone, all three from the same counting run.
Needs the torch test zoo (tests/zoo.py builds it once) for the zoo models.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from edgec.config.loader import load_profile  # noqa: E402
from edgec.prepare import prepare  # noqa: E402
from edgec.validate.estimate import estimate  # noqa: E402

DATA = Path(__file__).with_name("published_latency.yaml")


def model_path(name: str) -> Path:
    """A tests/zoo.py export, else a light sample (random weights: latency does not depend on them)."""
    from edgec.samples import LIGHT_MODELS, randomized

    if name == "mobilenet_v1":
        import mobilenet_v1

        from edgec.paths import cache_dir

        return mobilenet_v1.path(cache_dir() / "bench")
    if name == "yolo11n":  # exported once by bench/yolo11n.py (needs ultralytics, which edgec does not install)
        import yolo11n

        from edgec.paths import cache_dir

        return yolo11n.path(cache_dir() / "bench")
    if name in LIGHT_MODELS:
        return randomized(name)
    from tests.zoo import zoo_model

    return zoo_model(name)


def load_at(path: Path, shape: list[int] | None) -> tuple[onnx.ModelProto, dict]:
    """The model with its single image input resized to `shape` (a CNN with a global pool takes any size; the
    export fixed 224, so the fixed dims and the stale value_info are dropped and re-inferred)."""
    model = onnx.load(str(path))
    if not shape:
        return model, {}
    inp = model.graph.input[0]
    for d in inp.type.tensor_type.shape.dim:
        d.ClearField("dim_value")
        d.dim_param = "d"
    del model.graph.value_info[:]
    return model, {inp.name: list(shape)}


def estimate_ms(fig: dict, cache: dict) -> tuple[float, float, str]:
    """(estimate ms, GFLOP, unit) of the figure's model on its profile at its threads."""
    precision = fig.get("precision", "fp32")
    profile = load_profile(fig["profile"])
    key = (fig["model"], tuple(fig.get("input") or ()), fig["profile"] if precision == "int8" else None)
    if key not in cache:
        path = model_path(fig["model"])
        model, shapes = load_at(path, fig.get("input"))
        quant = None
        if precision == "int8":  # the estimator sees int8 kernels in a QDQ graph (random calibration: same ops)
            quant = profile.model_copy(update={"quantize": profile.quantize.model_copy(update={
                "mode": "int8", "calibration": profile.quantize.calibration.model_copy(
                    update={"source": "random", "samples": 4}), "sensitivity": 0})})
        cache[key] = prepare(model, shapes, str(path), profile=quant,
                             target_format="tflite" if profile.target == "android" else "ort").model
    est = estimate(cache[key], profile, precision=fig.get("precision", "fp32"), threads=fig.get("threads"))
    return est.total_ms, est.gflop, est.unit


def emulated_ms(fig: dict) -> tuple[float, float, dict] | None:
    """(instruction model ms, the throughput-only model's ms, latency details) of an `edgec build --emulator
    qemu:CORE --latency emulate` of the figure's model on its profile (None when the profile names no core to
    emulate or the build fails). The throughput-only ms is the model before the cache simulation, from the same
    counting run (no cache sizes in the profile: both are the same)."""
    profile = load_profile(fig["profile"])
    core = profile.hardware.cpu.emulate
    if not core:
        return None
    path = model_path(fig["model"])
    with tempfile.TemporaryDirectory() as tmp:
        # latency needs no numerics: the fewest emulated inputs the config allows (fp32 runs ~400x slower)
        spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "profiles" / f"{fig['profile']}.yaml").read_text())
        spec.setdefault("validate", {}).setdefault("numerics", {})["emulator_samples"] = 2
        prof = Path(tmp) / f"{fig['profile']}.yaml"
        prof.write_text(yaml.safe_dump(spec))
        cmd = [sys.executable, "-m", "edgec.cli", "build", str(path), "--target", profile.target, "--profile",
               str(prof), "--emulator", f"qemu:{core}", "--latency", "emulate", "--out", str(Path(tmp) / "out")]
        if fig.get("precision") == "int8":  # latency does not depend on the calibration data
            cmd += ["--quantize", "int8", "--calibration", "random"]
        if fig.get("input"):
            model, shapes = load_at(path, fig["input"])
            resized = Path(tmp) / f"{path.stem}-resized.onnx"
            onnx.save(model, str(resized))
            cmd[4] = str(resized)
            cmd[5:5] = [a for name, dims in shapes.items()
                        for a in ("--input-shape", f"{name}={','.join(map(str, dims))}")]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                             os.environ.get("PYTHONPATH", "")])}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        manifest = Path(tmp) / "out" / "manifest.json"
        if not manifest.exists():  # a numerics verdict may fail (random weights); the latency is still there
            print(f"  emulated build of {fig['model']} failed: {(r.stderr or r.stdout).strip()[-300:]}")
            return None
        latency = json.loads(manifest.read_text())["artifacts"][0]["latency"]
        if latency.get("mode") != "emulate":
            return None
        d = latency["details"]
        return float(latency["median_ms"]), float(d.get("throughput_ms", latency["median_ms"])), d


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--all", action="store_true", help="also list the figures without an edgec model")
    ap.add_argument("--profile", help="only the figures of this profile (e.g. pixel-4)")
    ap.add_argument("--model", help="only the figures of this edgec model (e.g. inception_v1)")
    ap.add_argument("--emulate", action="store_true",
                    help="also the QEMU instruction-model latency of each CPU figure's model (slow)")
    args = ap.parse_args()
    device_table(Path(args.data), args.profile, args.model, args.emulate, args.all)
    return 0


def device_table(data: Path = DATA, profile: str | None = None, model: str | None = None, emulate: bool = False,
                 show_all: bool = False) -> None:
    """Print edgec's estimate (and with `emulate` the instruction model) beside every published figure."""
    figures = yaml.safe_load(data.read_text())["figures"]
    print(f"{'profile':16} {'model':20} {'runtime':48} {'thr':>3} {'published':>9} {'estimate':>9} "
          f"{'est/pub':>7}  source (date)")
    cache: dict = {}
    errors, emu_errors = [], []
    for fig in figures:
        if (not fig.get("model") or (profile and fig["profile"] != profile)
                or (model and fig["model"] != model)):
            continue
        try:
            est_ms, gflop, unit = estimate_ms(fig, cache)
        except FileNotFoundError as e:  # a model exported outside edgec (bench/yolo11n.py) and not there yet
            print(f"{fig['profile']:16} {fig['model']:20} skipped: {e}")
            continue
        pub = float(fig["ms"])
        counted = fig.get("compare", True)
        if counted:
            errors.append(abs(est_ms - pub) / pub)
        mark = "" if counted else "  [not in median]"
        emu = ""
        if emulate and unit == "cpu":
            emulated = emulated_ms(fig)
            if emulated is not None:
                emu_ms, before_ms, d = emulated
                peak_ms = float(d.get("peak_stall_ms", emu_ms))  # before the pipeline simulation
                pipe = d.get("pipeline") or {}
                emu = (f"  instruction model {emu_ms:.2f} ms ({emu_ms / pub:.2f}x; llvm-mca blocks {pipe.get('blocks', '-')} "
                       f"covering {pipe.get('coverage', 0):.1%}; peak rates + stalls {peak_ms:.2f} ms = {peak_ms / pub:.2f}x; "
                       f"throughput only {before_ms:.2f} ms = {before_ms / pub:.2f}x; stall {d.get('stall_cycles', 0):,} cycles, LLC load misses "
                       f"{(d.get('cache') or {}).get('llc', {}).get('load_misses', '-')}, counting run "
                       f"{d.get('emulated_s')} s)")
                if counted:
                    emu_errors.append((fig["runtime"], abs(emu_ms - pub) / pub, abs(before_ms - pub) / pub,
                                       abs(peak_ms - pub) / pub))
        print(f"{fig['profile']:16} {fig['model']:20} {fig['runtime'][:48]:48} {fig.get('threads') or '-':>3} "
              f"{pub:9.2f} {est_ms:9.2f} {est_ms / pub:7.2f}  {fig['source'].split(' ')[0]} ({fig['date']})"
              f"  [{unit}, {gflop:.2f} GFLOP]{mark}{emu}")
    if errors:
        print(f"median |estimate - published| / published: {np.median(errors):.0%} over {len(errors)} figures "
              f"(range {min(errors):.0%} - {max(errors):.0%})")
    groups = {"all": lambda r: True, "TFLite/XNNPACK": lambda r: "ncnn" not in r and "ONNX Runtime" not in r,
              "ncnn": lambda r: "ncnn" in r, "ONNX Runtime": lambda r: "ONNX Runtime" in r}
    for group, member in groups.items() if emu_errors else ():
        rows = [e for e in emu_errors if member(e[0])]
        if rows:
            after, before, peak = [e[1] for e in rows], [e[2] for e in rows], [e[3] for e in rows]
            print(f"instruction model, {group} ({len(rows)} figures): median |emulated - published| / published "
                  f"{np.median(after):.0%} (range {min(after):.0%} - {max(after):.0%}); peak rates + stalls "
                  f"{np.median(peak):.0%}; throughput only {np.median(before):.0%}")
    if show_all:
        print("\nfigures without an edgec model (source only):")
        for fig in figures:
            if not fig.get("model"):
                print(f"  {fig['profile']:16} {fig['published_model'][:28]:28} {fig['runtime'][:56]:56} "
                      f"{float(fig['ms']):8.2f} ms  {fig['source'].split(' ')[0]} ({fig['date']})")


if __name__ == "__main__":
    sys.exit(main())
