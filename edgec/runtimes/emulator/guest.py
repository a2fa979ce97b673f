"""Runs INSIDE the emulated aarch64 python (stdlib, numpy and the runtime wheels only; no edgec).

argv: KIND (tflite|ort) MODEL THREADS [PROFILE]. Loads the model once, prints a ready line, then serves one request per
stdin line: `run IN.npz OUT.npz` runs the model on IN's arrays and writes the outputs to OUT (`warm` instead of
`run`: the same, left out of the instruction counts). Replies are
stdout lines starting with the tag, so the runtimes' own chatter is ignored. Around each invoke it makes an
lseek on fd -1 with a magic offset: a no-op syscall (EBADF) that the instruction-count plugin uses to count the
invoke alone, not python's start-up or the npz I/O. PROFILE (ort only): ONNX Runtime's profiler times every op,
and at exit its JSON trace is written to PROFILE (the op boundaries for per-op instruction counts).
"""

import os
import sys
import traceback

import numpy as np

TAG = "@@edgec"
MARK = 0xED6E_C000  # lseek(-1, MARK + 1) opens the counted region, MARK + 2 closes it; + 3 / + 4 a warm-up one


def _mark(n):
    try:
        os.lseek(-1, MARK + n, 0)
    except OSError:
        pass


def write_npz(path, arrays):
    """Tensor names go in an array of their own: an ONNX name may be anything, an npz key may not ('file')."""
    names = list(arrays)
    np.savez(path, __names__=np.array(names, dtype=str), **{f"a{i}": np.asarray(arrays[n]) for i, n in enumerate(names)})


def read_npz(path):
    with np.load(path) as z:
        return {str(n): z[f"a{i}"] for i, n in enumerate(z["__names__"])}


def _reply(*words):
    sys.stdout.write(" ".join([TAG, *words]) + "\n")
    sys.stdout.flush()


def _load(kind, model, threads, profile=None):
    """(run feeds -> outputs, finish at exit)."""
    if kind == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=model, num_threads=threads)  # default resolver: XNNPACK on, as on phones
        interp.allocate_tensors()
        sig = interp.get_signature_runner("serving_default")
        return (lambda feeds: sig(**feeds)), (lambda: None)
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # an .ort file is already optimised
    if profile:
        so.enable_profiling = True
        so.profile_file_prefix = profile
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]

    def finish():
        if profile:
            os.replace(sess.end_profiling(), profile)

    return (lambda feeds: dict(zip(names, sess.run(names, feeds)))), finish


def main():
    kind, model, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    profile = sys.argv[4] if len(sys.argv) > 4 else None
    try:
        run, finish = _load(kind, model, threads, profile)
    except Exception as e:  # noqa: BLE001 - every failure goes back to the host as one line
        _reply("error", f"{type(e).__name__}: {e}".replace("\n", " "))
        return 1
    _reply("ready")
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] not in ("run", "warm") or len(words) != 3:
            _reply("error", f"bad request {line.strip()!r}")
            continue
        try:
            feeds = read_npz(words[1])
            counted = words[0] == "run"
            _mark(1 if counted else 3)  # a warm-up invoke fills the plugin's simulated caches, uncounted
            out = run(feeds)
            _mark(2 if counted else 4)
            write_npz(words[2], out)
            _reply("ok")
        except Exception as e:  # noqa: BLE001
            _reply("error", f"{type(e).__name__}: {e}".replace("\n", " ") + " | "
                   + traceback.format_exc().strip().splitlines()[-1])
    finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
