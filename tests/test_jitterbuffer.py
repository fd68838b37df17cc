"""The jitter buffer (server/rtc/jitterbuffer.py): a video frame leaves at its marked last packet."""

from __future__ import annotations

from types import SimpleNamespace

from aiortc.rtp import RtpPacket

from server.rtc import jitterbuffer
from server.rtc.jitterbuffer import MarkedFrameJitterBuffer


def packet(sequence_number: int, timestamp: int, marker: bool = False, padding: bool = False) -> RtpPacket:
    """A depayloaded video packet, as aiortc's receiver hands it to its buffer (`_data` its share of the frame;
    none for padding, which a browser sends to probe the bandwidth)."""
    result = RtpPacket(payload_type=96, marker=int(marker), sequence_number=sequence_number, timestamp=timestamp)
    result._data = b"" if padding else b"%d," % sequence_number  # type: ignore[attr-defined]
    return result


def frames_from(buffer, packets) -> list[tuple[int, int, bytes]]:
    """(index of the packet that completed it, timestamp, data) for each frame the buffer gave out."""
    out = []
    for index, each in enumerate(packets):
        _, frame = buffer.add(each)
        if frame is not None:
            out.append((index, frame.timestamp, frame.data))
    return out


def video_buffer() -> MarkedFrameJitterBuffer:
    return MarkedFrameJitterBuffer(capacity=512, is_video=True)


def test_a_frame_leaves_at_its_marked_last_packet_not_at_the_next_frames_first():
    stream = [packet(10, 3000), packet(11, 3000), packet(12, 3000, marker=True), packet(13, 6000), packet(14, 6000, marker=True)]
    assert frames_from(video_buffer(), stream) == [(2, 3000, b"10,11,12,"), (4, 6000, b"13,14,")]


def test_a_late_packet_completes_the_frame_when_it_arrives():
    stream = [packet(10, 3000), packet(12, 3000, marker=True), packet(11, 3000), packet(13, 6000, marker=True)]
    assert frames_from(video_buffer(), stream) == [(2, 3000, b"10,11,12,"), (3, 6000, b"13,")]


def test_a_lost_packet_holds_the_frame_back():
    stream = [packet(10, 3000), packet(12, 3000, marker=True), packet(13, 6000, marker=True)]
    assert frames_from(video_buffer(), stream) == []


def test_padding_after_a_frame_neither_holds_back_the_next_nor_becomes_a_frame():
    stream = [packet(10, 3000, marker=True), packet(11, 3000, padding=True), packet(12, 3000, padding=True),
              packet(13, 6000), packet(14, 6000, marker=True), packet(15, 9000, marker=True)]
    assert frames_from(video_buffer(), stream) == [(0, 3000, b"10,"), (4, 6000, b"13,14,"), (5, 9000, b"15,")]


def test_marked_padding_is_dropped_and_the_next_frame_still_leaves_at_its_marker():
    stream = [packet(10, 3000, marker=True), packet(11, 3000, marker=True, padding=True), packet(12, 6000), packet(13, 6000, marker=True)]
    assert frames_from(video_buffer(), stream) == [(0, 3000, b"10,"), (3, 6000, b"12,13,")]


def test_padding_alone_is_not_handed_to_the_decoder_without_markers():
    stream = [packet(10, 3000), packet(11, 6000, padding=True), packet(12, 9000), packet(13, 12000)]
    assert frames_from(video_buffer(), stream) == [(1, 3000, b"10,"), (3, 9000, b"12,")]


def test_without_markers_a_frame_completes_at_the_next_frames_first_packet_as_in_aiortc():
    stream = [packet(10, 3000), packet(11, 3000), packet(12, 6000), packet(13, 9000)]
    assert frames_from(video_buffer(), stream) == [(2, 3000, b"10,11,"), (3, 6000, b"12,")]


def test_audio_keeps_aiortcs_prefetch():
    buffer = MarkedFrameJitterBuffer(capacity=16, prefetch=4)
    stream = [packet(sequence, 160 * sequence, marker=True) for sequence in range(6)]
    assert [index for index, _, _ in frames_from(buffer, stream)] == [4, 5]


def test_installed_for_receivers_made_from_now_on(monkeypatch):
    from aiortc import rtcrtpreceiver
    from aiortc.jitterbuffer import JitterBuffer

    monkeypatch.setattr(rtcrtpreceiver, "JitterBuffer", JitterBuffer)
    assert jitterbuffer.install() and jitterbuffer.install()
    receiver_buffer = rtcrtpreceiver.RTCRtpReceiver("video", transport=SimpleNamespace(state="new"))._RTCRtpReceiver__jitter_buffer
    assert isinstance(receiver_buffer, MarkedFrameJitterBuffer)


def test_an_unexpected_aiortc_keeps_its_own_buffer(monkeypatch):
    from aiortc import rtcrtpreceiver

    class OtherBuffer:
        pass

    monkeypatch.setattr(rtcrtpreceiver, "JitterBuffer", OtherBuffer)
    assert not jitterbuffer.install()
    assert rtcrtpreceiver.JitterBuffer is OtherBuffer
