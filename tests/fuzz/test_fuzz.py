"""A small seeded sample of the mutation fuzz (tests/fuzz/fuzz.py; bench/fuzz.py runs thousands): every case must
end with a documented exit code, one clean message, no leftovers and a consistent output folder."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.fuzz.fuzz import ForkServer, run_case

# 40 cases: seeds chosen once at random, spread over the three base models and every mutation class
SAMPLE = [(base, seed) for seed in range(7000, 7014) for base in ("cnn", "attention", "lstm")][:40]


def test_seeded_fuzz_sample_has_no_bad_case(tmp_path):
    local, servers, lock = threading.local(), [], threading.Lock()

    def one(case):  # one fork server per thread: each case is its own forked process with a timeout
        if not hasattr(local, "server"):
            local.server = ForkServer()
            with lock:
                servers.append(local.server)
        return run_case(case[0], case[1], timeout=120, workdir=tmp_path, server=local.server)

    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(one, SAMPLE))
    finally:
        for server in servers:
            server.close()
    bad = [f"{r.base}:{r.seed} [{r.kind}] {r.what}: {'; '.join(r.bad)}\n{r.stderr[-600:]}" for r in results if r.bad]
    assert not bad, "\n\n".join(bad) + "\n(replay one with: python bench/fuzz.py --replay BASE:SEED)"
    assert len({r.kind for r in results}) >= 8  # the sample covers most mutation classes
    assert sum(r.returncode == 0 for r in results) >= 3  # and some cases build (and validate) every target
