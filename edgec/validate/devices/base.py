"""What every device runner returns (the runners and the factory in device.py import this, not each other)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DeviceStats:
    runtime: str
    threads: int
    method: str
    times_ms: list[float] = field(default_factory=list)  # per-run times when the device reports them
    # aggregates, for tools that only print those
    median_ms: float | None = None
    p90_ms: float | None = None
    min_ms: float | None = None
    runs: int = 0
    remote: dict = field(default_factory=dict)  # what the device says about itself (ssh: pid, host, workdir)
