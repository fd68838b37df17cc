"""The rate each step of a check needs, measured on the shared clip cases (`bench --step-rates`).

Every frame of each clip is analysed once (the landmarker runs in IMAGE mode: a frame's signals do not
depend on the frames before it), then the engine is replayed on those signals as the live connection
feeds it: the clip as the page sends it (`SEND_FPS`), each step analysed at its own rate (`frame_due`),
from several sampling phases (the first frames dropped). Step by step, the rate is lowered along a
ladder while every case's verdict stays the one it has with every frame of the clip, at every phase;
the next rung down, where some verdict changed (or a passed check ended over LATER_S later), is the margin.

`sent_rates` (`bench --sent-rates`) replays the same cases as the page sends them when the server asks
it for each step's rate (rates.py `StepRates.sent_fps`), the ask heard a round trip late.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .frame_rate_cut import CASES, _as_expected
from .report import fmt

# Not below 5: a step waiting for a movement sees its onset up to 1/rate late, which the customer waits.
LADDER = (20.0, 15.0, 12.0, 10.0, 8.0, 6.0, 5.0)
PHASES = 4  # sampling phases: the sent stream starts at frame 0, 1, 2 or 3 of the clip
# A passed check may end at most this much later than with every frame: a rate at which a blink is
# missed keeps the verdict (a later blink passes) but costs the customer seconds.
LATER_S = 0.25


WATCH_PAIRS = 12  # frames back whose eyes and face each frame is compared with (the change watch's references)


def clip_signals(path: Path) -> tuple[list[Any], float, dict[float, dict[float, tuple[float, float]]]]:
    """Every frame's signals (server.liveness.signals.FrameSignals), the clip's frame rate, and the change
    watch's cue (server/liveness/change_watch.py) between frames: by frame time, its eyes' and face's change
    from each of the WATCH_PAIRS frames before it that may be a reference (one face, open eyes), in that
    frame's boxes."""
    import av

    from server.liveness import change_watch
    from server.liveness.analyzer import frame_to_rgb
    from server.liveness.signals import frame_signals
    from server.liveness.thresholds import Thresholds
    from server.models.loader import landmarker_file, new_landmarker

    landmarker = new_landmarker(landmarker_file())
    level = Thresholds().eyes_closed
    rows, changes, recent = [], {}, []  # recent: (t, Reference) of the frames before that may be references
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or 30)
            for index, frame in enumerate(container.decode(stream)):
                t = float(frame.time) if frame.time is not None else index / rate
                rgb = frame_to_rgb(frame)
                faces = landmarker.get(rgb)
                s = frame_signals(t, faces, rgb)
                rows.append(s)
                luma = change_watch.luma_plane(frame)
                recent = [r for r in recent if r[0] >= rows[max(0, len(rows) - 1 - WATCH_PAIRS)].t]
                changes[t] = {t_ref: ref.changes(luma) for t_ref, ref in recent}
                if s.face_count == 1 and s.eyes_closed < level:  # the replay picks among these (change_watch.reference_frame)
                    recent.append((t, change_watch.Reference(luma, faces[0].points)))
    finally:
        landmarker.close()
    return rows, rate, changes


def sent(frames: list[Any], fps: float, send_fps: float, phase: int) -> list[Any]:
    """The frames the page sends at `send_fps` (at most the clip's), starting `phase` frames in."""
    frames = frames[phase:]
    if not send_fps or send_fps >= fps:
        return frames
    return [frames[int(i * fps / send_fps)] for i in range(int(len(frames) * send_fps / fps))]


def replay(frames: list[Any], challenges: str, rates=None, changes: dict[float, dict[float, tuple[float, float]]] | None = None) -> dict[str, Any]:
    """The engine on the frames (all of them without `rates`, else paced by each step's rate, and with
    `changes`, the change watch's cue from `clip_signals`, adding frames as it does live): its verdict,
    the frames analysed and the seconds each step lasted."""
    from server.liveness.analyzer import frame_due
    from server.liveness.challenges import parse_challenges
    from server.liveness.engine import LivenessEngine

    engine = LivenessEngine(parse_challenges(challenges), step_rates=rates)
    last_t, analysed, steps = None, 0, {}
    step, since = None, frames[0].t if frames else 0.0
    reference = None  # the change watch's: the last analysed frame with one face and open eyes
    for s in frames:
        if rates is not None and not frame_due(s.t, last_t, engine.needed_fps()) and not _watch_asks(engine, changes, reference, s.t):
            continue
        reference = _reference(engine, s, reference)
        now = engine.step()
        if now != step:
            if step is not None:
                steps[step] = steps.get(step, 0.0) + s.t - since
            step, since = now, s.t
        last_t, analysed = s.t, analysed + 1
        if engine.update(s).result is not None:
            break
    result = engine.result or engine.finish(frames[-1].t)
    if step is not None:
        steps[step] = steps.get(step, 0.0) + result.finished_at - since
    return {
        "passed": result.passed,
        "reason": result.reason.value if result.reason else None,
        "frames_analysed": analysed,
        "seconds": round(result.finished_at - result.started_at, 3),
        "step_seconds": steps,
    }


def _watch_asks(engine, changes: dict[float, dict[float, tuple[float, float]]] | None, reference: float | None, t: float) -> bool:
    """The change watch's cue for the frame at t, as the live analyzer takes it (change_watch.ChangeWatch);
    a reference further back than the frames compared counts as changed (live, it is kept)."""
    from server.liveness import change_watch

    if changes is not None and change_watch.stretch_due(engine, t):
        return True
    step = change_watch.watched_step(engine)
    if changes is None or reference is None or step is None:
        return False
    return change_watch.asks(step, *changes.get(t, {}).get(reference, (float("inf"), float("inf"))))


def _reference(engine, s, reference: float | None) -> float | None:
    from server.liveness import change_watch

    return s.t if change_watch.reference_frame(engine, s) else reference if s.face_count == 1 else None


def replay_sent(frames: list[Any], challenges: str, rates, lag_s: float) -> dict[str, Any]:
    """The engine on the frames the camera captures (`frames`, at `rates.send_fps`) when the page sends
    each step at `rates.sent_fps(step)` from `lag_s` after the step began (a data-channel message and the
    encoder's next frame), keeping the frames Chromium keeps at that rate (`client.sent_at`), and each
    sent frame analysed at the step's rate: its verdict, and the frames sent and analysed."""
    from server.liveness.analyzer import frame_due
    from server.liveness.challenges import parse_challenges
    from server.liveness.engine import LivenessEngine

    from ..client import sent_at

    engine = LivenessEngine(parse_challenges(challenges), step_rates=rates)
    asked = [(float("-inf"), rates.sent_fps(engine.step()))]  # (from, frames a second): the page's rate over time
    last_t, sent_count, analysed = None, 0, 0
    for index, s in enumerate(frames):
        if not sent_at(index, rates.send_fps, next(fps for since, fps in reversed(asked) if since <= s.t)):
            continue
        sent_count += 1
        if not frame_due(s.t, last_t, engine.needed_fps()):
            continue
        last_t, analysed = s.t, analysed + 1
        if engine.update(s).result is not None:
            break
        wanted = rates.sent_fps(engine.step())
        if wanted != asked[-1][1]:
            asked.append((s.t + lag_s, wanted))
    result = engine.result or engine.finish(frames[-1].t)
    return {
        "passed": result.passed,
        "reason": result.reason.value if result.reason else None,
        "frames_sent": sent_count,
        "frames_analysed": analysed,
        "seconds": round(result.finished_at - result.started_at, 3),
    }


def sent_rates(
    videos: str | Path,
    lags: tuple[float, ...] = (0.1, 0.3, 0.5),
    cases: list[tuple[str, str, str]] | None = None,
    sent_fps: dict[str, float] | None = None,
    clips: dict[str, tuple[list[Any], float, dict[float, dict[float, tuple[float, float]]]]] | None = None,
) -> dict[str, Any]:
    """The page sending each step at its rate (rates.py `_sent`), the rate heard `lag` seconds late, against
    every frame sent (20 fps) and each step analysed at its rate: every verdict of the clip cases, from
    every sampling phase, and the frames received and analysed a second."""
    from server.liveness.rates import StepRates

    folder = Path(videos)
    rates = StepRates() if sent_fps is None else StepRates().with_sent(sent_fps)
    full = rates.with_sent({})
    rows, missing = [], []
    clips = {} if clips is None else clips
    for clip, challenges, _expected in cases or CASES:
        path = folder / clip
        if not path.is_file():
            missing.append(clip)
            continue
        if clip not in clips:
            clips[clip] = clip_signals(path)
        frames, fps, _changes = clips[clip]
        for p in range(PHASES):
            stream = sent(frames, fps, rates.send_fps, p)
            every = replay_sent(stream, challenges, full, 0.0)
            for lag in lags:
                paced = replay_sent(stream, challenges, rates, lag)
                rows.append({"clip": clip, "challenges": challenges, "phase": p, "lag_s": lag, "every": every, "paced": paced})
    changed = [
        f"{r['clip']} {r['challenges']} phase {r['phase']} lag {r['lag_s']}: {_verdict(r['every'])} -> {_verdict(r['paced'])}"
        for r in rows
        if _verdict(r["every"]) != _verdict(r["paced"]) or (r["paced"]["passed"] and r["paced"]["seconds"] > r["every"]["seconds"] + LATER_S)
    ]

    def per_second(rows: list[dict], key: str, count: str) -> float | None:
        seconds = sum(r[key]["seconds"] for r in rows)
        return round(sum(r[key][count] for r in rows) / seconds, 2) if seconds else None

    first = [r for r in rows if r["lag_s"] == lags[0]]
    return {
        "sent_fps": {step: rates.sent_fps(step) for step in rates.fps},
        "lags_s": list(lags),
        "replays": len(rows),
        "missing": missing,
        "changed": changed,
        "verdicts_unchanged": not changed,
        "received_fps_before": per_second(first, "every", "frames_sent"),
        "analysed_fps_before": per_second(first, "every", "frames_analysed"),
        **{f"received_fps_lag_{lag:g}": per_second([r for r in rows if r["lag_s"] == lag], "paced", "frames_sent") for lag in lags},
        **{f"analysed_fps_lag_{lag:g}": per_second([r for r in rows if r["lag_s"] == lag], "paced", "frames_analysed") for lag in lags},
    }


def render_sent_rates(data: dict[str, Any]) -> str:
    lines = ["step sent at (fps): " + ", ".join(f"{step} {fmt(fps)}" for step, fps in data["sent_fps"].items())]
    lines.append(
        f"{data['replays']} replays (cases x {PHASES} phases x the rate heard {', '.join(f'{lag:g}' for lag in data['lags_s'])} s late): "
        f"verdicts unchanged: {data['verdicts_unchanged']}; received fps {data['received_fps_before']} -> "
        + ", ".join(f"{data[f'received_fps_lag_{lag:g}']} ({lag:g} s)" for lag in data["lags_s"])
        + f"; analysed fps {data['analysed_fps_before']} -> " + ", ".join(f"{data[f'analysed_fps_lag_{lag:g}']} ({lag:g} s)" for lag in data["lags_s"])
    )
    lines += [f"  changed: {line}" for line in data["changed"]]
    return "\n".join(lines)


def _verdict(outcome: dict[str, Any]) -> tuple[bool, str | None]:
    return outcome["passed"], outcome["reason"]


def step_rates(
    videos: str | Path,
    cases: list[tuple[str, str, str]] | None = None,
    ladder: tuple[float, ...] = LADDER,
    clips: dict[str, tuple[list[Any], float, dict[float, dict[float, tuple[float, float]]]]] | None = None,
) -> dict[str, Any]:
    """`clips`: the clips' signals by name, as `clip_signals` makes them (computed here when missing)."""
    from server.liveness.rates import STEPS, StepRates

    folder = Path(videos)
    base = StepRates()
    started = time.perf_counter()
    clips = {} if clips is None else clips
    runs = []
    missing = []
    by_send_rate = []  # cases whose verdict, with every frame sent, differs from every frame of the clip
    for clip, challenges, expected in cases or CASES:
        path = folder / clip
        if clip not in clips:
            if not path.is_file():
                missing.append(clip)
                continue
            clips[clip] = clip_signals(path)
        frames, fps, changes = clips[clip]
        # The reference: every frame the page sends, from each phase; the rates are measured against it.
        every = [replay(sent(frames, fps, base.send_fps, p), challenges) for p in range(PHASES)]
        for p in range(PHASES):
            whole = replay(frames[p:], challenges)
            if _verdict(whole) != _verdict(every[p]):
                by_send_rate.append(f"{clip} {challenges} phase {p}: {_verdict(whole)} -> {_verdict(every[p])}")
        runs.append((clip, challenges, expected, frames, fps, every, changes))
    signals_s = time.perf_counter() - started

    def changed(rates: StepRates) -> list[str]:
        """The cases (and phases) whose verdict differs from every frame's, at these rates."""
        out = []
        for clip, challenges, _, frames, fps, every, changes in runs:
            for p in range(PHASES):
                paced = replay(sent(frames, fps, rates.send_fps, p), challenges, rates, changes)
                if _verdict(paced) != _verdict(every[p]):
                    out.append(f"{clip} {challenges} phase {p}: {_verdict(every[p])} -> {_verdict(paced)}")
                elif paced["passed"] and paced["seconds"] > every[p]["seconds"] + LATER_S:
                    out.append(f"{clip} {challenges} phase {p}: passed {paced['seconds'] - every[p]['seconds']:.2f} s later")
        return out

    baseline_changes = changed(base)
    # From every frame at every step, step by step lowered, the others at the rates chosen so far: the
    # chosen set holds together by construction.
    chosen = StepRates({step: 0.0 for step in STEPS}, base.send_fps)
    steps: dict[str, Any] = {}
    for step in STEPS:
        lowest, failed, why = None, None, []
        for rate in ladder:
            if rate > base.send_fps:
                continue
            trial = chosen.with_rate(step, 0.0 if rate >= base.send_fps else rate)
            why = changed(trial)
            if why:
                failed = rate
                break
            lowest = rate
        if lowest is not None:
            chosen = chosen.with_rate(step, 0.0 if lowest >= base.send_fps else lowest)
        steps[step] = {
            "current_fps": base.effective(step),
            "lowest_unchanged_fps": lowest,
            "first_changed_fps": failed,  # the margin: the next rung down changed a verdict
            "changed_at_first_changed": why if failed is not None else [],
            "chosen_fps": chosen.effective(step),
        }
    # Each step's margin as the service runs: lowered alone, the other steps at their rates (rates.py).
    for step in STEPS:
        lowest, failed, why = None, None, []
        for rate in ladder:
            if rate > base.send_fps:
                continue
            why = changed(base.with_rate(step, 0.0 if rate >= base.send_fps else rate))
            if why:
                failed = rate
                break
            lowest = rate
        steps[step]["alone"] = {"lowest_unchanged_fps": lowest, "first_changed_fps": failed, "changed_at_first_changed": why if failed else []}
    # The frames analysed and the time per step at the rates before and after.
    totals: dict[str, Any] = {}
    shares: dict[str, float] = {}
    current_shares: dict[str, float] = {}
    for name, rates in (("current", base), ("chosen", chosen)):
        frames_analysed, seconds, expected_ok, passed_s = 0, 0.0, True, 0.0
        for _clip, challenges, expected, frames, fps, _, changes in runs:
            outcome = replay(sent(frames, fps, rates.send_fps, 0), challenges, rates, changes)
            frames_analysed += outcome["frames_analysed"]
            seconds += outcome["seconds"]
            expected_ok = expected_ok and _as_expected(outcome, expected)  # from phase 0
            passed_s += outcome["seconds"] if outcome["passed"] else 0.0
            for step, s in outcome["step_seconds"].items():
                into = shares if name == "chosen" else current_shares
                into[step] = into.get(step, 0.0) + s
        totals[name] = {
            "frames_analysed": frames_analysed,
            "check_seconds": round(seconds, 1),
            "mean_analysed_fps": round(frames_analysed / seconds, 2) if seconds else None,
            "all_as_expected": expected_ok,
            "passed_checks_seconds": round(passed_s, 2),  # the customers' time, on the cases that pass
        }
    whole = sum(shares.values()) or 1.0
    current_whole = sum(current_shares.values()) or 1.0
    return {
        "send_fps": base.send_fps,
        "phases": PHASES,
        "ladder": list(ladder),
        "cases": len(runs),
        "missing": missing,
        "changed_at_current_rates": baseline_changes,
        # Every frame at send_fps against every frame of the clip (its own rate): what the send rate alone does.
        "changed_by_send_rate": by_send_rate,
        "steps": steps,
        "chosen": {step: chosen.of(step) for step in STEPS},
        "step_time_share": {step: round(s / whole, 3) for step, s in sorted(shares.items())},
        # At the current rates (rates.TIME_SHARE holds these: the admission plans by them).
        "step_time_share_current": {step: round(s / current_whole, 3) for step, s in sorted(current_shares.items())},
        "totals": totals,
        "verdicts_unchanged": not changed(chosen),
        "signals_s": round(signals_s, 1),
    }


def render_step_rates(data: dict[str, Any]) -> str:
    lines = [
        f"{'step':<12} {'now fps':>8} {'lowest unchanged':>17} {'first changed':>14} {'chosen':>7}  time share"
        f"  {'alone: lowest':>13} {'first changed':>14}  time share now"
    ]
    for step, row in data["steps"].items():
        alone = row.get("alone") or {}
        lines.append(
            f"{step:<12} {fmt(row['current_fps']):>8} {fmt(row['lowest_unchanged_fps']):>17} {fmt(row['first_changed_fps']):>14} "
            f"{fmt(row['chosen_fps']):>7}  {fmt(data['step_time_share'].get(step), 3):>10}  {fmt(alone.get('lowest_unchanged_fps')):>13} "
            f"{fmt(alone.get('first_changed_fps')):>14}  {fmt(data['step_time_share_current'].get(step), 3)}"
        )
    t = data["totals"]
    lines.append(
        f"{data['cases']} cases x {data['phases']} phases at {data['send_fps']:g} fps sent: verdicts unchanged at the current rates: "
        f"{not data['changed_at_current_rates']}, at the chosen ones: {data['verdicts_unchanged']}; "
        f"mean analysed fps per check at the current rates {t['current']['mean_analysed_fps']}, at the chosen ones {t['chosen']['mean_analysed_fps']}"
    )
    return "\n".join(lines)
