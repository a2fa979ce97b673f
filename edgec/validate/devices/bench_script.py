"""Standalone timing script copied to a Linux board by the ssh runner (no edgec imports: only numpy and the
runtime must exist there). Prints one JSON object: {"runtime", "times_ms", "threads", "remote"}; "remote" holds
facts only the machine that ran the timing knows (its pid, hostname, work folder, whether sshd started it), so a
reader of the manifest can tell the numbers came from the board and not from the build machine.

    python3 bench_script.py MODEL INPUTS.npz --threads 4 --runs 20 --warmup 3 [--max-seconds S]
"""

import argparse
import json
import os
import socket
import sys
import time

import numpy as np


def _ort(model, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    return (lambda feeds: sess.run(None, feeds)), "onnxruntime " + ort.__version__


def _litert(model, threads):
    try:
        from ai_edge_litert.interpreter import Interpreter
        name = "ai-edge-litert"
    except ImportError:
        from tflite_runtime.interpreter import Interpreter
        name = "tflite-runtime"
    interp = Interpreter(model_path=model, num_threads=threads)
    interp.allocate_tensors()
    details = interp.get_input_details()

    def run(feeds):
        for d in details:
            key = d["name"] if d["name"] in feeds else next(iter(feeds)) if len(feeds) == 1 else d["name"]
            interp.set_tensor(d["index"], feeds[key])
        interp.invoke()

    return run, name


def _remote_facts(script: str) -> dict:
    """Who ran the timing. SSH_CONNECTION ("client_ip client_port server_ip server_port") is set by sshd for the
    session only, so its server port names the sshd that started us."""
    conn = os.environ.get("SSH_CONNECTION", "").split()
    parent = None
    try:  # Linux boards: the parent is the ssh session's shell or sshd itself
        with open(f"/proc/{os.getppid()}/comm") as f:
            parent = f.read().strip()
    except OSError:
        pass
    return {"pid": os.getpid(), "ppid": os.getppid(), "parent": parent, "hostname": socket.gethostname(),
            "workdir": os.path.dirname(os.path.abspath(script)), "python": sys.executable,
            "ssh_connection": bool(conn), "ssh_server_port": int(conn[3]) if len(conn) == 4 else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("inputs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--max-seconds", type=float, default=None)
    args = ap.parse_args()
    feeds = dict(np.load(args.inputs))
    run, runtime = (_litert if args.model.endswith(".tflite") else _ort)(args.model, args.threads)
    for _ in range(args.warmup):
        run(feeds)
    times = []
    start = time.perf_counter()
    for _ in range(args.runs):
        t0 = time.perf_counter()
        run(feeds)
        times.append((time.perf_counter() - t0) * 1000.0)
        if args.max_seconds is not None and len(times) >= 3 and time.perf_counter() - start > args.max_seconds:
            break
    print(json.dumps({"runtime": runtime, "times_ms": times, "threads": args.threads,
                      "remote": _remote_facts(__file__)}))


if __name__ == "__main__":
    main()
