"""`python -m server eval-injection`: injection attack instruments against the whole offline decision
(issue 24 item 6), in the terms of CEN/TS 18099 and ISO/IEC 30107-3.

Every case is a clip judged as a check on a live key would judge it (`server/flow/offline.py`: the
challenges, PAD, the stream signals, the face match against the reference, `reference_replay`, the
decision), plus, for the instruments that are clients, what the server sees of the client: its SDP
offer (`tests/fixtures/offers/`), its User-Agent, its frames' capture clock (steady, or with 2 ms of
Gaussian jitter) and whether it declared its camera's settings. Where the person has no photo apart from
their clip, the face match is taken as a match (`match: assumed`), so that what is measured is the
injection detection alone. Generated clips (puppets, splices) go to a temporary folder under /tmp.
With `--reactive`, each splice is also played on prompt (reactive_splices.py: the attacker's player that
waits for each prompt; with `--chromium`, as a virtual camera in the page).

Reported per instrument: attacks accepted (approved: the IAPAR-like rate, attack presentations accepted
/ attack presentations) and sent to review; for genuine clips, those not approved (BPCER-like).
The scripted client's own WebRTC path is in tests/attacks/test_injection_attacks.py (real server).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from realname_tools.reactive_splices import ReactivePlayer

CHROME_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
OFFERS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "offers"
HEADTURN = "headturn_lr_nod_phone_selfie_young_man_21s.mp4"
MONITOR = "attack_monitor_replay_of_headturn_phone_selfie_21s.mp4"
BLINK = "blink_frontal_man_phone_portrait_14s.mp4"
D12 = "lp_d12_talking_glasses_man_headturns_7s.mp4"
D7 = "lp_d7_winks_blinks_woman_6s.mp4"
HEADTURN_OTHER = "vid_tranv_selfie_man/frame_t4.9s_turned_facing_image_right.jpg"  # another pose than the clip's frontal frames
HEADTURN_STILL = "vid_tranv_selfie_man/frame_t0.5s_frontal.jpg"
BLINK_STILL = "vid_blinkdet_man/frame_t1.2s_frontal_eyes_open.jpg"

GENUINE = [  # (clip, the challenges it performs, a photo of the person that is not a frame like the clip's)
    (HEADTURN, "turn_left,turn_right,look_down,look_up", HEADTURN_OTHER),
    (BLINK, "blink,blink,blink", None),
    (D12, "turn_left,turn_right,turn_left", None),
    ("lp_d0_smile_greenscreen_asian_man_3s.mp4", "smile", None),
    ("lp_d13_selfie_glasses_man_smile_12s.mp4", "smile,blink", None),
    ("lp_d18_mouth_open_eyes_closed_man_7s.mp4", "open_mouth", None),
    (D7, "blink", None),
]
# A file as a fake camera does not wait for the prompts: only movements that come after a pause in the
# clip can answer one (lp_d12 turns left, right and left again without a pause: its second turn begins
# before its prompt, `reaction_too_fast`, as it should).
THROUGH_CHROMIUM = {HEADTURN: "turn_left,turn_right", D12: "turn_left"}
# ID-photo-like frontal portraits (../shared/media/SOURCES.md) to make puppets of.
PORTRAITS = [
    "angelina_jolie/deepface_img10.jpg", "angelina_jolie/deepface_img1.jpg", "jennifer_aniston/deepface_img3.jpg",
    "matt_damon/deepface_img32.jpg", "sundar_pichai/deepface_img25.jpg", "mark_zuckerberg/deepface_img13.jpg",
    "george_clooney/deepface_img38.jpg", "jeff_bezos/deepface_img20.jpg",
]
# What each mesh-warped puppet is asked (the live default is two random challenges).
MESH_CHALLENGES = ["blink,turn_left", "turn_right,look_up", "look_down,blink", "turn_left,turn_right", "look_up,blink", "turn_right,look_down"]
# A puppet made from a photo that is not the ID photo (one found online): reference_replay's identity and
# appearance are those of two photos of the person, so this is a limit probe, not a fixed attack.
OTHER_PHOTO_PUPPETS = [
    ("matt_damon/deepface_img32.jpg", "matt_damon/deepface_img30.jpg"),
    ("jennifer_aniston/deepface_img3.jpg", "jennifer_aniston/deepface_img12.jpg"),
    ("mark_zuckerberg/deepface_img13.jpg", "mark_zuckerberg/deepface_img14.jpg"),
    ("george_clooney/deepface_img38.jpg", "george_clooney/deepface_img39.jpg"),
]
# One piece per challenge, each starting and ending facing the camera, in an order the footage did not have.
# The first piece is a still, neutral start without the challenges' movement: through Chromium its first
# half second is played back and forth while the page connects (eval_injection_browser.py), and a blink in
# it would pass the check before any cut is played (the blink clip blinks at 0.43 s, lp_d7 at 0.13 s).
SPLICES = [
    ([(HEADTURN, 0, 2), (HEADTURN, 7.0, 11.2), (HEADTURN, 2.0, 6.8), (HEADTURN, 11.2, 14.3)], "turn_right,turn_left,look_down", HEADTURN_OTHER),
    ([(HEADTURN, 16.5, 19), (HEADTURN, 2.0, 6.8), (HEADTURN, 7.0, 11.2)], "turn_left,turn_right", HEADTURN_OTHER),
    ([(HEADTURN, 0, 2), (HEADTURN, 11.2, 14.3)], "look_down", HEADTURN_OTHER),
    ([(HEADTURN, 0, 2), (MONITOR, 2.0, 6.8), (HEADTURN, 7.0, 11.2)], "turn_left,turn_right", HEADTURN_OTHER),
    ([(D12, 0, 1.2), (D12, 3.0, 4.5), (D12, 1.2, 2.9)], "turn_right,turn_left", None),
    ([(BLINK, 0.6, 1.6), (BLINK, 9.0, 9.8), (BLINK, 3.2, 4.0)], "blink,blink", None),
    ([(D7, 4.3, 5.3), (D7, 2.1, 3.0)], "blink", None),
]


@dataclass(frozen=True)
class Client:
    """What the server sees of the client that sends the clip (None: a browser, or a clip file)."""

    offer: str
    user_agent: str = CHROME_UA
    jitter_s: float = 0.0
    declared: bool = False  # sends the page's getSettings() (a forged client copying the page would)


@dataclass(frozen=True)
class Case:
    instrument: str
    name: str
    attack: bool
    clip: Callable[[Path], Path]  # makes (or finds) the clip, given a scratch folder
    challenges: str
    reference: str | None = None  # photo, relative to the media's photos; None: the match is assumed
    client: Client | None = None
    sandbox: bool = False
    chromium_challenges: str | None = None  # those the clip, looping as a fake camera, performs in time (None: the same)
    player: Callable[[], ReactivePlayer] | None = None  # instead of the clip: footage played on prompt (reactive_splices.py)


@dataclass
class Outcome:
    case: Case
    status: str
    why: str
    signals: list[str] = field(default_factory=list)
    performed: bool | None = None  # every challenge passed (None: not known)
    texture_change: float | None = None  # the check's turned faces against its neutral one (rigid_texture; None: not measured)


def client_signals(client: Client, clip: Path):
    """The offer, User-Agent, declared settings and capture clock of a client streaming `clip`."""
    import av

    from server.spoof.signals import StreamFacts, check_signals

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        count, rate, size = stream.frames or 300, float(stream.average_rate or 30), (stream.codec_context.width, stream.codec_context.height)
    rng = np.random.default_rng(7)
    capture = [i / rate + (rng.normal(0, client.jitter_s) if client.jitter_s else 0.0) for i in range(count)]
    declared = {"width": size[0], "height": size[1], "frame_rate": rate} if client.declared else None
    facts = StreamFacts(capture_s=capture, offer=client.offer, user_agent=client.user_agent, declared=declared, camera_label="Integrated Camera")
    return check_signals(facts, None)


def judge_case(case: Case, scratch: Path, media: Path, context) -> Outcome:
    from server.flow.judgement import judge
    from server.flow.offline import judge_clip
    from server.liveness.challenges import parse_challenges
    from server.liveness.replay import VideoError, replay_frames, replay_video
    from server.matching.matcher import Decision
    from server.spoof.signals import strongest_first

    clip = case.clip(scratch) if case.player is None else None
    try:
        if case.player is not None:
            report = replay_frames(case.player().frames, parse_challenges(case.challenges), context.landmarker, pad_models=context.pad)
        else:
            report = replay_video(clip, parse_challenges(case.challenges), context.landmarker, pad_models=context.pad)
    except VideoError as error:
        return Outcome(case, "failed", error.code, performed=False)
    if case.client is not None and clip is not None:
        report = dataclasses.replace(report, signals=tuple(strongest_first([*report.signals, *client_signals(case.client, clip)])))
    if case.reference is not None:
        reference = context.read_photo(media / "photos" / case.reference)
        judged = judge_clip(report, context.matcher, reference, sandbox=case.sandbox)
        status, why, signals = judged.status.value, judged.failure_reason or ",".join(judged.review_because), judged.signals
    elif not report.result.passed:
        status, why, signals = "failed", report.result.reason.value if report.result.reason else "", list(report.signals)
    else:
        verdict = judge(Decision.MATCH, report.signals, case.sandbox)
        status, why, signals = verdict.status.value, (verdict.failure_reason or ",".join(verdict.review_because)) + " (match assumed)", list(report.signals)
    if status == "failed" and why == "presentation_attack":
        why += ": " + ",".join(s.code.value for s in signals if s.action.value == "fail" and (not case.sandbox or s.code.value.startswith("pad_")))
    performed = all(c.passed for c in report.result.challenges)
    change = report.rigidity.change if report.rigidity is not None else None
    return Outcome(case, status, why, [s.code.value for s in signals if s.level.value != "low"], performed, change)


def cases(media: Path, photos: Path | None = None, more_splices: tuple[str, ...] = (), reactive: bool = False) -> list[Case]:
    """The cases; `photos`: a folder of portraits (one face each) never used to calibrate, each made into a
    mesh-warped puppet and judged against itself as the ID photo; `more_splices`: footage never used,
    each "CHALLENGES=CLIP:START:END+CLIP:START:END+..." (paths as given, seconds)."""
    from realname_tools import puppets, splices

    videos = media / "videos"
    aiortc, chromium = (OFFERS / "aiortc.sdp").read_text(), (OFFERS / "chromium-156.sdp").read_text()
    out: list[Case] = []
    found = lambda name: lambda _: videos / name  # noqa: E731
    for clip, challenges, reference in GENUINE:
        out.append(Case("genuine clip (a browser's stream)", clip, False, found(clip), challenges, reference,
                        chromium_challenges=THROUGH_CHROMIUM.get(clip)))
        out.append(Case("genuine clip, scripted client, sandbox key", clip, False, found(clip), challenges, reference, Client(aiortc), sandbox=True))
    for jitter, label in ((0.0, "steady clock"), (0.002, "2 ms jitter")):
        for clip, challenges, reference in ((BLINK, "blink,blink", BLINK_STILL), (HEADTURN, "turn_left,turn_right", HEADTURN_OTHER)):
            out.append(Case(f"scripted client (aiortc), {label}", clip, True, found(clip), challenges, reference, Client(aiortc, jitter_s=jitter)))
    for clip, challenges, reference in ((BLINK, "blink,blink", BLINK_STILL), (HEADTURN, "turn_left,turn_right", HEADTURN_STILL)):
        out.append(Case("forged offer (Chromium's SDP), the ID photo's own footage", clip, True, found(clip), challenges, reference,
                        Client(chromium, jitter_s=0.002, declared=True)))

    def puppet(portrait: str) -> Callable[[Path], Path]:
        def make(scratch: Path) -> Path:
            path = scratch / f"puppet-{portrait.replace('/', '-')}.mp4"
            photo = puppets.read_photo(media / "photos" / portrait)
            puppets.write_clip(puppets.puppet_of(CONTEXT.matcher, photo, ["blink", "turn_left"]), path)
            return path

        return make

    for portrait in PORTRAITS:
        out.append(Case("puppet of the ID portrait (affine)", portrait, True, puppet(portrait), "blink,turn_left", portrait))

    def mesh_puppet(portrait: str, challenges: str, seed: int) -> Callable[[Path], Path]:
        def make(scratch: Path) -> Path:
            from server.models.landmarker import FaceLandmarker

            path = scratch / f"mesh-puppet-{portrait.replace('/', '-')}-{seed}.mp4"
            photo = puppets.read_photo(media / "photos" / portrait)
            landmarker = FaceLandmarker(CONTEXT.landmarker).prepare()
            try:
                frames = puppets.mesh_puppet_of(CONTEXT.matcher, landmarker, photo, challenges.split(","), puppets.MeshStyle(seed=seed))
            finally:
                landmarker.close()
            puppets.write_clip(frames, path)
            return path

        return make

    for seed, portrait in enumerate(PORTRAITS):
        challenges = MESH_CHALLENGES[seed % len(MESH_CHALLENGES)]
        out.append(Case("puppet of the ID portrait (mesh-warped)", f"{portrait} {challenges}", True, mesh_puppet(portrait, challenges, seed), challenges, portrait))
    for seed, (source, reference) in enumerate(OTHER_PHOTO_PUPPETS):
        challenges = MESH_CHALLENGES[seed % len(MESH_CHALLENGES)]
        out.append(Case("puppet of another photo of the person (mesh-warped)", f"{source} as {reference} {challenges}", True,
                        mesh_puppet(source, challenges, 100 + seed), challenges, reference))

    def splice(pieces, index: int) -> Callable[[Path], Path]:
        def make(scratch: Path) -> Path:
            path = scratch / f"splice-{index}.mp4"
            puppets.write_clip(splices.splice([(videos / c, a, b) for c, a, b in pieces]), path)
            return path

        return make

    def played_on_prompt(pieces) -> Callable[[], ReactivePlayer]:
        return lambda: ReactivePlayer.of(pieces)

    for index, (pieces, challenges, reference) in enumerate(SPLICES):
        name = " + ".join(f"{c.split('_')[0]}[{a}-{b}]" for c, a, b in pieces)
        out.append(Case("splice of real footage, one piece per challenge", name, True, splice(pieces, index), challenges, reference))
        if reactive:
            out.append(Case("splice of real footage, played on prompt", name, True, splice(pieces, index), challenges, reference,
                            player=played_on_prompt([(videos / c, a, b) for c, a, b in pieces])))
    for seed, portrait in enumerate(sorted(p for p in (photos.iterdir() if photos else ()) if p.suffix.lower() in (".jpg", ".jpeg", ".png"))):
        challenges = MESH_CHALLENGES[seed % len(MESH_CHALLENGES)]
        out.append(Case("unseen photo: puppet of the ID portrait (mesh-warped)", f"{portrait.name} {challenges}", True,
                        mesh_puppet(str(portrait.resolve()), challenges, 200 + seed), challenges, str(portrait.resolve())))
    for index, spec in enumerate(more_splices):
        challenges, _, pieces_text = spec.partition("=")
        pieces = [(Path(c).resolve(), float(a), float(b)) for c, a, b in (piece.rsplit(":", 2) for piece in pieces_text.split("+"))]
        name = " + ".join(f"{c.name}[{a}-{b}]" for c, a, b in pieces)
        out.append(Case("unseen footage: splice, one piece per challenge", name, True, splice(pieces, 100 + index), challenges, None))
        if reactive:
            out.append(Case("unseen footage: splice played on prompt", name, True, splice(pieces, 100 + index), challenges, None,
                            player=played_on_prompt(pieces)))
    return out


@dataclass
class Context:
    landmarker: Path
    pad: object
    matcher: object
    read_photo: Callable[[Path], np.ndarray]


CONTEXT: Context  # set by run(): the puppet maker needs the matcher's face detector


def table(outcomes: list[Outcome]) -> list[dict]:
    rows: dict[str, dict] = {}
    for o in outcomes:
        row = rows.setdefault(o.case.instrument, {"instrument": o.case.instrument, "attack": o.case.attack, "n": 0, "performed": 0, "approved": 0, "review": 0, "not_approved": 0})
        row["n"] += 1
        row["performed"] += bool(o.performed)
        row["approved" if o.status == "approved" else "review" if o.status == "review" else "not_approved"] += 1
    for row in rows.values():
        if row["attack"]:
            row["accepted_rate"] = round(row["approved"] / row["n"], 3)  # IAPAR-like
        else:
            row["flagged_rate"] = round((row["n"] - row["approved"]) / row["n"], 3)  # BPCER-like
    return list(rows.values())


def run(args) -> int:
    global CONTEXT
    from realname_tools.puppets import read_photo, service_matcher
    from server.config import load_settings
    from server.liveness.analyzer import load_pad_models
    from server.models.loader import landmarker_file

    settings = load_settings(args.config)
    pad_dir = args.pad_model_dir or settings.pad_model_dir
    media = Path(args.media)
    more = cases(media, Path(args.photos) if args.photos else None, tuple(args.splice or ()), args.reactive)
    chosen = [case for case in more if not args.only or any(part in case.instrument for part in args.only.split("|"))]

    def said(outcome: Outcome) -> None:
        change = "" if outcome.texture_change is None else f" texture_change {outcome.texture_change:.3f}"
        print(f"{outcome.case.instrument} | {outcome.case.name}: {outcome.status} ({outcome.why}) {outcome.signals}{change}", file=sys.stderr, flush=True)

    if args.chromium:
        import asyncio

        from realname_tools.eval_injection_browser import run_cases
        from server.app import load_models

        models = load_models(dataclasses.replace(settings, pad_model_dir=pad_dir or ""))
        CONTEXT = Context(models.landmarker_file, models.pad, models.matcher, read_photo)
        browser_cases = [dataclasses.replace(c, instrument=f"{c.instrument} [Chromium, live key]") for c in chosen if c.client is None and not c.sandbox]
        outcomes = asyncio.run(run_cases(browser_cases, media, models, pad_dir or "", Outcome, said))
    else:
        CONTEXT = Context(
            landmarker_file(settings.landmarker_model, settings.models_dir),
            load_pad_models(pad_dir, settings.pad_calibration_file) if pad_dir else None,
            service_matcher(),
            read_photo,
        )
        outcomes = []
        with tempfile.TemporaryDirectory(dir="/tmp", prefix="eval-injection-") as scratch:  # never in the repository
            for case in chosen:
                outcome = judge_case(case, Path(scratch), media, CONTEXT)
                said(outcome)
                outcomes.append(outcome)
    rows = table(outcomes)
    if args.json:
        print(json.dumps({"instruments": rows, "cases": [{"instrument": o.case.instrument, "case": o.case.name, "status": o.status, "why": o.why, "signals": o.signals, "performed": o.performed} for o in outcomes]}, indent=1))
        return 0
    print("| instrument | kind | n | challenges passed | approved | review | not approved | rate |")
    print("|---|---|--:|--:|--:|--:|--:|---|")
    for r in rows:
        rate = f"accepted (IAPAR-like) {r['accepted_rate']:.0%}" if r["attack"] else f"genuine not approved (BPCER-like) {r['flagged_rate']:.0%}"
        print(f"| {r['instrument']} | {'attack' if r['attack'] else 'genuine'} | {r['n']} | {r['performed']} | {r['approved']} | {r['review']} | {r['not_approved']} | {rate} |")
    return 0


def add_parser(sub) -> None:
    evali = sub.add_parser("eval-injection", help="injection attack instruments against the offline decision (CEN/TS 18099, ISO/IEC 30107-3 terms)")
    evali.add_argument("--media", default="../shared/media", help="the shared media folder (photos/, videos/)")
    evali.add_argument("--pad-model-dir", dest="pad_model_dir", help="PAD model folder (default: REALNAME_PAD_MODEL_DIR)")
    evali.add_argument("--only", help="only the instruments whose name contains this (or any of A|B|...)")
    evali.add_argument("--chromium", action="store_true", help="each clip as Chromium's fake camera through the hosted page, on a live key of a server run here")
    evali.add_argument("--photos", help="a folder of portraits never used to calibrate: each made into a mesh-warped puppet (instrument 'unseen photo')")
    evali.add_argument("--splice", action="append", metavar="CHALLENGES=CLIP:START:END+...",
                       help="footage never used, spliced one piece per challenge (repeatable; instrument 'unseen footage')")
    evali.add_argument("--reactive", action="store_true",
                       help="also play each splice on prompt: its first piece looped at rest, each other piece when its challenge is asked (with --chromium: as a virtual camera in the page)")
    evali.add_argument("--json", action="store_true")
    evali.set_defaults(func=run)
