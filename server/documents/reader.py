"""Reading an uploaded document photo for the service: decoded under the image limits in a child process
(as every upload is), then OCR on one thread of its own, off the event loop.

The OCR models load once (about 0.2 s; 31 MB of ONNX). One thread, and one core for the models: a reading
takes one to two seconds of CPU, and live checks must keep the rest. Each reading is bounded (see ocr.py),
and readings wait their turn fairly: one in flight per session, at most one queued per session (a later
upload replaces the session's queued photo, and the replaced upload ends with `ReadingReplaced`), and
sessions are served in the order they first queued. A customer who uploads ten crafted photos in a row
delays another customer by at most one bounded reading, not ten.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..errors import FlowError
from .reading import read_lines
from .results import DocumentReading

if TYPE_CHECKING:
    import numpy as np

    from ..matching.decoding import ImageDecoder
    from .ocr import TextReader


class ReadingReplaced(FlowError):
    def __init__(self) -> None:
        super().__init__("upload_replaced", "a newer photo of this session replaced this one before it was read", 409)


@dataclass
class _Queued:
    bgr: np.ndarray
    today: dt.date
    done: asyncio.Future[DocumentReading]


class DocumentReader:
    def __init__(self, models_dir: str = "", thread_initializer: Callable[[], None] | None = None) -> None:
        self.models_dir = models_dir
        self._engine: TextReader | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocr", initializer=thread_initializer)
        self._queued: OrderedDict[str, _Queued] = OrderedDict()  # per session, in the order sessions came
        self._running: Future[DocumentReading] | None = None  # the reading on the OCR thread
        self._closed = False

    def engine(self) -> TextReader:
        with self._lock:
            if self._engine is None:
                from .ocr import TextReader

                self._engine = TextReader.from_models_dir(self.models_dir)
            return self._engine

    def read_image(self, bgr: np.ndarray, today: dt.date) -> DocumentReading:
        """Blocking: the reading of a decoded photo (`unrecognised` with `lines_read` 0 when it has no text)."""
        scan = self.engine().scan(bgr)
        return replace(read_lines(scan.lines, today), complete=scan.complete)

    async def read_decoded(self, bgr: np.ndarray, today: dt.date, session_id: str | None = None) -> DocumentReading:
        """The reading, in the session's turn. A later photo of the same session queued before this one
        was started replaces it (ReadingReplaced)."""
        key = session_id or secrets.token_hex(8)
        entry = _Queued(bgr, today, asyncio.get_running_loop().create_future())
        earlier = self._queued.get(key)
        self._queued[key] = entry  # keeps the session's place in the queue
        if earlier is not None and not earlier.done.done():
            earlier.done.set_exception(ReadingReplaced())
        self._next()
        try:
            return await entry.done
        finally:
            if self._queued.get(key) is entry:  # the customer left before the reading began
                del self._queued[key]

    async def read_upload(self, decoder: ImageDecoder, data: bytes, content_type: str | None, today: dt.date) -> DocumentReading:
        """The upload decoded under the decoder's limits (ImageError when it cannot be), then read."""
        bgr = await decoder.decode_upload(data, content_type)
        return await self.read_decoded(bgr, today)

    @property
    def waiting(self) -> int:
        """Sessions whose photo waits for its turn."""
        return len(self._queued)

    @property
    def busy(self) -> bool:
        # The thread's own future, not a callback on a loop: a loop that ended mid-reading frees nothing else.
        return self._running is not None and not self._running.done()

    def _next(self) -> None:
        """Start the first queued session's reading when none is running (on the event loop's thread)."""
        while not self.busy and self._queued and not self._closed:
            _, entry = self._queued.popitem(last=False)
            if entry.done.done():  # its upload was answered already
                continue
            self._running = self._executor.submit(self.read_image, entry.bgr, entry.today)
            asyncio.wrap_future(self._running).add_done_callback(lambda finished, entry=entry: self._finished(entry, finished))

    def _finished(self, entry: _Queued, finished: asyncio.Future[DocumentReading]) -> None:
        if not entry.done.done():
            if finished.cancelled():
                entry.done.cancel()
            elif (error := finished.exception()) is not None:
                entry.done.set_exception(error)
            else:
                entry.done.set_result(finished.result())
        self._next()

    def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
