"""Decoding untrusted uploads in small child processes, where a memory limit and a time limit hold.

A decoder's bugs and worst cases (a decompression bomb the header checks missed, a pathological JPEG, a
huge allocation) then cost one child process, never the server: the child has an address-space limit
(RLIMIT_AS), the parent ends it when a photo takes longer than the timeout, and in both cases the
upload is refused with `image_too_complex` and the child replaced. Each child handles one photo at a
time, so ending it never fails another customer's upload.

Children start with "forkserver" (never a plain fork of the multi-threaded server), from a fork server
that has Pillow loaded and nothing else: a child is ready in milliseconds and small. What they return is
the bounded RGB copy from `images.decode_rgb`.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the children must not import more than they need
    import numpy as np

    from ..config import Settings
    from .images import DecodedImage, ImageLimits

log = logging.getLogger(__name__)

PRELOAD = ["PIL.Image", "PIL.ImageOps", "PIL.JpegImagePlugin", "PIL.PngImagePlugin", "PIL.WebPImagePlugin", f"{__package__}.images"]
TOO_COMPLEX = ("image_too_complex", "the photo is too complex to process; please take another", 422)


@dataclass(frozen=True)
class DecoderLimits:
    workers: int = 2
    memory_bytes: int = 1024 * 1024 * 1024
    timeout_s: float = 10.0


def _limit_child(memory_bytes: int) -> None:
    """Runs first in each child: a lower CPU priority than live analysis (like the upload thread), an
    address-space cap, never a core file, and an end when the server ends, however it ends (an idle
    worker would otherwise wait forever on its queue, and keep the fork server alive)."""
    import os
    import resource
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (wait([parent.sentinel]), os._exit(0)), daemon=True).start()
    os.nice(10)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = memory_bytes if hard == resource.RLIM_INFINITY else min(memory_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _decode(data: bytes, declared_type: str | None, limits: ImageLimits) -> DecodedImage:
    from .images import decode_rgb

    return decode_rgb(data, declared_type, limits)


class _Lane:
    """One child process, one photo at a time. The child starts with the lane's first photo."""

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.executor = self._new()

    def _new(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)  # takes effect if this starts the fork server
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=context,
            initializer=_limit_child,
            initargs=(self.memory_bytes,),
        )

    def replace(self) -> None:
        """End the child whatever it is doing, and start a fresh one."""
        old, self.executor = self.executor, self._new()
        _end(old)

    def close(self) -> None:
        _end(self.executor)


def _end(executor: ProcessPoolExecutor) -> None:
    processes = list((executor._processes or {}).values())  # no public way to end a busy worker
    for process in processes:
        process.kill()
    for process in processes:
        process.join(timeout=1.0)  # SIGKILL takes effect within milliseconds; its memory is free after
    executor.shutdown(wait=False, cancel_futures=True)


class ImageDecoder:
    """`await decode_upload(data, content_type)` -> the bounded BGR copy, or ImageError."""

    def __init__(self, image_limits: ImageLimits, limits: DecoderLimits | None = None) -> None:
        self.image_limits = image_limits
        self.limits = limits or DecoderLimits()
        self._lanes: list[_Lane] = []
        self._free: asyncio.LifoQueue[_Lane] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageDecoder:
        from .images import ImageLimits

        image_limits = ImageLimits(
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_image_pixels,
            max_aspect=settings.max_image_aspect,
            max_jpeg_scans=settings.max_jpeg_scans,
        )
        limits = DecoderLimits(
            workers=max(1, settings.decode_workers),
            memory_bytes=settings.decode_memory_mb * 1024 * 1024,
            timeout_s=settings.decode_timeout_s,
        )
        return cls(image_limits, limits)

    async def start(self) -> None:
        if self._free is not None:
            return
        # Last in, first out: a second child starts only when photos actually overlap.
        self._free = asyncio.LifoQueue()
        for _ in range(self.limits.workers):
            lane = _Lane(self.limits.memory_bytes)
            self._lanes.append(lane)
            self._free.put_nowait(lane)

    async def close(self) -> None:
        for lane in self._lanes:
            lane.close()
        self._lanes.clear()
        self._free = None

    async def decode_upload(self, data: bytes, declared_type: str | None) -> np.ndarray:
        from .images import ImageError

        # Even the checks on the raw bytes run in the child: walking a 10 MB JPEG's markers is not free.
        if self._free is None:
            await self.start()
        assert self._free is not None
        free = self._free
        lane = await free.get()
        try:
            future = lane.executor.submit(_decode, data, declared_type, self.image_limits)
            decoded = await asyncio.wait_for(asyncio.wrap_future(future), self.limits.timeout_s)
        except TimeoutError:
            log.warning("a photo took more than %.1f s to decode; its process was ended", self.limits.timeout_s)
            lane.replace()
            raise ImageError(*TOO_COMPLEX) from None
        except BrokenProcessPool:
            log.warning("a photo-decoding process died (memory limit or crash); it was replaced")
            lane.replace()
            raise ImageError(*TOO_COMPLEX) from None
        except MemoryError:
            raise ImageError(*TOO_COMPLEX) from None
        except asyncio.CancelledError:
            lane.replace()  # nobody waits for this photo any more: free the child at once
            raise
        finally:
            free.put_nowait(lane)
        return decoded.to_bgr()
