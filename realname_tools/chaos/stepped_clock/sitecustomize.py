"""Imported at start-up by a Python whose PYTHONPATH starts with this folder (see faults.clock): the wall
clock (`time.time`, `time.time_ns`) stepped by the seconds written in the file CHAOS_CLOCK_STEP_FILE
names, read again at most every 0.2 s; the monotonic clock untouched, as when NTP steps a machine's
clock. (libfaketime does this for a whole process, but with Python 3.11 its sleeps fail with EINVAL.)"""

import os
import time

_FILE = os.environ.get("CHAOS_CLOCK_STEP_FILE")

if _FILE:
    _wall, _wall_ns = time.time, time.time_ns
    _step = {"s": 0.0, "read_at": float("-inf")}

    def _offset() -> float:
        now = time.monotonic()
        if now - _step["read_at"] > 0.2:
            try:
                with open(_FILE) as file:
                    _step["s"] = float(file.read().strip() or 0)
            except (OSError, ValueError):
                pass
            _step["read_at"] = now
        return _step["s"]

    time.time = lambda: _wall() + _offset()
    time.time_ns = lambda: _wall_ns() + int(_offset() * 1e9)
