"""A scripted customer: walks the hosted pages over HTTP and streams a video file over WebRTC like a phone.

Used by the test suite and by `python -m server bench`; not by the service itself.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import Packet, VideoFrame
from av.video.frame import PictureType

VIDEO_CLOCK = 90000
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def load_clip(path: str | Path, max_side: int = 640, max_seconds: float = 30.0) -> tuple[list[Any], float]:
    """Decode a clip once into frames no larger than a phone camera's, to be shared by many senders."""
    import av

    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 30)
        for frame in container.decode(stream):
            scale = min(1.0, max_side / max(frame.width, frame.height))
            width, height = int(frame.width * scale) // 2 * 2, int(frame.height * scale) // 2 * 2
            frames.append(frame.reformat(width=width, height=height, format="yuv420p"))
            if len(frames) >= fps * max_seconds:
                break
    if not frames:
        raise ValueError(f"{path} has no video frames")
    return frames, fps


def vp8_encoder(width: int, height: int, bitrate: int) -> Any:
    """A VP8 encoder with aiortc's real-time settings at a fixed bitrate (a browser's, roughly)."""
    import av

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height = width, height
    codec.pix_fmt = "yuv420p"
    codec.bit_rate = bitrate
    codec.time_base = fractions.Fraction(1, VIDEO_CLOCK)
    codec.gop_size = 1 << 30
    codec.qmin, codec.qmax = 2, 56
    codec.options = {
        "bufsize": str(bitrate), "cpu-used": "-6", "deadline": "realtime", "lag-in-frames": "0",
        "minrate": str(bitrate), "maxrate": str(bitrate), "noise-sensitivity": "4", "overshoot-pct": "15",
        "partitions": "0", "static-thresh": "1", "undershoot-pct": "100", "drop-threshold": "0",
    }
    return codec


def encode_clip(frames: list[Any], fps: float, bitrate: int = 1_000_000, sent: list[int] | None = None, key_every: int = 0) -> list[bytes]:
    """VP8-encode decoded frames once, with aiortc's real-time encoder settings at a fixed bitrate.

    Many ClipTracks can then replay the same packets, so a load test's senders do not each spend a VP8
    encoder's CPU on every frame. Only the first frame is a key frame; a track starts and loops there.
    `sent`: only these frames (indices, each keeping its own time), as a browser asked for fewer frames
    sends them; `key_every`: a key frame also on every frame whose index is a multiple of it.
    """
    codec = vp8_encoder(frames[0].width, frames[0].height, bitrate)
    indices = range(len(frames)) if sent is None else sent
    packets: list[bytes] = []
    for index in indices:
        frame = VideoFrame.from_numpy_buffer(frames[index].reformat(format="yuv420p").to_ndarray(), format="yuv420p")
        frame.pts, frame.time_base = int(index * VIDEO_CLOCK / fps), codec.time_base
        if key_every and index % key_every == 0:
            frame.pict_type = PictureType.I
        packets.extend(bytes(packet) for packet in codec.encode(frame))
    packets.extend(bytes(packet) for packet in codec.encode(None))
    if len(packets) != len(indices):
        raise ValueError(f"the encoder gave {len(packets)} packets for {len(indices)} frames")
    return packets


def sent_at(index: int, fps: float, rate: float) -> bool:
    """Whether a browser asked for at most `rate` frames a second sends frame `index` of a camera giving
    `fps`: Chromium keeps to the rate on average (at 12 of 20, 3 frames of every 5; measured in
    e2e/test_browser.py), so the frames kept are those where the count at `rate` ticks over."""
    return rate >= fps or index == 0 or int(index * rate / fps) > int((index - 1) * rate / fps)


# Key frames every this many frames in a clip encoded for several rates (`encode_rates`): where a sender
# may change from one rate's packets to another's (each decodes from its own previous frames).
RATE_KEY_EVERY_S = 2.0


def encode_rates(frames: list[Any], fps: float, rates: set[float], bitrate: int = 1_000_000) -> tuple[dict[float, list[bytes]], int]:
    """The clip encoded once for each rate a sender may be asked for (ClipTrack.ask), with key frames at
    the same frames in each, every RATE_KEY_EVERY_S: the packets by rate, and that key-frame spacing."""
    key_every = max(1, round(RATE_KEY_EVERY_S * fps))
    encoded = {}
    for rate in sorted({min(r, fps) for r in rates} | {fps}):
        kept = [i for i in range(len(frames)) if sent_at(i, fps, rate)]
        encoded[rate] = encode_clip(frames, fps, bitrate, kept, key_every)
    return encoded, key_every


class Vp8Link:
    """Frames as the server receives them from the live page sending VP8 at `bitrate`: each frame scaled
    as the page sends it (to the analysis size), encoded, then decoded. Offline tools replay clips through
    it to see what the compression changes."""

    def __init__(self, bitrate: int) -> None:
        self.bitrate = bitrate
        self._encoder = None
        self._decoder = None

    def received(self, frame: Any, t: float) -> Any | None:
        """The decoded frame for a video frame at time t (seconds), or None while the codec holds it."""
        import av

        from server.liveness.analyzer import analysis_size

        width, height = analysis_size(frame.width, frame.height)
        if self._encoder is None:
            self._encoder = vp8_encoder(width, height, self.bitrate)
            self._decoder = av.CodecContext.create("libvpx", "r")
        sent = VideoFrame.from_numpy_buffer(frame.reformat(width=width, height=height, format="yuv420p").to_ndarray(), format="yuv420p")
        sent.pts, sent.time_base = int(t * VIDEO_CLOCK), self._encoder.time_base
        decoded = []
        for packet in self._encoder.encode(sent):
            decoded.extend(self._decoder.decode(av.Packet(bytes(packet))))
        return decoded[-1] if decoded else None


class ClipTrack(MediaStreamTrack):
    """Sends decoded frames at their native rate, looping, as a live camera would.

    With `packets` (from encode_clip) it sends those already-encoded VP8 frames instead, at the same rate:
    what the peer receives is the same kind of stream, without an encoder per sender. With `rates` (from
    encode_rates: packets by rate, and their key-frame spacing) it follows the rate the server asks for
    (`ask`, the live page's `rate` message), as the page's sender does: from the next key frame.
    """

    kind = "video"

    def __init__(
        self, frames: list[Any], fps: float, loop: bool = True, packets: list[bytes] | None = None,
        rates: tuple[dict[float, list[bytes]], int] | None = None,
    ) -> None:
        super().__init__()
        self.frames, self.fps, self.loop = frames, fps, loop
        self.packets = packets if rates is None else rates[0][max(rates[0])]
        self.rates = rates
        self.codec = "video/VP8" if self.packets is not None else None  # what the sender must negotiate
        self.sent = 0  # frames of the camera's clock gone by, sent or not
        self.late_ms: deque = deque(maxlen=10000)  # how far behind its due time each frame left (a busy sender)
        self._start: float | None = None
        self.asked = fps  # frames a second the server asked for
        self._rate = fps  # the rate whose packets are being sent
        self._positions: dict[float, dict[int, int]] = {}  # rate -> clip frame -> its packet

    def ask(self, fps: float) -> None:
        """Send at most `fps` frames a second from now on (the page's `maxFramerate`)."""
        self.asked = min(float(fps), self.fps) if fps and fps > 0 else self.fps

    def _next_index(self) -> int:
        """The clip frame to send next, frames the asked rate leaves out skipped."""
        count = len(self.packets if self.packets is not None else self.frames)
        while True:
            index = self.sent % count
            if self.asked != self._rate:
                if self.rates is None:
                    self._rate = self.asked
                elif index % self.rates[1] == 0:  # a key frame in every rate's packets
                    self._rate = max((r for r in self.rates[0] if r <= self.asked), default=min(self.rates[0]))
            if sent_at(index, self.fps, self._rate):
                return index
            self.sent += 1

    async def recv(self):
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        if not self.loop and self.sent >= len(self.packets if self.packets is not None else self.frames):
            self.stop()
            raise MediaStreamError
        index = self._next_index()
        if not self.loop and self.sent >= len(self.packets if self.packets is not None else self.frames):
            self.stop()
            raise MediaStreamError
        due = self._start + self.sent / self.fps
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.late_ms.append(max(0.0, (time.monotonic() - due) * 1000))
        if self.packets is not None:
            if self.rates is not None:
                positions = self._positions.setdefault(self._rate, {})
                if not positions:
                    positions.update((i, p) for p, i in enumerate(i for i in range(len(self.packets)) if sent_at(i, self.fps, self._rate)))
                packet = Packet(self.rates[0][self._rate][positions[index]])
            else:
                packet = Packet(self.packets[index])
            packet.pts = int(self.sent * VIDEO_CLOCK / self.fps)
            packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
            self.sent += 1
            return packet
        source = self.frames[index]
        # A copy, since pts is per send and many tracks share the frames (reformat to the same format
        # returns the very same frame object).
        frame = VideoFrame.from_numpy_buffer(source.reformat(format="yuv420p").to_ndarray(), format="yuv420p")
        frame.pts = int(self.sent * VIDEO_CLOCK / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.sent += 1
        return frame


class HeldTrack(ClipTrack):
    """Shows the clip's first frame (a neutral face) until released, then plays the clip."""

    def __init__(self, frames, fps) -> None:
        super().__init__(frames, fps)
        self.clip = frames
        self.released = asyncio.Event()
        self.frames = _Held(frames, self.released)


class _Held:
    def __init__(self, frames, released: asyncio.Event) -> None:
        self.clip, self.released, self.offset = frames, released, 0

    def __len__(self) -> int:
        return 1 << 30

    def __getitem__(self, index: int):
        if not self.released.is_set():
            self.offset = index + 1
            return self.clip[0]
        return self.clip[(index - self.offset) % len(self.clip)]


@dataclass
class LiveRun:
    messages: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    offer_error: dict[str, Any] | None = None
    answer_sdp: str = ""
    started_at: float = field(default_factory=time.monotonic)
    done: asyncio.Event = field(default_factory=asyncio.Event)  # set by the result or a refused offer


class HostedFlowClient:
    def __init__(self, http: aiohttp.ClientSession, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.pc: RTCPeerConnection | None = None
        self.channel = None
        self.live_config: dict[str, Any] = {}  # the live page's, once it was opened

    async def _csrf(self, path: str) -> str:
        async with self.http.get(self.base_url + path) as response:
            html = await response.text()
        found = CSRF.search(html)
        if not found:
            raise RuntimeError(f"no CSRF token on {path} (status {response.status})")
        return found.group(1)

    async def open(self, link: str) -> int:
        """Open the link (its start page) and start, as the customer's tap does: the status of that POST."""
        async with self.http.get(link, allow_redirects=False) as response:
            if response.status != 200:
                return response.status
        async with self.http.post(link, allow_redirects=False) as response:
            return response.status

    async def consent(self, gallery: bool = False) -> int:
        """`gallery`: tick the face gallery's separate box too (shown when the merchant turned it on)."""
        token = await self._csrf("/verify/consent")
        data = {"csrf_token": token, "agree": "yes", **({"gallery": "yes"} if gallery else {})}
        async with self.http.post(self.base_url + "/verify/consent", data=data, allow_redirects=False) as response:
            return response.status

    async def upload_document(self, photo: bytes, content_type: str = "image/jpeg") -> tuple[int, str]:
        token = await self._csrf("/verify/document")
        form = aiohttp.FormData()
        form.add_field("csrf_token", token)
        form.add_field("photo", photo, filename="id.jpg", content_type=content_type)
        async with self.http.post(self.base_url + "/verify/document", data=form, allow_redirects=False) as response:
            return response.status, await response.text()

    async def live_page(self) -> tuple[dict[str, Any] | None, int, str]:
        """The live page's config (None when the server sent us elsewhere), its status and where it landed."""
        async with self.http.get(self.base_url + "/verify/live") as response:
            page = await response.text()
            landed = response.url.path
        found = re.search(r'<script type="application/json" id="live-config">(.*?)</script>', page, re.S)
        if found is None:
            return None, response.status, landed
        self.live_config = json.loads(found.group(1))
        return self.live_config, response.status, landed

    async def start_live(
        self, track: MediaStreamTrack, camera_label: str = "Integrated Camera", run: LiveRun | None = None, rewrite_offer: Any = None
    ) -> LiveRun:
        """Offer the track; messages from the server accumulate in the returned LiveRun. `rewrite_offer`
        (SDP text -> SDP text) edits the offer before it is sent, as an attacker disguising the client would."""
        run = run or LiveRun()
        config, status, landed = await self.live_page()
        if config is None:  # the session is past the live step; the server sent us elsewhere
            run.offer_error = {"status": status, "code": "no_live_step", "page": landed}
            run.done.set()
            return run
        pc = self.pc = RTCPeerConnection()
        transceiver = pc.addTransceiver(track, direction="sendonly")
        wanted = getattr(track, "codec", None)  # a track of pre-encoded packets can only send their codec
        if wanted:
            transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == wanted])
        channel = self.channel = pc.createDataChannel("control")
        done = run.done

        @channel.on("message")
        def on_message(message: str) -> None:
            data = json.loads(message)
            run.messages.append({**data, "received_at": time.monotonic()})
            if data.get("type") == "rate" and hasattr(track, "ask"):  # as the page's sender does
                track.ask(data.get("fps"))
            if hasattr(track, "heard"):  # a track that answers the prompts (reactive_splices.ReactiveTrack)
                track.heard(data)
            if data.get("type") == "result":
                run.result = data
                done.set()

        await pc.setLocalDescription(await pc.createOffer())
        sdp = rewrite_offer(pc.localDescription.sdp) if rewrite_offer else pc.localDescription.sdp
        body = {"sdp": sdp, "type": "offer", "camera_label": camera_label}
        async with self.http.post(
            self.base_url + config["offerUrl"], json=body, headers={config["csrfHeader"]: config["csrf"]}
        ) as response:
            answer = await response.json()
            if response.status != 200:
                run.offer_error = {"status": response.status, **answer.get("error", {})}
                await self.close()
                done.set()
                return run
        run.answer_sdp = answer["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        self._csrf_token = config["csrf"]
        return run

    async def wait_result(self, run: LiveRun, timeout: float) -> dict[str, Any] | None:
        try:
            await asyncio.wait_for(run.done.wait(), timeout)
        except TimeoutError:
            return None
        return run.result

    async def bye(self) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(json.dumps({"type": "bye"}))

    async def leave(self, csrf: str | None = None) -> int:
        """What the live page's beacon sends when it is closed: its check, or its place in line, is given up."""
        config = self.live_config
        form = {config["csrfField"]: config["csrf"] if csrf is None else csrf}
        async with self.http.post(self.base_url + config["byeUrl"], data=form) as response:
            return response.status

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None
