"""`python -m server customer-time`: how long a customer looks into the camera, from camera start to decision,
per challenge kind and for the default check, measured in Chromium on the hosted page (issue 28, item 4).

Chromium's file fake camera loops a clip whatever the page asks, which measures the clip, not a customer.
This customer reacts: a script run before the page replaces `getUserMedia` with a canvas stream that plays
a NEUTRAL stretch of a shared clip (forward then backward, so that the loop makes no cut) and, when the
server's data channel prompts a challenge, plays after `REACTION_S` the stretch of the same clip where the
person performs that movement, then returns to neutral. The stretches are found offline with the service's
own landmarker and signals (yaw, pitch, eyes, smile, jaw), not by hand, and cut to small VP8 files in a
temporary folder. One person per check: each kind uses one clip (KINDS), the default check the head-turn
clip with challenges the server's own `random_challenges` draws among those that clip performs.

The server is a real one in this process (eval_injection_browser.LiveServer, a live key, its default
challenge timeout), the browser and the customer's steps are the e2e suite's. Times are the page's clock:
camera start (the page asks for the camera) to the result message; the parts are connect (to the first
prompt), neutral (to the first challenge prompt), each challenge (its prompt to the next), after (last
challenge judged to the result), and the server's own `live_stats.decision_ms`; the wait for the first
challenge as the server saw it (`live_stats.start_s`, stream seconds from its first analysed frame): the
neutral face held, the light gate said lit, the first challenge asked.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import random
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REACTION_S = 0.6  # a customer's reaction to a prompt: reading it and starting to move
NEUTRAL_MAX_S = 2.0  # the neutral stretch played (forward, then backward)
NEUTRAL_MIN_S = 0.5
LEAD_S = 0.15  # a movement's stretch starts this long before it shows, and ends this long after it has gone
TAIL_S = 0.3
HOLD_S = 0.3  # a movement held at its furthest: this much of it before the furthest point, forward and back
CANVAS_LONG_SIDE = 640
CANVAS_FPS = 20

# kind -> (clip, the challenge lists its checks take in turn); the default check is drawn per run.
KINDS: dict[str, tuple[str, list[list[str]]]] = {
    "blink": ("blink_frontal_man_phone_portrait_14s.mp4", [["blink"]]),
    "head turn": ("headturn_lr_nod_phone_selfie_young_man_21s.mp4", [["turn_left"], ["turn_right"]]),
    "smile": ("lp_d0_smile_greenscreen_asian_man_3s.mp4", [["smile"]]),
    "open mouth": ("lp_d18_mouth_open_eyes_closed_man_7s.mp4", [["open_mouth"]]),
}
DEFAULT_KIND = "default check"
DEFAULT_CLIP = "headturn_lr_nod_phone_selfie_young_man_21s.mp4"
# The person's own photo where the shared media has one (photos/vid_*), else another person's (a mismatch:
# the decision still comes, which is all this measures).
PHOTOS = {
    "blink_frontal_man_phone_portrait_14s.mp4": "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg",
    "headturn_lr_nod_phone_selfie_young_man_21s.mp4": "vid_tranv_selfie_man/frame_t0.5s_frontal.jpg",
}
OTHER_PERSON = "george_clooney/deepface_img38.jpg"
EXPRESSIONS = ("blink", "smile", "open_mouth")
SHARED_PAD = "../shared/models/pad"  # as the tests find it, when no PAD folder is configured
START_PARTS = ("held", "lit", "asked")  # live_stats.start_s, from the server's first analysed frame


# -- the clip's stretches, found with the landmarker ------------------------------------------------


@dataclass(frozen=True)
class Stretch:
    start: float
    end: float
    peak: float = 0.0  # how far the movement went, in its own units
    peak_t: float = 0.0  # when it went furthest


@dataclass
class ClipStretches:
    clip: str
    neutral: Stretch
    moves: dict[str, Stretch]


def clip_signals(path: Path, landmarker) -> list:
    """FrameSignals of every frame of the clip (the service's own)."""
    import av

    from server.liveness.analyzer import frame_to_rgb
    from server.liveness.signals import frame_signals

    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 30)
            rgb = frame_to_rgb(frame)
            out.append(frame_signals(t, landmarker.get(rgb), rgb))
    return out


def _amount(challenge: str, s, base) -> float:
    """How far the movement has gone, as a fraction of where the engine counts it (1.0)."""
    from server.liveness.thresholds import Thresholds

    th = Thresholds()
    return {
        "turn_left": (s.yaw - base.yaw) / th.turn_deg,
        "turn_right": (base.yaw - s.yaw) / th.turn_deg,
        "look_up": (s.pitch - base.pitch) / th.look_up_deg if abs(s.yaw - base.yaw) < th.turn_deg / 2 else 0.0,
        "look_down": (base.pitch - s.pitch) / th.look_down_deg if abs(s.yaw - base.yaw) < th.turn_deg / 2 else 0.0,
        "blink": (s.eyes_closed - base.eyes_closed) / th.eyes_closed_rise,
        "smile": (s.smile - base.smile) / th.smile_rise,
        "open_mouth": (s.jaw_open - base.jaw_open) / th.jaw_open_rise,
    }[challenge]


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    runs, begin = [], None
    for i, flag in enumerate([*flags, False]):
        if flag and begin is None:
            begin = i
        elif not flag and begin is not None:
            runs.append((begin, i - 1))
            begin = None
    return runs


def find_stretches(clip: str, signals: list) -> ClipStretches:
    """The longest calm, frontal stretch (neutral) and, per challenge kind, the first clean movement: one
    that reaches 1.3 x the engine's threshold and starts and ends near neutral (blinks: short ones)."""
    from server.liveness.thresholds import Thresholds

    th = Thresholds()
    one = [s.has_one_face for s in signals]
    calm = [
        s.has_one_face
        and abs(s.yaw) <= th.frontal_yaw_deg * 0.6
        and abs(s.pitch) <= th.frontal_pitch_deg * 0.6
        and s.eyes_closed < 0.3
        and s.jaw_open < 0.15
        and s.smile < 0.3
        for s in signals
    ]
    # calm AND steady: within neutral_steady_deg of the run's own median pose
    runs = sorted(_runs(calm), key=lambda r: signals[r[1]].t - signals[r[0]].t, reverse=True)
    if not runs or signals[runs[0][1]].t - signals[runs[0][0]].t < NEUTRAL_MIN_S:
        raise ValueError(f"{clip}: no neutral stretch of {NEUTRAL_MIN_S} s")
    a, b = runs[0]
    t0 = signals[a].t
    b = max(i for i in range(a, b + 1) if signals[i].t - t0 <= NEUTRAL_MAX_S)
    neutral = Stretch(signals[a].t, signals[b].t)
    base = dataclasses.replace(
        signals[a],
        yaw=statistics.median(s.yaw for s in signals[a : b + 1]),
        pitch=statistics.median(s.pitch for s in signals[a : b + 1]),
        eye_closure_left=statistics.median(s.eye_closure_left for s in signals[a : b + 1]),
        eye_closure_right=statistics.median(s.eye_closure_right for s in signals[a : b + 1]),
        smile=statistics.median(s.smile for s in signals[a : b + 1]),
        jaw_open=statistics.median(s.jaw_open for s in signals[a : b + 1]),
    )
    moves: dict[str, Stretch] = {}
    end_t = signals[-1].t
    for challenge in ("blink", "turn_left", "turn_right", "look_up", "look_down", "smile", "open_mouth"):
        amounts = [_amount(challenge, s, base) if s.has_one_face else 0.0 for s in signals]
        for begin, stop in _runs([x >= 0.3 and f for x, f in zip(amounts, one, strict=True)]):
            peak = max(amounts[begin : stop + 1])
            peak_t = signals[max(range(begin, stop + 1), key=lambda i: amounts[i])].t
            duration = signals[stop].t - signals[begin].t
            if peak < 1.3 or (challenge == "blink" and duration > 0.6):
                continue
            head = signals[begin : stop + 1]
            if challenge in EXPRESSIONS and any(abs(s.yaw - base.yaw) > th.neutral_yaw_deg or abs(s.pitch - base.pitch) > th.neutral_pitch_deg for s in head):
                continue  # an expression made while the head is turned (or a turn's artefact) is not one a prompt gets
            start, finish = max(0.0, signals[begin].t - LEAD_S), min(end_t, signals[stop].t + TAIL_S)
            moves[challenge] = Stretch(round(start, 3), round(finish, 3), round(peak, 2), round(peak_t, 3))
            break
    return ClipStretches(clip, neutral, moves)


def cut(source: Path, stretch: Stretch, out: Path, palindrome: bool = False) -> Path:
    """The stretch as a small VP8 .webm (no sound), its long side at most CANVAS_LONG_SIDE; with
    `palindrome` played forward then backward, so that looping it makes no cut."""
    from fractions import Fraction

    import av

    frames, rate = [], Fraction(30)
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate or 30)
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / float(rate)
            if t > stretch.end:
                break
            if t >= stretch.start:
                scale = min(1.0, CANVAS_LONG_SIDE / max(frame.width, frame.height))
                frames.append(
                    frame.reformat(width=round(frame.width * scale) // 2 * 2, height=round(frame.height * scale) // 2 * 2, format="yuv420p").to_ndarray()
                )
    if palindrome:
        frames = frames + frames[-2:0:-1]
    with av.open(str(out), "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=rate)
        stream.height, stream.width = frames[0].shape[0] * 2 // 3, frames[0].shape[1]
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = 1_000_000
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


# -- the customer in the page -----------------------------------------------------------------------

CUSTOMER = """
(() => {
  const CLIPS = __CLIPS__;            // name -> base64 VP8 webm ("neutral" and one per challenge)
  const REACTION_MS = __REACTION_MS__;
  const FPS = __FPS__;
  const note = (name, detail) => window.__customerEvent(name, detail || "", Date.now());
  const url = (b64) => URL.createObjectURL(new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: "video/webm" }));
  let videos = null;
  let current = "neutral";
  const load = () => {
    videos = {};
    for (const [name, b64] of Object.entries(CLIPS)) {
      const v = document.createElement("video");
      v.muted = true; v.playsInline = true; v.preload = "auto"; v.loop = name === "neutral";
      v.src = url(b64);
      if (!v.loop) v.addEventListener("ended", () => { if (current === name) playing(videos[`${name}.hold`] ? `${name}.hold` : "neutral"); });
      if (name.endsWith(".hold")) v.loop = true;
      videos[name] = v;
    }
  };
  const playing = (name) => {
    current = name;
    const v = videos[name];
    if (!v.loop || name.endsWith(".hold")) v.currentTime = 0;
    v.play();
    note("playing", name);
  };
  let moved = null; // the challenge last performed: the way back is its own
  const react = (challenge) => setTimeout(() => {
    moved = challenge;
    if (videos[challenge]) playing(challenge);
    else note("missing", challenge);
  }, REACTION_MS);
  const comeBack = () => setTimeout(() => {
    if (moved && videos[`${moved}.back`] && current.startsWith(moved)) playing(`${moved}.back`);
  }, REACTION_MS);

  navigator.mediaDevices.getUserMedia = async () => {
    note("camera", "");
    if (!videos) load();
    const first = videos.neutral;
    if (first.readyState < 2) await new Promise((resolve) => first.addEventListener("loadeddata", resolve, { once: true }));
    const canvas = document.createElement("canvas");
    canvas.width = first.videoWidth; canvas.height = first.videoHeight;
    const ctx = canvas.getContext("2d");
    playing("neutral");
    setInterval(() => ctx.drawImage(videos[current], 0, 0, canvas.width, canvas.height), 1000 / FPS);
    const stream = canvas.captureStream(FPS);
    const track = stream.getVideoTracks()[0];
    Object.defineProperty(track, "label", { get: () => "Integrated Camera" });
    return stream;
  };

  const Native = window.RTCPeerConnection;
  if (!Native) return;
  const open = Native.prototype.createDataChannel;
  let asked = null;
  Native.prototype.createDataChannel = function (...args) {
    const channel = open.apply(this, args);
    channel.addEventListener("message", (event) => {
      let m; try { m = JSON.parse(event.data); } catch (e) { return; }
      if (m.type === "result") { note("result", m.status || ""); return; }
      if (m.type !== "prompt") return;
      const key = m.phase === "challenge" ? `challenge:${m.challenge}:${m.step}` : `${m.phase}:${m.step}`;
      if (key === asked) return;     // the same prompt again (a hint changed)
      asked = key;
      note("prompt", key);
      if (m.phase === "challenge") react(m.challenge);
      if (m.phase === "return") comeBack();
    });
    return channel;
  };
})();
"""


def customer_script(files: dict[str, Path]) -> str:
    clips = {name: base64.b64encode(path.read_bytes()).decode() for name, path in files.items()}
    return CUSTOMER.replace("__CLIPS__", json.dumps(clips)).replace("__REACTION_MS__", str(int(REACTION_S * 1000))).replace("__FPS__", str(CANVAS_FPS))


def parts_of(events: list[tuple[str, str, float]]) -> dict[str, Any]:
    """The page's events (name, detail, ms) -> camera-to-decision and its parts, in seconds."""
    at = lambda name: next((t for n, _, t in events if n == name), None)  # noqa: E731
    camera, result = at("camera"), at("result")
    prompts = [(d, t) for n, d, t in events if n == "prompt"]
    if camera is None or result is None or not prompts:
        return {"total_s": None}
    s = lambda a, b: round((b - a) / 1000, 2)  # noqa: E731
    challenge_at = [(d.split(":")[1], t) for d, t in prompts if d.startswith("challenge:")]
    out: dict[str, Any] = {"total_s": s(camera, result), "connect_s": s(camera, prompts[0][1])}
    if challenge_at:
        out["neutral_s"] = s(prompts[0][1], challenge_at[0][1])
        steps = []
        for i, (name, t) in enumerate(challenge_at):
            judged = next((u for _, u in prompts if u > t), result)  # the next prompt: the movement was judged
            ends = challenge_at[i + 1][1] if i + 1 < len(challenge_at) else judged  # with the way back to neutral
            steps.append({"challenge": name, "s": s(t, ends), "judged_s": s(t, min(judged, ends))})
        out["steps"] = steps
        last_done = next((u for _, u in prompts if u > challenge_at[-1][1]), result)
        out["after_s"] = s(last_done, result)
    return out


async def one_check(live, playwright, script: str, challenges: list[str], photo: Path) -> dict[str, Any]:
    """One check, as a customer whose camera is `script`'s: the page's times and the session's record."""
    from e2e.support.browser import BASE_ARGS

    from .eval_injection_browser import browser_check

    events: list[tuple[str, str, float]] = []

    async def prepare(context) -> None:
        await context.expose_function("__customerEvent", lambda name, detail, t: events.append((name, detail, t)))

    launch_args = [*BASE_ARGS, "--autoplay-policy=no-user-gesture-required"]
    data = await browser_check(live, playwright, launch_args, challenges, photo, "customer-time", script, 60_000, prepare)
    row = parts_of(events)
    liveness = data.get("liveness") or {}
    row.update(
        challenges=",".join(challenges),
        status=data.get("status"),
        performed=bool(liveness.get("challenges")) and all(c["passed"] for c in liveness["challenges"]),
        reason=data.get("failure_reason") or liveness.get("reason"),
        decision_ms=(data.get("live_stats") or {}).get("decision_ms"),
        **{f"{part}_s": ((data.get("live_stats") or {}).get("start_s") or {}).get(part) for part in START_PARTS},
        missing=[d for n, d, _ in events if n == "missing"],
        failing_signals=[g["code"] for g in liveness.get("signals") or [] if g.get("action") == "fail"],
    )
    return row


# -- the whole measurement -------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of a small sample."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def stat(key: str) -> dict[str, Any]:
        values = [r[key] for r in rows if r.get(key) is not None]
        return {"p50": percentile(values, 50), "p95": percentile(values, 95)}

    decided = [r for r in rows if r.get("total_s") is not None]
    challenge_s = [c["judged_s"] for r in decided for c in r.get("steps", [])]
    back_s = [round(c["s"] - c["judged_s"], 2) for r in decided for c in r.get("steps", [])[:-1]]
    return {
        "n": len(rows),
        "decided": len(decided),
        "performed": sum(bool(r.get("performed")) for r in rows),
        "total_s": stat("total_s"),
        "connect_s": stat("connect_s"),
        "neutral_s": stat("neutral_s"),
        "challenge_s": {"p50": percentile(challenge_s, 50), "p95": percentile(challenge_s, 95)},
        "back_s": {"p50": percentile(back_s, 50), "p95": percentile(back_s, 95)},
        "after_s": stat("after_s"),
        "decision_ms": stat("decision_ms"),
        **{f"{part}_s": stat(f"{part}_s") for part in START_PARTS},
    }


def plan(kinds: list[str], runs: int, seed: int, available: set[str]) -> list[tuple[str, list[str]]]:
    """(kind, challenges) for every check, kinds interleaved so that a change in the machine's load falls on all."""
    from server.config import Settings
    from server.liveness.challenges import random_challenges

    rng = random.Random(seed)
    checks = []
    for run in range(runs):
        for kind in kinds:
            if kind == DEFAULT_KIND:
                while True:  # the server's own draw, among the movements the clip has
                    drawn = [c.value for c in random_challenges(Settings().challenge_count, rng)]  # type: ignore[arg-type]
                    if set(drawn) <= available:
                        break
                checks.append((kind, drawn))
            else:
                lists = KINDS[kind][1]
                checks.append((kind, lists[run % len(lists)]))
    return checks


async def measure(media: Path, models, pad_dir: str, kinds: list[str], runs: int, seed: int, say) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    from server.config import Settings
    from server.models.loader import new_landmarker

    from .eval_injection_browser import LiveServer

    videos = media / "videos"
    clips = {KINDS[k][0] if k != DEFAULT_KIND else DEFAULT_CLIP for k in kinds}
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="customer-time-") as scratch:  # never in the repository
        folder = Path(scratch)
        landmarker = new_landmarker(models.landmarker_file)
        try:
            found = {clip: find_stretches(clip, clip_signals(videos / clip, landmarker)) for clip in sorted(clips)}
        finally:
            landmarker.close()
        scripts: dict[str, str] = {}
        for index, (clip, stretches) in enumerate(found.items()):
            say(
                f"{clip}: neutral {stretches.neutral.start:.2f}-{stretches.neutral.end:.2f} s; "
                + ", ".join(f"{c} {m.start:.2f}-{m.end:.2f} s" for c, m in stretches.moves.items())
            )
            files = {"neutral": cut(videos / clip, stretches.neutral, folder / f"{index}-neutral.webm", palindrome=True)}
            for challenge, stretch in stretches.moves.items():
                if challenge == "blink":  # closing and opening again is the movement: played whole
                    files[challenge] = cut(videos / clip, stretch, folder / f"{index}-{challenge}.webm")
                    continue
                # The movement up to where it goes furthest, held there (a short stretch around it, forward and
                # back) until the page asks to look straight again, then the way back.
                at = stretch.peak_t
                files[challenge] = cut(videos / clip, Stretch(stretch.start, at), folder / f"{index}-{challenge}.webm")
                files[f"{challenge}.hold"] = cut(
                    videos / clip, Stretch(max(stretch.start, at - HOLD_S), at), folder / f"{index}-{challenge}-hold.webm", palindrome=True
                )
                files[f"{challenge}.back"] = cut(videos / clip, Stretch(at, stretch.end), folder / f"{index}-{challenge}-back.webm")
            scripts[clip] = customer_script(files)
        live_server = LiveServer(models, pad_dir, folder)
        # The service's own challenge timeout, not the injection evaluation's longer one.
        live_server.settings = dataclasses.replace(live_server.settings, challenge_timeout_s=Settings().challenge_timeout_s)
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
        async with live_server as live, async_playwright() as playwright:
            for kind, challenges in plan(kinds, runs, seed, set(found.get(DEFAULT_CLIP, ClipStretches("", Stretch(0, 0), {})).moves)):
                clip = DEFAULT_CLIP if kind == DEFAULT_KIND else KINDS[kind][0]
                photo = media / "photos" / PHOTOS.get(clip, OTHER_PERSON)
                try:
                    row = await one_check(live, playwright, scripts[clip], challenges, photo)
                except Exception as error:  # a page that never reached its result: said, counted undecided
                    row = {"total_s": None, "challenges": ",".join(challenges), "error": f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"}
                say(f"{kind}: {json.dumps(row)}")
                rows[kind].append(row)
    return {
        "reaction_s": REACTION_S,
        "stretches": {
            clip: {"neutral": dataclasses.asdict(s.neutral), "moves": {c: dataclasses.asdict(m) for c, m in s.moves.items()}} for clip, s in found.items()
        },
        "kinds": {kind: {"clip": DEFAULT_CLIP if kind == DEFAULT_KIND else KINDS[kind][0], **summary(r)} for kind, r in rows.items()},
        "checks": rows,
    }


def render(data: dict[str, Any]) -> str:
    def cell(d: dict[str, Any]) -> str:
        return "-" if d["p50"] is None else f"{d['p50']:.2f} / {d['p95']:.2f}"

    lines = [
        "| kind | n | decided | performed | camera to decision p50 / p95 s | connect | neutral | each challenge, prompt to judged | back to neutral | after last "
        "| decision_ms | first frame to: neutral held | gate lit | first ask |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for kind, k in data["kinds"].items():
        ms = k["decision_ms"]
        ms_cell = "-" if ms["p50"] is None else f"{ms['p50']:.0f} / {ms['p95']:.0f}"
        lines.append(
            f"| {kind} | {k['n']} | {k['decided']} | {k['performed']} | {cell(k['total_s'])} | {cell(k['connect_s'])} | {cell(k['neutral_s'])} "
            f"| {cell(k['challenge_s'])} | {cell(k['back_s'])} | {cell(k['after_s'])} | {ms_cell} | {cell(k['held_s'])} | {cell(k['lit_s'])} "
            f"| {cell(k['asked_s'])} |"
        )
    return "\n".join(lines)


def run(args) -> int:
    from server.app import load_models
    from server.config import load_settings

    settings = load_settings(args.config)
    pad_dir = args.pad_model_dir or settings.pad_model_dir or (SHARED_PAD if Path(SHARED_PAD).is_dir() else "")
    kinds = [k.strip() for k in args.kinds.split(",")] if args.kinds else [*KINDS, DEFAULT_KIND]
    unknown = [k for k in kinds if k not in KINDS and k != DEFAULT_KIND]
    if unknown:
        print(f"unknown kind(s) {unknown}; known: {', '.join([*KINDS, DEFAULT_KIND])}", file=sys.stderr)
        return 2
    models = load_models(dataclasses.replace(settings, pad_model_dir=pad_dir or ""))
    data = asyncio.run(measure(Path(args.media), models, pad_dir or "", kinds, args.runs, args.seed, lambda line: print(line, file=sys.stderr, flush=True)))
    print(json.dumps(data, indent=1) if args.json else render(data))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("customer-time", help="camera start to decision per challenge kind, in Chromium, with a customer who reacts to the prompts")
    p.add_argument("--media", default="../shared/media", help="the shared media folder (photos/, videos/)")
    p.add_argument("--pad-model-dir", dest="pad_model_dir", help="PAD model folder (default: REALNAME_PAD_MODEL_DIR, else ../shared/models/pad)")
    p.add_argument("--runs", type=int, default=5, help="checks per kind")
    p.add_argument("--kinds", help=f"comma-separated, of: {', '.join([*KINDS, DEFAULT_KIND])} (default: all)")
    p.add_argument("--seed", type=int, default=28, help="the default check's challenge draws")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)
