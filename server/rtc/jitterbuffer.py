"""aiortc's jitter buffer, completing a video frame at its last packet instead of at the next frame's first.

aiortc (pinned at 1.16.0) knows a frame is whole only when a packet of the next frame arrives, so every
decoded frame waits one frame interval in the buffer: 50 ms at 20 frames a second, 100 ms at 10. That wait
is on the path of every prompt's answer, and it changes with the rate the page sends: the receive lag the
admission reads (server/flow/admission.py) rose by 50 ms in the steps sent at 10 and held the room below
what the CPU carried. The sender marks a frame's last packet (the RTP marker bit, RFC 3550 5.1; RFC 7741
5.1 for VP8); a run of packets from the buffer's origin, without a gap, of one timestamp and ending with the
marker, is the whole frame. Without a marker (or with a gap before it) aiortc's rule decides, as before.
"""

from __future__ import annotations

import logging

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

log = logging.getLogger(__name__)


class MarkedFrameJitterBuffer(JitterBuffer):
    """Video (no prefetch): a frame leaves the buffer as soon as its marked last packet closes it."""

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        if self._is_video and self._prefetch == 0 and self._origin is not None:
            packets: list[RtpPacket] = []
            for count in range(self._capacity):
                packet = self._packets[(self._origin + count) % self._capacity]
                if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                    break
                if not packets and not packet._data:  # type: ignore[attr-defined]
                    if packet.marker:  # marked padding: nothing to decode, and the frame before it is gone
                        self.remove(count + 1)
                        return None
                    continue  # padding (no picture data) sent after the frame it carries the timestamp of
                packets.append(packet)
                if packet.marker:
                    self.remove(count + 1)
                    return JitterFrame(data=b"".join(p._data for p in packets), timestamp=packet.timestamp)  # type: ignore[attr-defined]
        frame = super()._remove_frame(sequence_number)
        return frame if frame is None or frame.data else None  # padding alone is no frame to decode


def install() -> bool:
    """Use this buffer for the receivers made from now on; False (aiortc's is kept) when aiortc's receiver
    does not build its buffers from the class this extends."""
    from aiortc import rtcrtpreceiver

    current = getattr(rtcrtpreceiver, "JitterBuffer", None)
    if current is MarkedFrameJitterBuffer:
        return True
    if current is not JitterBuffer or not hasattr(JitterBuffer, "_remove_frame"):
        log.warning("aiortc's jitter buffer is not the one expected; frames complete at the next frame's first packet")
        return False
    rtcrtpreceiver.JitterBuffer = MarkedFrameJitterBuffer
    return True
