"""The live cost's CPU clock leaves the upload threads out (server/flow/cputime.py)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from server.flow.cputime import background_thread, live_cpu_s


def burn(seconds: float) -> float:
    """Spend about this much CPU in this thread; return what this thread spent."""
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        sum(range(1000))
    return time.thread_time() - started


def test_upload_threads_are_left_out_of_the_live_cpu_time():
    with ThreadPoolExecutor(max_workers=1, initializer=background_thread) as uploads:
        uploads.submit(lambda: None).result()  # the thread exists and is registered
        live, process = live_cpu_s(), time.process_time()
        spent = uploads.submit(burn, 0.3).result()
        live_delta, process_delta = live_cpu_s() - live, time.process_time() - process
    assert process_delta >= spent
    assert live_delta < process_delta - 0.8 * spent  # the upload thread's CPU is not live cost
    with ThreadPoolExecutor(max_workers=1) as analysis:
        live = live_cpu_s()
        spent = analysis.submit(burn, 0.3).result()
        assert live_cpu_s() - live >= 0.8 * spent  # any other thread's is
    live_cpu_s()  # a clock of an ended thread is dropped, not an error
