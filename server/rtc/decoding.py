"""aiortc's decoder thread, handing each decoded frame to the event loop with one callback.

aiortc (pinned at 1.16.0) decodes each received track on a thread of its own and hands every decoded frame
back with `asyncio.run_coroutine_threadsafe(queue.put(frame), loop)`: per frame a coroutine and a
concurrent Future made on the decoder thread, then a Task, its first step and the two futures' chaining run
on the event loop, all holding the GIL that the RTP path and the analysis share. At 20 checks (400 frames
a second) that hand-off is where the frames wait (docs/benchmarks.md, "A ceiling from the receive lag").
The track's queue is unbounded, so `put_nowait` on the loop (one handle, `call_soon_threadsafe`) does
the same. The thread's decoding and its error handling are aiortc's, line for line.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import threading

log = logging.getLogger(__name__)

# aiortc's own function's parameters: if a release changes them, its thread is left as it is.
EXPECTED_PARAMETERS = ("loop", "input_q", "output_q", "decode_error")


def decoder_worker(loop: asyncio.AbstractEventLoop, input_q: queue.Queue, output_q: asyncio.Queue, decode_error: threading.Event) -> None:
    import av
    from aiortc.codecs import get_decoder
    from aiortc.rtcrtpreceiver import logger

    codec_name = None
    decoder = None
    while True:
        task = input_q.get()
        if task is None:
            loop.call_soon_threadsafe(output_q.put_nowait, None)  # the track has ended
            break
        codec, encoded_frame = task
        if codec.name != codec_name:
            decoder = get_decoder(codec)
            codec_name = codec.name
        try:
            frames = decoder.decode(encoded_frame)
        except av.FFmpegError as exc:
            # Keep the decoder state: resetting it would make every frame fail to decode until the next key frame.
            logger.warning("RTCRtpReceiver(%s) failed to decode %s frame: %s", codec.mimeType.split("/")[0], codec.name, exc)
            decode_error.set()
            continue
        for frame in frames:
            loop.call_soon_threadsafe(output_q.put_nowait, frame)
    if decoder is not None:
        del decoder


def install() -> bool:
    """Use this decoder thread for the receivers started from now on; False (aiortc's is kept) when aiortc's
    function is not the one this replaces."""
    from aiortc import rtcrtpreceiver

    current = rtcrtpreceiver.decoder_worker
    if current is decoder_worker:
        return True
    try:
        expected = tuple(inspect.signature(current).parameters) == EXPECTED_PARAMETERS and "run_coroutine_threadsafe" in inspect.getsource(current)
    except (OSError, TypeError, ValueError):  # no source to read (a frozen or compiled install)
        expected = False
    if not expected:
        log.warning("aiortc's decoder thread is not the one expected; its frame hand-off is kept")
        return False
    rtcrtpreceiver.decoder_worker = decoder_worker
    return True
