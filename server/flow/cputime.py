"""CPU time of the live work: the process's, less that of the threads doing upload work (ID photos,
document reading). Those run at a lower priority and are no part of what one more live check costs, so
they must not inflate the per-frame cost that admission sizes the service by."""

from __future__ import annotations

import os
import threading
import time

from ..config import Settings

_background_clocks: list[int] = []
_lock = threading.Lock()


def background_thread() -> None:
    """Executor initializer: this thread runs at a lower priority and its CPU time is left out."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # Linux: per-thread niceness
    except (AttributeError, OSError):
        pass
    try:
        clock = time.pthread_getcpuclockid(threading.get_ident())
    except (AttributeError, OSError):
        return
    with _lock:
        _background_clocks.append(clock)


def live_cpu_s() -> float:
    """CPU seconds of this process, background threads left out."""
    total = time.process_time()
    with _lock:
        for clock in list(_background_clocks):
            try:
                total -= time.clock_gettime(clock)
            except OSError:  # the thread has ended (an app shut down)
                _background_clocks.remove(clock)
    return total


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) or 1


def analysis_workers(settings: Settings) -> int:
    """Analysis threads: as configured, else two per core (MediaPipe runs each frame on threads of its
    own while the worker waits; with one worker per core the cores idle between frames)."""
    return settings.analysis_threads or 2 * usable_cores()
