"""CPU time and memory of processes, read from /proc while the bench runs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from .options import CLOCK_TICKS, CORES, SAMPLE_EVERY_S

# -- /proc readings -------------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    with open(f"/proc/{pid}/stat") as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14 and 15)


def process_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as stream:
        for line in stream:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def process_threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def machine_cpu_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores."""
    with open("/proc/stat") as stream:
        values = [int(v) for v in stream.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class Sampler:
    """Samples the CPU time and resident memory of some processes every half second."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.samples: list[dict[str, Any]] = []
        self._task: asyncio.Task | None = None

    def sample(self) -> dict[str, Any]:
        busy, total = machine_cpu_s()
        row: dict[str, Any] = {"t": time.monotonic(), "machine_busy_s": busy, "machine_total_s": total}
        for name, pid in self.pids.items():
            try:
                row[name] = (process_cpu_s(pid), process_rss_mb(pid))
            except (OSError, IndexError, ValueError):
                row[name] = None
        self.samples.append(row)
        return row

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @staticmethod
    def window(start: dict[str, Any], end: dict[str, Any], between: list[dict[str, Any]], name: str) -> dict[str, Any]:
        """Mean CPU (% of all cores) and peak memory of one process between two samples."""
        if start.get(name) is None or end.get(name) is None:
            return {"cpu_percent": None, "rss_peak_mb": None}
        seconds = end["t"] - start["t"]
        cpu = (end[name][0] - start[name][0]) / seconds / CORES * 100 if seconds > 0 else 0.0
        peaks = [row[name][1] for row in [start, *between, end] if row.get(name) is not None]
        return {"cpu_percent": round(cpu, 1), "rss_peak_mb": round(max(peaks), 1)}


