"""Seeded mutation fuzzing of `edgec build --target all` (issue 21): thousands of cases, bad ones listed.

    nice -n 10 python bench/fuzz.py --cases 500 --bases cnn,attention,lstm --jobs 1
    python bench/fuzz.py --cases 40 --seed-start 1000 --no-validate   # build only, no numerics check
    python bench/fuzz.py --cases 10 --subprocess                     # a fresh `python -m edgec.cli` per case
    python bench/fuzz.py --replay cnn:123                            # one case, with its stderr

Cases run as children of a fork server (tests/fuzz/forkserver.py) that imported edgec and its runtimes once;
--subprocess runs each in a fresh interpreter instead (slower: every case pays the imports).

What a case is and when it is bad: tests/fuzz/fuzz.py. Prints counts by mutation class and outcome (exit code),
and every bad case with the seed that reproduces it; --json writes them all.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.fuzz lives next to edgec

from tests.fuzz.fuzz import ForkServer, run_case  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100, help="cases per base model")
    ap.add_argument("--bases", default="cnn,attention,lstm")
    ap.add_argument("--seed-start", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--no-validate", dest="validate", action="store_false",
                    help="build only (by default numerics are validated, latency off)")
    ap.add_argument("--subprocess", action="store_true", help="a fresh interpreter per case, no fork server")
    ap.add_argument("--replay", help="BASE:SEED: run one case and print its stderr")
    ap.add_argument("--json", type=Path, help="write every case's result here")
    args = ap.parse_args()
    if args.replay:
        base, seed = args.replay.split(":")
        r = run_case(base, int(seed), args.timeout, args.validate)
        print(f"{r.kind}: {r.what}\nexit {r.returncode} in {r.seconds:.1f} s; bad: {r.bad or 'no'}\n{r.stderr}")
        print(f"replay: python -m edgec.cli build <case> --target all "
              f"{'--latency off' if args.validate else '--no-validate'}")
        return 1 if r.bad else 0
    cases = [(b, s) for s in range(args.seed_start, args.seed_start + args.cases) for b in args.bases.split(",")]
    t0 = time.perf_counter()
    results = []
    local, servers = threading.local(), []

    def one(case):
        if args.subprocess:
            return run_case(case[0], case[1], args.timeout, args.validate)
        if not hasattr(local, "server"):
            local.server = ForkServer()
            servers.append(local.server)
        return run_case(case[0], case[1], args.timeout, args.validate, server=local.server)

    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # a stopped run (SIGINT/SIGTERM) still reports the cases it finished
    pool = ThreadPoolExecutor(args.jobs)
    try:
        for i, r in enumerate(pool.map(one, cases), 1):
            results.append(r)
            if r.bad:
                print(f"BAD {r.base}:{r.seed} [{r.kind}] {r.what}: {'; '.join(r.bad)}", flush=True)
            if i % 50 == 0:
                print(f"... {i}/{len(cases)} cases, {time.perf_counter() - t0:.0f} s", flush=True)
    except KeyboardInterrupt:
        print(f"stopped after {len(results)} cases", flush=True)
        pool.shutdown(wait=True, cancel_futures=True)
    else:
        pool.shutdown()
    for server in servers:
        server.close()
    by_kind = collections.defaultdict(collections.Counter)
    for r in results:
        by_kind[r.kind]["bad" if r.bad else f"exit {r.returncode}"] += 1
    print(f"\n{len(results)} cases on {args.bases} in {time.perf_counter() - t0:.0f} s "
          f"({sum(r.seconds for r in results) / max(1, len(results)):.1f} s per case"
          + (f", {sum(r.cpu for r in results) / len(results):.2f} s CPU per case)" if results and results[0].cpu
             is not None else ")"))
    for kind in sorted(by_kind):
        print(f"  {kind:12s} " + ", ".join(f"{k}: {v}" for k, v in sorted(by_kind[kind].items())))
    bad = [r for r in results if r.bad]
    print(f"bad cases: {len(bad)}")
    for r in bad:
        last = [x for x in r.stderr.splitlines() if x.strip()][-1:] or [""]
        print(f"  {r.base}:{r.seed} [{r.kind}] {r.what}: {'; '.join(r.bad)} | {last[0][:300]}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
