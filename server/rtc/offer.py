"""Checking a customer's WebRTC offer before anything is built for it.

The offer is parsed and refused unless it has what a live check needs (a video section with codecs, ICE
credentials, a DTLS fingerprint). Its ICE candidates are the addresses the server will send STUN checks
to, so only a few are kept, and never loopback, private, link-local or other special addresses (unless
the operator allows them, e.g. for tests on one host): an offer must not turn the server into a port
scanner of its own network.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from ..errors import RealnameError

MAX_OFFER_BYTES = 100_000
MAX_CANDIDATES = 8  # per media section; a browser offers a handful
VIDEO_CODECS = {"vp8", "h264", "vp9"}
CANDIDATE_TYPES = {"host", "srflx", "prflx", "relay"}
MAX_SECTIONS = 3  # video, a data channel, perhaps audio
MAX_ICE_CREDENTIAL = 256  # RFC 8839: ufrag and password are at most 256 characters


class OfferError(RealnameError):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__("bad_offer", message)


@dataclass(frozen=True)
class CandidatePolicy:
    allow_loopback: bool = False
    allow_private: bool = False

    def allows(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            # A name: only the browser's mDNS names (random UUIDs under .local) are expected.
            return host.endswith(".local") and len(host) <= 64
        if address.is_loopback:
            return self.allow_loopback
        if address.version == 6 and address.ipv4_mapped is not None:
            return self.allows(str(address.ipv4_mapped))
        if address.is_private and not (address.is_link_local or address.is_unspecified or address.is_reserved):
            return self.allow_private
        return address.is_global and not address.is_multicast


def check_offer(sdp: object, kind: object, policy: CandidatePolicy) -> str:
    """The offer's SDP with only acceptable candidates, or OfferError saying what is wrong."""
    from aiortc.sdp import SessionDescription

    if kind != "offer" or not isinstance(sdp, str) or not sdp.strip():
        raise OfferError("expected an SDP offer")
    if len(sdp) > MAX_OFFER_BYTES:
        raise OfferError("the offer is too large")
    try:
        sdp.encode("ascii")
    except UnicodeEncodeError:
        raise OfferError("the offer is not plain text") from None
    filtered = _filter_candidates(sdp, policy)
    try:
        parsed = SessionDescription.parse(filtered)
    except Exception:  # aiortc's parser raises whatever a malformed line makes it raise
        raise OfferError("the offer could not be parsed") from None
    video = [m for m in parsed.media if m.kind == "video"]
    if not video:
        raise OfferError("the offer has no video")
    # The page sends one camera and one data channel; aiortc fails on some repeated sections (two videos).
    kinds = [m.kind for m in parsed.media]
    if len(kinds) > MAX_SECTIONS or any(kinds.count(kind) > 1 for kind in kinds):
        raise OfferError("the offer has more media sections than a live check uses")
    for media in parsed.media:
        if media.dtls is None or not media.dtls.fingerprints:
            raise OfferError("the offer has no DTLS fingerprint")
        if media.ice is None or not media.ice.usernameFragment or not media.ice.password:
            raise OfferError("the offer has no ICE credentials")
        if len(media.ice.usernameFragment) > MAX_ICE_CREDENTIAL or len(media.ice.password) > MAX_ICE_CREDENTIAL:
            raise OfferError("the offer's ICE credentials are too long")
    if not any(codec.name.lower() in VIDEO_CODECS for media in video for codec in media.rtp.codecs):
        raise OfferError("the offer has no video codec the server can decode")
    return filtered


def _filter_candidates(sdp: str, policy: CandidatePolicy) -> str:
    lines, kept_in_section = [], 0
    for line in sdp.splitlines():
        if line.startswith("m="):
            kept_in_section = 0
        if line.startswith("a=candidate:"):
            if kept_in_section >= MAX_CANDIDATES or not _usable(line.split(), policy):
                continue
            kept_in_section += 1
        lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _usable(fields: list[str], policy: CandidatePolicy) -> bool:
    """`a=candidate:F COMPONENT udp PRIORITY ADDRESS PORT typ TYPE ...`, with an address the policy allows.

    A port outside 1-65535 makes the ICE agent's sendto fail in the event loop, so it is checked here.
    """
    if len(fields) < 8 or fields[2].lower() != "udp" or fields[6] != "typ" or fields[7] not in CANDIDATE_TYPES:
        return False
    if not (fields[1].isdigit() and fields[3].isdigit() and fields[5].isdigit() and 0 < int(fields[5]) < 65536):
        return False
    return policy.allows(fields[4])
