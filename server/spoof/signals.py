"""Structured risk signals of one live check, from what the server itself sees of the stream.

Pure functions of plain numbers (times, sizes, counts, labels), so they are tested on synthetic input and
computed the same way in the live flow and the replay tool. Each signal is a hint with a level and the
action it asks for; only the PAD verdict and a virtual-camera label ask for more than a record.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import median, pstdev
from typing import Any

import numpy as np

from ..liveness.thresholds import REACTION_FLOOR_S
from .continuity import CutLimits, Step, cuts
from .offer_client import BROWSER_FAMILIES, claimed_family, offer_traits, user_agent_summary
from .pad import PadResult, PadThresholds, PadVerdict
from .texture_rigidity import CLEAR_TURN_DEG, RIGID_BELOW, Rigidity

# Camera labels that name a virtual camera or an injection tool (Chromium's own fake camera is "fake_device_0").
VIRTUAL_CAMERA = re.compile(r"\bobs\b|manycam|v4l2loopback|virtual|snap camera|xsplit|vcam|droidcam|fake", re.IGNORECASE)


class SignalCode(StrEnum):
    PAD_ATTACK = "pad_attack"  # the passive model says presented (screen, print)
    PAD_UNCERTAIN = "pad_uncertain"  # a PAD score in the grey band
    PAD_PASSED = "pad_passed"
    PAD_UNSCORED = "pad_unscored"  # no usable frame for the passive model
    PAD_UNAVAILABLE = "pad_unavailable"  # no passive model configured
    VIRTUAL_CAMERA = "virtual_camera"  # the track label names a virtual camera
    UNLABELLED_CAMERA = "unlabelled_camera"
    TIMING_TOO_REGULAR = "timing_too_regular"  # capture timestamps with no jitter at all: a synthetic source
    TIMING_IRREGULAR = "timing_irregular"  # large inter-arrival jitter
    REPEATED_FRAMES = "repeated_frames"  # exact copies of the previous analysed frame
    RESOLUTION_CHANGED = "resolution_changed"
    FRAME_RATE_CHANGED = "frame_rate_changed"
    SETTINGS_MISMATCH = "settings_mismatch"  # what the browser declared is not what arrives
    REACTION_TOO_FAST = "reaction_too_fast"  # the movement began before a person could have seen the prompt
    REACTION_SLOW = "reaction_slow"
    CLIENT_NOT_BROWSER = "client_not_browser"  # the offer was not written by the browser the User-Agent names
    REFERENCE_REPLAY = "reference_replay"  # the live face is the ID portrait itself, re-animated
    STREAM_DISCONTINUITY = "stream_discontinuity"  # cuts in the stream while challenges ran: spliced footage
    REPLAYED_CHECK = "replayed_check"  # the face moves as in an earlier check of the merchant: its footage replayed
    RIGID_TEXTURE = "rigid_texture"  # the face turned and its texture moved rigidly with it: a still photo warped
    # The merchant's face gallery (1:N, server/gallery/checks.py), at decision time.
    DUPLICATE_FACE = "duplicate_face"  # the same face enrolled under another document number or reference
    DOCUMENT_REUSED = "document_reused"  # the same document number enrolled with another face
    DOCUMENT_CAP = "document_cap"  # the merchant's cap of approved sessions per document number is reached
    BLOCKLISTED_FACE = "blocklisted_face"  # the face matches one on the merchant's blocklist


class Level(StrEnum):
    LOW = "low"
    ELEVATED = "elevated"
    HIGH = "high"


class Action(StrEnum):
    NONE = "none"  # recorded only
    REVIEW = "review"  # a person should look before approval
    FAIL = "fail"  # the check fails


@dataclass(frozen=True)
class RiskSignal:
    code: SignalCode
    level: Level
    detail: dict[str, Any] = field(default_factory=dict)
    action: Action = Action.NONE

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code.value, "level": self.level.value, "detail": self.detail, "action": self.action.value}


@dataclass(frozen=True)
class SignalLimits:
    """Where a measurement becomes a signal. Human reactions take roughly 0.2-1.5 s; on the server's clock
    a prompt also needs a round trip to reach the page and the movement a frame to come back."""

    min_frames: int = 30  # timing statistics need this many frames
    regular_cv: float = 0.002  # capture-interval spread below this fraction of the interval: synthetic
    jitter_ms: float = 60.0  # RFC 3550 inter-arrival jitter above this: an unstable path (hint only)
    repeated_fraction: float = 0.05  # of consecutive analysed frame pairs
    repeated_high_fraction: float = 0.25
    frame_rate_ratio: float = 1.6  # between the slowest and fastest 2-second window
    declared_tolerance: float = 0.25  # delivered vs declared size or rate
    reaction_fast_s: float = REACTION_FLOOR_S
    reaction_slow_s: float = 4.0


FINGERPRINT_ROW_STEP = 8


def frame_fingerprint(image: np.ndarray) -> bytes:
    """A cheap exact-repeat fingerprint of an analysed frame (RGB or grey): the CRC-32 of every eighth row.

    Whole rows, not averages, so sensor noise still tells two real frames apart; rows, not a grid of
    pixels, because a row is one contiguous copy (a strided pixel grid cost 0.1 ms a frame more, see
    docs/benchmarks.md). Computed in the analysis worker, never on the event loop.
    """
    return zlib.crc32(np.ascontiguousarray(image[::FINGERPRINT_ROW_STEP])).to_bytes(4, "big")


# -- individual signals -----------------------------------------------------------------------------------


def pad_signal(result: PadResult, thresholds: PadThresholds | None = None) -> RiskSignal:
    detail: dict[str, Any] = {"score": None if result.score is None else round(result.score, 4), "frames": result.frames_scored}
    if result.deformation is not None:
        detail["deformation"] = round(result.deformation, 4)  # below flat_below: the face moved as one plane
    if result.face_luma is not None:
        detail["face_luma"] = round(result.face_luma, 1)
    if result.face_noise is not None:
        detail["face_noise"] = round(result.face_noise, 2)  # above noisy_above: never rejected on the score alone
    if result.face_detail is not None:
        detail["face_detail"] = round(result.face_detail, 2)  # below detail_below: at best review
    if result.check_noise is not None:
        detail["check_noise"] = round(result.check_noise, 2)  # above noisy_above: dimmed once the challenges started, at best review
    if thresholds is not None:
        detail["thresholds"] = {"attack": thresholds.attack, "review": thresholds.review, "flat_below": thresholds.flat_below,
                                "noisy_above": thresholds.noisy_above, "noisy_review": thresholds.noisy_review,
                                "detail_below": thresholds.detail_below}
    verdict = result.verdict
    if verdict == PadVerdict.ATTACK:
        return RiskSignal(SignalCode.PAD_ATTACK, Level.HIGH, detail, Action.FAIL)
    if verdict == PadVerdict.REVIEW:
        return RiskSignal(SignalCode.PAD_UNCERTAIN, Level.ELEVATED, detail, Action.REVIEW)
    if verdict == PadVerdict.UNSCORED:
        return RiskSignal(SignalCode.PAD_UNSCORED, Level.ELEVATED, detail, Action.REVIEW)
    if verdict == PadVerdict.UNAVAILABLE:
        # Asks for a person on live keys unless the operator opted out (APPROVE_WITHOUT_ANTI_SPOOFING).
        return RiskSignal(SignalCode.PAD_UNAVAILABLE, Level.ELEVATED, {"message": "passive anti-spoofing is not configured"}, Action.REVIEW)
    return RiskSignal(SignalCode.PAD_PASSED, Level.LOW, detail)


def camera_label_signal(label: str | None) -> RiskSignal | None:
    """The track label is chosen by the browser or the driver: a hint, never proof either way."""
    if not label:
        return RiskSignal(SignalCode.UNLABELLED_CAMERA, Level.LOW)
    if VIRTUAL_CAMERA.search(label):
        return RiskSignal(SignalCode.VIRTUAL_CAMERA, Level.HIGH, {"label": label[:80]}, Action.FAIL)
    return None


def timing_signals(
    capture_s: list[float], arrival_s: list[float] | None = None, limits: SignalLimits = SignalLimits(), asked: list[float | None] | None = None
) -> list[RiskSignal]:
    """From each frame's own (RTP/presentation) timestamp and, live, its arrival time on the server.

    A camera's capture clock wobbles by a fraction of a millisecond or more; frames generated by software
    at a fixed rate do not. Large arrival jitter only says the path is unstable. `asked`: the rate the page
    was asked to send at when each frame arrived (rate_stretches): each stretch's intervals are measured
    against its own, so a source that follows the asked rates exactly is as regular as one that never changes.
    """
    out: list[RiskSignal] = []
    if len(capture_s) < limits.min_frames:
        return out
    intervals, relative = [], []
    for start, end in rate_stretches(asked, len(capture_s)):
        stretch = [b - a for a, b in zip(capture_s[start:end], capture_s[start + 1 : end], strict=False) if b > a]
        if stretch:
            usual = median(stretch)
            intervals += stretch
            relative += [i / usual for i in stretch]
    if len(intervals) >= limits.min_frames - 1:
        mean = sum(intervals) / len(intervals)
        cv = pstdev(relative) / (sum(relative) / len(relative))
        if cv < limits.regular_cv:
            out.append(RiskSignal(SignalCode.TIMING_TOO_REGULAR, Level.ELEVATED, {"interval_cv": round(cv, 5), "interval_ms": round(mean * 1000, 2)}, Action.REVIEW))
    if arrival_s is not None and len(arrival_s) == len(capture_s):
        jitter = interarrival_jitter(capture_s, arrival_s)
        if jitter * 1000 > limits.jitter_ms:
            out.append(RiskSignal(SignalCode.TIMING_IRREGULAR, Level.LOW, {"jitter_ms": round(jitter * 1000, 1)}))
    return out


# Frames after a rate was asked for that may still come at the rate before: the message's way to the page
# and its encoder's next frame (a few tens of ms on a local network; up to 0.25 s at 20 fps).
SETTLE_FRAMES = 5


def rate_stretches(asked: list[float | None] | None, count: int) -> list[tuple[int, int]]:
    """[start, end) index ranges of the frames received while one rate was asked for, each but the first
    less its first SETTLE_FRAMES (the page was still reaching the rate). No `asked`: one stretch."""
    if not asked or len(asked) != count:
        return [(0, count)]
    out, start = [], 0
    for index in range(1, count + 1):
        if index == count or asked[index] != asked[start]:
            begin = start if start == 0 else min(index, start + SETTLE_FRAMES)
            if index - begin >= 2:
                out.append((begin, index))
            start = index
    return out


def interarrival_jitter(capture_s: list[float], arrival_s: list[float]) -> float:
    """RFC 3550 interarrival jitter, in seconds."""
    jitter = 0.0
    for i in range(1, len(capture_s)):
        d = (arrival_s[i] - arrival_s[i - 1]) - (capture_s[i] - capture_s[i - 1])
        jitter += (abs(d) - jitter) / 16.0
    return jitter


def repeated_frames_signal(repeats: int, pairs: int, limits: SignalLimits = SignalLimits()) -> RiskSignal | None:
    """`repeats` of `pairs` consecutive analysed frames were exact copies (see frame_fingerprint)."""
    if pairs < limits.min_frames or repeats == 0:
        return None
    fraction = repeats / pairs
    detail = {"repeated": repeats, "pairs": pairs, "fraction": round(fraction, 3)}
    if fraction >= limits.repeated_high_fraction:
        return RiskSignal(SignalCode.REPEATED_FRAMES, Level.HIGH, detail, Action.REVIEW)
    if fraction >= limits.repeated_fraction:
        return RiskSignal(SignalCode.REPEATED_FRAMES, Level.ELEVATED, detail, Action.REVIEW)
    return None


def format_signals(sizes: list[tuple[float, int, int]], limits: SignalLimits = SignalLimits(), asked: list[float | None] | None = None) -> list[RiskSignal]:
    """Resolution and frame-rate changes over (time, width, height) of every received frame.

    WebRTC adapts resolution to bandwidth and phones lower the rate in dim light, so these are hints.
    `asked`: the rate the page was asked to send at when each frame arrived; each stretch's rate is then
    measured against what was asked, and a change the server asked for is no change.
    """
    out: list[RiskSignal] = []
    distinct = []
    for _, w, h in sizes:
        if not distinct or distinct[-1] != (w, h):
            distinct.append((w, h))
    if len(distinct) > 1:
        out.append(RiskSignal(SignalCode.RESOLUTION_CHANGED, Level.LOW, {"changes": len(distinct) - 1, "sizes": [f"{w}x{h}" for w, h in distinct[:6]]}))
    rates, relative = [], []
    for start, end in rate_stretches(asked, len(sizes)):
        stretch = window_rates([t for t, _, _ in sizes[start:end]])
        wanted = asked[start] if asked and len(asked) == len(sizes) else None
        rates += stretch
        relative += [r / wanted for r in stretch] if wanted else stretch
    if len(relative) >= 2 and min(relative) > 0 and max(relative) / min(relative) >= limits.frame_rate_ratio:
        out.append(RiskSignal(SignalCode.FRAME_RATE_CHANGED, Level.LOW, {"min_fps": round(min(rates), 1), "max_fps": round(max(rates), 1)}))
    return out


def window_rates(times: list[float], window_s: float = 2.0) -> list[float]:
    """Frames per second in consecutive full windows."""
    if len(times) < 2:
        return []
    start, rates, count = times[0], [], 0
    for t in times:
        while t >= start + window_s:
            rates.append(count / window_s)
            start += window_s
            count = 0
        count += 1
    return rates


def declared_signal(declared: dict[str, float] | None, width: int, height: int, fps: float, limits: SignalLimits = SignalLimits()) -> RiskSignal | None:
    """What the page said its camera delivers (`width`, `height`, `frame_rate`) against what arrives.

    Delivered frames may be smaller than declared (the sender adapts to bandwidth) but not larger, and
    not faster; a portrait/landscape swap is normal on phones, so sizes are compared as sets.
    """
    if not declared:
        return None
    problems = {}
    d_w, d_h = declared.get("width"), declared.get("height")
    if d_w and d_h and width and height:
        if max(width, height) > max(d_w, d_h) * (1 + limits.declared_tolerance) or min(width, height) > min(d_w, d_h) * (1 + limits.declared_tolerance):
            problems["size"] = {"declared": f"{int(d_w)}x{int(d_h)}", "delivered": f"{width}x{height}"}
    d_fps = declared.get("frame_rate")
    if d_fps and fps and fps > d_fps * (1 + limits.declared_tolerance):
        problems["frame_rate"] = {"declared": d_fps, "delivered": round(fps, 1)}
    if not problems:
        return None
    return RiskSignal(SignalCode.SETTINGS_MISMATCH, Level.ELEVATED, problems, Action.REVIEW)


def reaction_signals(reactions: list[tuple[str, float | None]], limits: SignalLimits = SignalLimits()) -> list[RiskSignal]:
    """(challenge, seconds from prompt to the first matching movement) for each challenge asked.

    A movement that begins before a person could have read the prompt was already under way: a replay or
    a puppet that does not follow the prompts. Slow ones are only noted.
    """
    fast = [(c, r) for c, r in reactions if r is not None and r < limits.reaction_fast_s]
    slow = [(c, r) for c, r in reactions if r is not None and r > limits.reaction_slow_s]
    out = []
    if fast:
        level = Level.HIGH if len(fast) >= 2 else Level.ELEVATED
        out.append(RiskSignal(SignalCode.REACTION_TOO_FAST, level, {"challenges": [{"type": c, "reaction_s": round(r, 3)} for c, r in fast]}, Action.REVIEW))
    if slow:
        out.append(RiskSignal(SignalCode.REACTION_SLOW, Level.LOW, {"challenges": [{"type": c, "reaction_s": round(r, 3)} for c, r in slow]}))
    return out


def client_signal(offer: str, user_agent: str) -> RiskSignal | None:
    """The WebRTC stack that wrote the offer against the browser the User-Agent names (offer_client.py).

    An offer no browser writes is a scripted client: an attack on a live key. A browser's offer under
    another browser's name (a User-Agent switcher, a WebView with its own name) is only odd.
    """
    traits = offer_traits(offer)
    family, claimed = traits.family, claimed_family(user_agent)
    detail = {"offer": traits.to_dict(), "user_agent": user_agent_summary(user_agent)}
    if family not in BROWSER_FAMILIES:
        return RiskSignal(SignalCode.CLIENT_NOT_BROWSER, Level.HIGH, detail, Action.FAIL)
    if claimed != family:
        return RiskSignal(SignalCode.CLIENT_NOT_BROWSER, Level.ELEVATED, detail, Action.REVIEW)
    return None


def discontinuity_signal(steps: list[Step], spans: list[tuple[float, float]], limits: CutLimits = CutLimits(),
                         windows: list[tuple[float, float]] = ()) -> RiskSignal | None:
    """Cuts while the challenges were asked and performed (`spans`: from each prompt to its completion,
    or the stream's end): one asks for a person's look, two or more are a stream assembled from pieces.
    Cuts elsewhere (before the first prompt) are only noted. `windows`: each prompt's reaction window,
    where a smaller cut counts (continuity.py)."""
    found = cuts(steps, limits, windows)
    if not found:
        return None
    near = [t for t in found if any(start - 0.5 <= t <= end + 1.0 for start, end in spans)]
    detail = {"cuts": len(found), "during_challenges": len(near), "steps": len(steps)}
    if len(near) >= 2:
        return RiskSignal(SignalCode.STREAM_DISCONTINUITY, Level.HIGH, detail, Action.FAIL)
    if near:
        return RiskSignal(SignalCode.STREAM_DISCONTINUITY, Level.ELEVATED, detail, Action.REVIEW)
    return RiskSignal(SignalCode.STREAM_DISCONTINUITY, Level.LOW, detail)


def rigid_texture_signal(rigidity: Rigidity | None, below: float = RIGID_BELOW) -> RiskSignal | None:
    """The check's turned faces against its neutral face, once warped onto them (texture_rigidity.py):
    a texture that barely changed is a still photo made to turn."""
    if rigidity is None or rigidity.change >= below:
        return None
    detail = {"texture_change": round(rigidity.change, 3), "below": below, "frames": rigidity.samples, "max_angle_deg": round(rigidity.max_angle_deg, 1)}
    if rigidity.max_angle_deg < CLEAR_TURN_DEG:
        return RiskSignal(SignalCode.RIGID_TEXTURE, Level.ELEVATED, detail, Action.REVIEW)
    return RiskSignal(SignalCode.RIGID_TEXTURE, Level.HIGH, detail, Action.FAIL)


# -- one check ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamFacts:
    """Everything the signals are computed from, gathered by the connection and the analyzer."""

    capture_s: list[float] = field(default_factory=list)  # each received frame's own timestamp
    arrival_s: list[float] | None = None  # each received frame's arrival on the server (live only)
    sizes: list[tuple[float, int, int]] = field(default_factory=list)  # (capture time, width, height)
    asked_fps: list[float | None] | None = None  # the rate the page was asked for as each frame arrived (live only)
    repeated_frames: int = 0
    analysed_pairs: int = 0
    declared: dict[str, float] | None = None
    camera_label: str | None = None  # None: not a live camera (a file replay)
    reactions: list[tuple[str, float | None]] = field(default_factory=list)
    offer: str | None = None  # the live page's SDP offer; None: no live connection (a recorded clip)
    user_agent: str = ""  # what the page's HTTP request said it is
    continuity: list[Step] = field(default_factory=list)  # analysed frame to frame (continuity.py)
    challenge_spans: list[tuple[float, float]] = field(default_factory=list)  # each prompt to its completion
    reaction_windows: list[tuple[float, float]] = field(default_factory=list)  # each prompt to its movement's onset
    rigidity: Rigidity | None = None  # turned faces against the neutral one (texture_rigidity.py)


def check_signals(facts: StreamFacts, pad: PadResult | None, thresholds: PadThresholds | None = None,
                  limits: SignalLimits = SignalLimits()) -> list[RiskSignal]:
    """All risk signals of one check, strongest first."""
    out: list[RiskSignal] = []
    if pad is not None:
        out.append(pad_signal(pad, thresholds))
    if facts.camera_label is not None:
        label = camera_label_signal(facts.camera_label)
        if label is not None:
            out.append(label)
    out += timing_signals(facts.capture_s, facts.arrival_s, limits, facts.asked_fps)
    repeated = repeated_frames_signal(facts.repeated_frames, facts.analysed_pairs, limits)
    if repeated is not None:
        out.append(repeated)
    out += format_signals(facts.sizes, limits, facts.asked_fps)
    if facts.sizes:
        _, width, height = facts.sizes[-1]
        rates = window_rates([t for t, _, _ in facts.sizes])
        declared = declared_signal(facts.declared, width, height, median(rates) if rates else 0.0, limits)
        if declared is not None:
            out.append(declared)
    if facts.offer is not None:
        client = client_signal(facts.offer, facts.user_agent)
        if client is not None:
            out.append(client)
        if not facts.declared:  # the page always sends its track's getSettings(); a script may not
            out.append(RiskSignal(SignalCode.SETTINGS_MISMATCH, Level.ELEVATED, {"declared": None}, Action.REVIEW))
    out += reaction_signals(facts.reactions, limits)
    discontinuity = discontinuity_signal(facts.continuity, facts.challenge_spans, windows=facts.reaction_windows)
    if discontinuity is not None:
        out.append(discontinuity)
    rigid = rigid_texture_signal(facts.rigidity)
    if rigid is not None:
        out.append(rigid)
    return strongest_first(out)


def strongest_first(signals: list[RiskSignal]) -> list[RiskSignal]:
    order = {Level.HIGH: 0, Level.ELEVATED: 1, Level.LOW: 2}
    return sorted(signals, key=lambda s: order[s.level])
