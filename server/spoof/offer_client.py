"""Which WebRTC stack wrote an offer, and which browser the User-Agent claims: a scripted client (aiortc,
pion, GStreamer, an ffmpeg WHIP muxer) that says it is Chrome writes its offer its own way.

Every browser's offer comes from one of two stacks: libwebrtc (Chrome, Edge, Opera, Samsung Internet,
Android WebViews and Safari, hence every browser on iOS) or Firefox's. Each writes a recognisable `o=`
line and offers transport-wide congestion control and trickle ICE, which the libraries scripted clients
are built on do not by default. An attacker who copies a browser's offer text by hand defeats this: it
is evidence against the lazy injection tool, not proof of a browser (docs/anti-spoofing.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class ClientFamily(StrEnum):
    LIBWEBRTC = "libwebrtc"  # Chromium's stack: Chrome, Edge, Safari, every iOS browser, WebViews
    FIREFOX = "firefox"
    AIORTC = "aiortc"  # the Python library (our own realname_tools/client.py)
    UNKNOWN = "unknown"  # none of the above: another library, or a hand-made offer


BROWSER_FAMILIES = frozenset({ClientFamily.LIBWEBRTC, ClientFamily.FIREFOX})

TRANSPORT_CC = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
# o=<username> <session id> <version> IN IP4 <address>: what each stack writes there.
LIBWEBRTC_ORIGIN = re.compile(r"^o=- \d{6,20} \d+ IN IP4 127\.0\.0\.1$")
FIREFOX_ORIGIN = re.compile(r"^o=mozilla\.\.\.THIS_IS_SDPARTA-[\d.]+ \d+ \d+ IN IP4 0\.0\.0\.0$")
AIORTC_ORIGIN = re.compile(r"^o=- (\d+) \1 IN IP4 0\.0\.0\.0$")  # session id and version one number


@dataclass(frozen=True)
class OfferTraits:
    """What an offer's text says about the software that wrote it."""

    origin: str  # the o= line's form: "libwebrtc", "firefox", "aiortc" or "other"
    video_extensions: frozenset[str]  # the video section's header extension URIs
    video_feedback: frozenset[str]  # RTCP feedback offered for the first video codec
    trickle: bool  # a=ice-options:trickle
    fingerprints: int  # DTLS fingerprint lines in the first section

    @property
    def family(self) -> ClientFamily:
        congestion = TRANSPORT_CC in self.video_extensions and "transport-cc" in self.video_feedback
        if self.origin == "libwebrtc" and congestion and self.trickle:
            return ClientFamily.LIBWEBRTC
        if self.origin == "firefox" and self.trickle:
            return ClientFamily.FIREFOX
        if self.origin == "aiortc":
            return ClientFamily.AIORTC
        return ClientFamily.UNKNOWN

    def to_dict(self) -> dict:
        return {
            "family": self.family.value,
            "origin": self.origin,
            "video_extensions": len(self.video_extensions),
            "transport_cc": TRANSPORT_CC in self.video_extensions,
            "feedback": sorted(self.video_feedback),
            "trickle": self.trickle,
            "fingerprints": self.fingerprints,
        }


def offer_traits(sdp: str) -> OfferTraits:
    lines = [line.strip() for line in sdp.splitlines()]
    origin_line = next((line for line in lines if line.startswith("o=")), "")
    origin = "other"
    for name, pattern in (("libwebrtc", LIBWEBRTC_ORIGIN), ("firefox", FIREFOX_ORIGIN), ("aiortc", AIORTC_ORIGIN)):
        if pattern.match(origin_line):
            origin = name
            break
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    video = next((s for s in sections[1:] if s[0].startswith("m=video")), [])
    extensions = frozenset(line.split()[1] for line in video if line.startswith("a=extmap:") and len(line.split()) > 1)
    first_codec = video[0].split()[3] if video and len(video[0].split()) > 3 else ""
    feedback = frozenset(line.split(" ", 1)[1] for line in video if line.startswith(f"a=rtcp-fb:{first_codec} ") and first_codec)
    first = sections[1] if len(sections) > 1 else []
    return OfferTraits(
        origin=origin,
        video_extensions=extensions,
        video_feedback=feedback,
        trickle=any(line.startswith("a=ice-options:") and "trickle" in line.split(":", 1)[1].split() for line in lines),
        fingerprints=sum(1 for line in first if line.startswith("a=fingerprint:")),
    )


def claimed_family(user_agent: str) -> ClientFamily | None:
    """The WebRTC stack of the browser a User-Agent names; None when it names no browser (a script's)."""
    if not user_agent.startswith("Mozilla/5.0 "):
        return None
    if re.search(r"\bFirefox/\d", user_agent) and "AppleWebKit/" not in user_agent:
        return ClientFamily.FIREFOX
    if "AppleWebKit/" in user_agent:  # Chromium's and Safari's engines (and every iOS browser) use libwebrtc
        return ClientFamily.LIBWEBRTC
    return None


def user_agent_summary(user_agent: str) -> str:
    """A short, non-identifying name of what the User-Agent claims, for a signal's detail."""
    claimed = claimed_family(user_agent)
    if claimed is None:
        return "not a browser" if user_agent else "none"
    found = re.search(r"\b(HeadlessChrome|Edg|OPR|SamsungBrowser|CriOS|FxiOS|Chrome|Firefox|Version)/(\d+)", user_agent)
    if found is None:
        return claimed.value
    name = "Safari" if found.group(1) == "Version" else found.group(1)
    return f"{name}/{found.group(2)}"
