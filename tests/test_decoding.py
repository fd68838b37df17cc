"""The decoder thread (server/rtc/decoding.py): real VP8 frames decoded on their thread, handed to the loop."""

from __future__ import annotations

import asyncio
import queue
import threading
from fractions import Fraction

import numpy as np

from server.rtc import decoding


def encoded_frames(count: int):
    """`count` VP8 frames of a moving picture, as aiortc's jitter buffer hands them to the decoder thread."""
    import av
    from aiortc.codecs import get_encoder
    from aiortc.codecs.vpx import vp8_depayload
    from aiortc.jitterbuffer import JitterFrame
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    encoder = get_encoder(codec)
    frames = []
    for index in range(count):
        picture = np.full((120, 160, 3), 40 + 10 * index, dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = index * 3000, Fraction(1, 90000)
        payloads, timestamp = encoder.encode(frame, force_keyframe=index == 0)
        frames.append((codec, JitterFrame(data=b"".join(vp8_depayload(p) for p in payloads), timestamp=timestamp)))
    return frames


async def decode_on_thread(tasks) -> tuple[list, bool]:
    """Run the worker on its thread over `tasks`, then the end; what reached the loop's queue, and the error flag."""
    loop = asyncio.get_running_loop()
    input_q: queue.Queue = queue.Queue()
    output_q: asyncio.Queue = asyncio.Queue()
    error = threading.Event()
    thread = threading.Thread(target=decoding.decoder_worker, args=(loop, input_q, output_q, error))
    thread.start()
    for task in tasks:
        input_q.put(task)
    input_q.put(None)
    received = []
    while (frame := await asyncio.wait_for(output_q.get(), 60)) is not None:
        received.append(frame)
    thread.join(60)
    return received, error.is_set()


def test_every_frame_reaches_the_loop_in_order_then_the_end():
    tasks = encoded_frames(6)
    received, failed = asyncio.run(decode_on_thread(tasks))
    assert not failed
    assert len(received) == 6 and all(f.width == 160 and f.height == 120 for f in received)
    brightness = [float(f.to_ndarray(format="gray").mean()) for f in received]
    assert brightness == sorted(brightness)  # the pictures grow brighter frame by frame: in order


def test_a_frame_that_does_not_decode_is_flagged_and_the_stream_goes_on():
    from aiortc.jitterbuffer import JitterFrame

    tasks = encoded_frames(4)
    codec, _ = tasks[0]
    garbage = (codec, JitterFrame(data=b"\x00\x01\x02" * 10, timestamp=1))
    received, failed = asyncio.run(decode_on_thread([tasks[0], garbage, *tasks[1:]]))
    assert failed
    assert len(received) >= 3  # the frames after the bad one still decode


def test_installed_for_receivers_started_from_now_on():
    from aiortc import rtcrtpreceiver

    assert decoding.install() is True
    assert rtcrtpreceiver.decoder_worker is decoding.decoder_worker
    assert decoding.install() is True  # twice is once


def test_an_unexpected_aiortc_keeps_its_own_thread(monkeypatch):
    from aiortc import rtcrtpreceiver

    source = "def decoder_worker(loop, input_q, output_q):\n    pass\n"  # a release whose function differs
    namespace: dict = {}
    exec(compile(source, "<aiortc of another release>", "exec"), namespace)
    monkeypatch.setattr(rtcrtpreceiver, "decoder_worker", namespace["decoder_worker"])
    assert decoding.install() is False
    assert rtcrtpreceiver.decoder_worker is namespace["decoder_worker"]



def test_an_aiortc_whose_source_cannot_be_read_keeps_its_own_thread(monkeypatch):
    from aiortc import rtcrtpreceiver

    source = "def decoder_worker(loop, input_q, output_q, decode_error):\n    pass\n"  # the expected parameters
    namespace: dict = {}
    exec(compile(source, "<no file to read>", "exec"), namespace)  # inspect.getsource raises OSError for it
    monkeypatch.setattr(rtcrtpreceiver, "decoder_worker", namespace["decoder_worker"])
    assert decoding.install() is False
    assert rtcrtpreceiver.decoder_worker is namespace["decoder_worker"]
