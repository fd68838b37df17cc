"""The frame-rate cut, measured on the shared clips: every frame analysed against only as many frames a
second as the engine's current step needs (`LivenessEngine.needed_fps`, skipping as the live connection
does, by `frame_due`). Verdicts must not change; the frames analysed and the CPU they cost fall."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..client import Vp8Link
from .report import fmt

# The clip cases of tests/test_liveness_clips.py: (clip, challenges, expected: "pass" or a failure reason).
CASES: list[tuple[str, str, str]] = [
    ("headturn_lr_nod_phone_selfie_young_man_21s.mp4", "turn_left,turn_right,look_down,look_up", "pass"),
    ("blink_frontal_man_phone_portrait_14s.mp4", "blink,blink,blink", "pass"),
    ("lp_d12_talking_glasses_man_headturns_7s.mp4", "turn_left,turn_right,turn_left", "pass"),
    ("lp_d0_smile_greenscreen_asian_man_3s.mp4", "smile", "pass"),
    ("lp_d13_selfie_glasses_man_smile_12s.mp4", "smile,blink", "pass"),
    ("lp_d18_mouth_open_eyes_closed_man_7s.mp4", "open_mouth", "pass"),
    ("lp_d7_winks_blinks_woman_6s.mp4", "blink", "pass"),
    ("headturn_lr_nod_phone_selfie_young_man_21s.mp4", "turn_right,turn_left", "wrong_action"),
    ("headturn_lr_nod_phone_selfie_young_man_21s.mp4", "look_up,look_down", "wrong_action"),
    ("lp_d12_talking_glasses_man_headturns_7s.mp4", "turn_right,turn_left", "wrong_action"),
    ("blink_frontal_man_phone_portrait_14s.mp4", "turn_left", "timeout|stream_ended"),
    ("blink_frontal_man_phone_portrait_14s.mp4", "smile", "timeout|stream_ended"),
    ("lp_d13_selfie_glasses_man_smile_12s.mp4", "look_up", "timeout|stream_ended"),
    ("lp_d18_mouth_open_eyes_closed_man_7s.mp4", "turn_right", "timeout|stream_ended"),
    ("static_webcam_man_real_4s.mp4", "blink", "timeout|stream_ended"),
    ("noface_crowd_walking_1080p_4s.mp4", "blink", "no_face"),
    ("noface_cartoon_robot_eyes_blinking_6s.mp4", "blink", "no_face"),
    ("attack_monitor_replay_of_headturn_phone_selfie_21s.mp4", "turn_right,turn_left", "not_passed"),
]


def replay(path: Path, challenges: str, paced: bool, vp8_kbps: int = 0) -> dict[str, Any]:
    """One clip through the analyzer and engine, as `server.liveness.replay` does, optionally paced.

    With `vp8_kbps`, each frame is first scaled as the live page sends it and passed through VP8 at that
    bitrate, as the server receives it from a browser."""
    import av

    from server.liveness.analyzer import LivenessAnalyzer
    from server.liveness.challenges import parse_challenges
    from server.liveness.engine import LivenessEngine
    from server.models.loader import landmarker_file, new_landmarker

    engine = LivenessEngine(parse_challenges(challenges))
    analyzer = LivenessAnalyzer(new_landmarker(landmarker_file()), engine)
    link = Vp8Link(vp8_kbps * 1000) if vp8_kbps else None
    frames, last_t, cpu = 0, 0.0, 0.0
    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        for index, frame in enumerate(container.decode(stream)):
            frames += 1
            t = float(frame.time) if frame.time is not None else index / float(stream.average_rate or 30)
            last_t = max(last_t, t)
            if link is not None:
                frame = link.received(frame, t)
                if frame is None:
                    continue
            analyzer.observe(frame, t)  # as the live connection: every frame, before the rate's skip (the eye watch)
            if paced and not analyzer.wants(t):
                continue
            started = time.process_time()
            verdict = analyzer.analyse_frame(frame, t)
            cpu += time.process_time() - started
            if verdict.result is not None:
                break
    finally:
        container.close()
        analyzer.close()
    result = engine.result or engine.finish(last_t)
    return {
        "passed": result.passed,
        "reason": result.reason.value if result.reason else None,
        "frames_decoded": frames,
        "frames_analysed": analyzer.frames,
        "analysis_cpu_s": round(cpu, 3),
        "seconds": round(result.finished_at - result.started_at, 2),
    }


def _as_expected(outcome: dict[str, Any], expected: str) -> bool:
    if expected == "pass":
        return outcome["passed"]
    if expected == "not_passed":
        return not outcome["passed"]
    return not outcome["passed"] and outcome["reason"] in expected.split("|")


def frame_rate_cut(videos: str | Path, cases: list[tuple[str, str, str]] | None = None, vp8_kbps: int = 0) -> dict[str, Any]:
    folder = Path(videos)
    rows = []
    for clip, challenges, expected in cases or CASES:
        path = folder / clip
        if not path.is_file():
            rows.append({"clip": clip, "challenges": challenges, "error": "missing"})
            continue
        every, paced = replay(path, challenges, False, vp8_kbps), replay(path, challenges, True, vp8_kbps)
        rows.append(
            {
                "clip": clip,
                "challenges": challenges,
                "expected": expected,
                "every_frame": every,
                "paced": paced,
                "same_verdict": (every["passed"], every["reason"]) == (paced["passed"], paced["reason"]),
                "as_expected": _as_expected(every, expected) and _as_expected(paced, expected),
            }
        )
    measured = [r for r in rows if "error" not in r]
    cpu_every = sum(r["every_frame"]["analysis_cpu_s"] for r in measured)
    cpu_paced = sum(r["paced"]["analysis_cpu_s"] for r in measured)
    seconds = sum(r["every_frame"]["seconds"] for r in measured)
    return {
        "vp8_kbps": vp8_kbps or None,
        "cases": rows,
        "totals": {
            "cases": len(measured),
            "missing": len(rows) - len(measured),
            "verdicts_unchanged": all(r["same_verdict"] for r in measured),
            "all_as_expected": all(r["as_expected"] for r in measured),
            "frames_analysed_every": sum(r["every_frame"]["frames_analysed"] for r in measured),
            "frames_analysed_paced": sum(r["paced"]["frames_analysed"] for r in measured),
            "analysis_cpu_s_every": round(cpu_every, 2),
            "analysis_cpu_s_paced": round(cpu_paced, 2),
            "cpu_saved": round(1 - cpu_paced / cpu_every, 3) if cpu_every else None,
            "check_seconds": round(seconds, 1),
        },
    }


def render_frame_rate_cut(data: dict[str, Any]) -> str:
    lines = [f"{'clip':<56} {'challenges':<38} {'every frame':>22} {'paced':>22}  same"]
    for r in data["cases"]:
        if "error" in r:
            lines.append(f"{r['clip']:<56} {r['challenges']:<38} {r['error']}")
            continue

        def cell(o: dict[str, Any]) -> str:
            verdict = "pass" if o["passed"] else o["reason"]
            return f"{verdict} {o['frames_analysed']}f {fmt(o['analysis_cpu_s'], 2)}s"

        lines.append(f"{r['clip']:<56} {r['challenges']:<38} {cell(r['every_frame']):>22} {cell(r['paced']):>22}  {'yes' if r['same_verdict'] else 'NO'}")
    t = data["totals"]
    lines.append(
        f"{t['cases']} cases: verdicts unchanged: {t['verdicts_unchanged']}, all as expected: {t['all_as_expected']}; "
        f"frames analysed {t['frames_analysed_every']} -> {t['frames_analysed_paced']}, analysis CPU {t['analysis_cpu_s_every']} s -> "
        f"{t['analysis_cpu_s_paced']} s ({fmt((t['cpu_saved'] or 0) * 100)} % less)"
    )
    return "\n".join(lines)
