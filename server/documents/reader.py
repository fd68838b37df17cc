"""Reading an uploaded document photo for the service: decoded under the image limits in a child process
(as every upload is), then OCR on one thread of its own, off the event loop.

The OCR models load once (about 0.2 s; 31 MB of ONNX). One thread, and one core for the models: a reading
takes one to two seconds of CPU, and live checks must keep the rest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .reading import read_lines
from .results import DocumentReading

if TYPE_CHECKING:
    import numpy as np

    from ..matching.decoding import ImageDecoder
    from .ocr import TextReader

class DocumentReader:
    def __init__(self, models_dir: str = "", thread_initializer: Callable[[], None] | None = None) -> None:
        self.models_dir = models_dir
        self._engine: TextReader | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocr", initializer=thread_initializer)

    def engine(self) -> TextReader:
        with self._lock:
            if self._engine is None:
                from .ocr import TextReader

                self._engine = TextReader.from_models_dir(self.models_dir)
            return self._engine

    def read_image(self, bgr: np.ndarray, today: dt.date) -> DocumentReading:
        """Blocking: the reading of a decoded photo (`unrecognised` with `lines_read` 0 when it has no text)."""
        return read_lines(self.engine().read(bgr), today)

    async def read_decoded(self, bgr: np.ndarray, today: dt.date) -> DocumentReading:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.read_image, bgr, today)

    async def read_upload(self, decoder: ImageDecoder, data: bytes, content_type: str | None, today: dt.date) -> DocumentReading:
        """The upload decoded under the decoder's limits (ImageError when it cannot be), then read."""
        bgr = await decoder.decode_upload(data, content_type)
        return await self.read_decoded(bgr, today)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
