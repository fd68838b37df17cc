"""Per-frame cost of the analysis, offline: the bare landmarker against the whole engine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .customers import percentile
from .options import (
    CORES,
    DEFAULT_CHALLENGES,
    TARGET_ENGINE_OVERHEAD,
    TARGET_FPS,
    VIDEO_TIME_BASE,
)
from .report import fmt

# -- per-frame cost, offline ----------------------------------------------------------------------


def frame_cost(video: str, frames: int = 300, size: tuple[int, int] | None = (640, 480), max_side: int = 640) -> dict[str, Any]:
    """Per-frame cost of each stage at one resolution, one stream, in this process.

    The bare MediaPipe call (`bare_call`: its public call on a ready RGB image, the Python result included) and the
    whole analysis (`LivenessAnalyzer.analyse_frame` from a decoded video frame: colour conversion,
    landmarks, signals, engine) run interleaved on the same frames, each with its own landmarker, so both
    see the same machine. VP8 encode (the sender's work) and decode (the server's) are measured too.
    """
    import mediapipe as mp
    import numpy as np
    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
    from aiortc.jitterbuffer import JitterFrame

    from server.config import load_settings
    from server.liveness.analyzer import FrameTimings, LivenessAnalyzer, frame_to_rgb
    from server.liveness.challenges import parse_challenges
    from server.liveness.engine import LivenessEngine
    from server.models.loader import landmarker_file, new_landmarker

    from ..client import load_clip

    clip, fps = load_clip(video, max_side=max(max_side, *(size or (0,))))
    if size is not None:
        clip = [f.reformat(width=size[0], height=size[1], format="yuv420p") for f in clip]
    sequence = [clip[i % len(clip)] for i in range(frames)]
    settings = load_settings()
    model = landmarker_file(settings.landmarker_model, settings.models_dir)
    bare = new_landmarker(model)
    bare_run = bare_call(bare)
    timings = FrameTimings()
    analyzer = LivenessAnalyzer(new_landmarker(model), LivenessEngine(parse_challenges(DEFAULT_CHALLENGES), challenge_timeout_s=1e6, start_timeout_s=1e6), timings)
    encoder, decoder = Vp8Encoder(), Vp8Decoder()
    bare_ms, whole_ms, encode_ms, decode_ms = [], [], [], []
    try:
        for index, frame in enumerate(sequence):
            t = index / fps
            rgb = frame_to_rgb(frame)
            image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
            started = time.perf_counter()
            bare_run(image)
            bare_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            analyzer.analyse_frame(frame, t)
            whole_ms.append((time.perf_counter() - started) * 1000)
            copy = frame.reformat(format="yuv420p")
            copy.pts, copy.time_base = index * 3000, VIDEO_TIME_BASE
            started = time.perf_counter()
            payloads, timestamp = encoder.encode(copy)
            encode_ms.append((time.perf_counter() - started) * 1000)
            data = b"".join(vp8_depayload(p) for p in payloads)
            started = time.perf_counter()
            decoder.decode(JitterFrame(data=data, timestamp=timestamp))
            decode_ms.append((time.perf_counter() - started) * 1000)
    finally:
        bare.close()
        analyzer.close()
    skip = min(20, frames // 5)  # the first calls warm caches up

    def stat(values: list[float]) -> dict[str, float | None]:
        values = values[skip:]
        return {"median": _round(statistics.median(values)) if values else None, "p95": percentile(values, 0.95), "mean": _round(statistics.fmean(values)) if values else None}

    whole, raw = stat(whole_ms), stat(bare_ms)
    overhead = (whole["median"] - raw["median"]) / raw["median"] if raw["median"] else None
    return {
        "video": Path(video).name,
        "resolution": f"{sequence[0].width}x{sequence[0].height}",
        "frames": frames,
        "mediapipe_bare_ms": raw,
        "analysis_ms": whole,
        "stages_ms": {
            "colour_conversion": stat(timings.convert_ms),
            "landmarks": stat(timings.landmarks_ms),
            "signals_and_engine": stat(timings.rest_ms),
        },
        "vp8_decode_ms": stat(decode_ms),
        "vp8_encode_ms": stat(encode_ms),
        "engine_overhead": _round(overhead, 3) if overhead is not None else None,
        "engine_overhead_target": TARGET_ENGINE_OVERHEAD,
        "target_met": overhead is not None and overhead <= TARGET_ENGINE_OVERHEAD,
        # Streams this machine could serve at 15 analysed of 30 received fps, counting only analysis and decode
        # (and, second, also the VP8 encoding of a sender on the same machine, as in `bench`).
        "capacity_streams_at_15fps": _capacity(whole["mean"], stat(decode_ms)["mean"], 0.0),
        "capacity_streams_at_15fps_with_local_sender": _capacity(whole["mean"], stat(decode_ms)["mean"], stat(encode_ms)["mean"]),
    }



def bare_call(landmarker, graph_only: bool = False) -> Callable[[Any], None]:
    """The bare landmarker call on a ready mp.Image.

    MediaPipe's public call (`detect`, its result rebuilt as Python objects), or with `graph_only` its
    graph alone, nothing read from the result. The service calls the graph as directly
    (server/models/landmarker.py, _DirectCalls) and so skips about 0.8 ms a frame of the public call's
    Python; the graph alone is the stricter yardstick.
    """
    import ctypes

    direct, task = landmarker._direct, landmarker._task  # noqa: SLF001 - the bare call, on purpose
    if not graph_only or direct is None:  # (this MediaPipe lacks the internals: its public call)
        return task.detect

    def run(image) -> None:
        result = direct.result_type()
        direct.run_graph(task, image, result)
        direct.close_result(ctypes.byref(result))

    return run


YARDSTICKS = {"per_core_ms": False, "graph_per_core_ms": True}  # key -> graph_only


def bare_landmarker_ms(clip: list[Any], fps: float, frames_per_core: int = 200, cores: int = CORES, rounds: int = 3) -> dict[str, Any]:
    """The bare landmarker on the clip's frames (ready RGB images), timed on every core at once.

    One landmarker per core, all running at once, the cores' time per frame (cores x wall time / frames):
    what the machine does when every core runs nothing but the bare call. Cores that share caches or a
    physical core (SMT) each run slower when all are busy, and no server can beat that.

    - `per_core_ms`: MediaPipe's public call, the bare landmarker as MediaPipe ships it; `bench`'s
      `efficiency` is measured against it.
    - `graph_per_core_ms`: the graph alone (`bare_call`), for `efficiency_graph_only`.
    - `one_core_ms`: the public call on one landmarker alone, the median call (the other cores idle).

    Each is timed in `rounds` rounds, the two kinds in turn; each figure is the median of its rounds
    (see `bracketing` for why the median).
    """
    import threading

    import mediapipe as mp
    import numpy as np

    from server.config import load_settings
    from server.liveness.analyzer import frame_to_rgb
    from server.models.loader import landmarker_file, new_landmarker

    settings = load_settings()
    model = landmarker_file(settings.landmarker_model, settings.models_dir)
    images = [mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame_to_rgb(f))) for f in clip[: min(len(clip), 60)]]
    warm = min(20, frames_per_core // 5)  # the first calls warm caches up

    def run(call: Callable[[Any], None], count: int, timings: list[float]) -> None:
        for index in range(count):
            started = time.perf_counter()
            call(images[index % len(images)])
            timings.append((time.perf_counter() - started) * 1000)

    landmarkers = [new_landmarker(model) for _ in range(cores)]
    spans: dict[str, list[float]] = {key: [] for key in YARDSTICKS}
    try:
        alone: list[float] = []
        run(bare_call(landmarkers[0]), frames_per_core, alone)
        for landmarker in landmarkers[1:]:
            run(bare_call(landmarker), warm, [])
        for _ in range(rounds):
            for key, graph_only in YARDSTICKS.items():
                calls = [bare_call(landmarker, graph_only) for landmarker in landmarkers]
                barrier = threading.Barrier(cores + 1)
                ends: list[float] = []

                def busy(call, barrier: threading.Barrier, ends: list[float]) -> None:
                    barrier.wait()
                    started = time.perf_counter()
                    run(call, frames_per_core, [])
                    ends.append(time.perf_counter() - started)

                threads = [threading.Thread(target=busy, args=(call, barrier, ends)) for call in calls]
                for thread in threads:
                    thread.start()
                barrier.wait()
                for thread in threads:
                    thread.join()
                spans[key].append(_round(max(ends) * 1000 / frames_per_core))
    finally:
        for landmarker in landmarkers:
            landmarker.close()
    report: dict[str, Any] = {"one_core_ms": _round(statistics.median(alone[warm:])), "cores": cores}
    for key, values in spans.items():
        report[key] = _round(statistics.median(values))
        report[key + "_rounds"] = values
    return report


def bracketing(before: dict[str, Any], after: dict[str, Any] | None) -> dict[str, Any]:
    """The bare cost timed before and after a bench window, as one yardstick for it.

    A VM's speed drifts by several per cent from minute to minute (other tenants of its host): rounds
    taken on both sides of the window bracket the conditions the service ran in, and their median is the
    machine's speed then (the fastest of a few rounds was tried first: one fast round moved the ratio by
    10 % between runs). Every round is kept in `..._rounds`.
    """
    report: dict[str, Any] = {"cores": before["cores"], "rounds_after_window": len(after["per_core_ms_rounds"]) if after else 0}
    alone = [before["one_core_ms"]] + ([after["one_core_ms"]] if after else [])
    report["one_core_ms"] = _round(statistics.median(alone))
    for key in YARDSTICKS:
        rounds = list(before[key + "_rounds"]) + (list(after[key + "_rounds"]) if after else [])
        report[key] = _round(statistics.median(rounds))
        report[key + "_rounds"] = rounds
    return report


def _capacity(analysis_ms: float | None, decode_ms: float | None, encode_ms: float) -> float | None:
    if not analysis_ms or decode_ms is None:
        return None
    busy_ms_per_s = TARGET_FPS * analysis_ms + 30 * (decode_ms + encode_ms)
    return round(CORES * 1000 / busy_ms_per_s, 1)


def _round(value: float, digits: int = 2) -> float:
    return round(value, digits)


def render_frame_cost(data: dict[str, Any]) -> str:
    def row(name: str, s: dict[str, Any]) -> str:
        return f"  {name:<34} median {fmt(s['median'], 2):>6} ms   p95 {fmt(s['p95']):>6} ms   mean {fmt(s['mean'], 2):>6} ms"

    stages = data["stages_ms"]
    overhead = data["engine_overhead"]
    return "\n".join(
        [
            f"per-frame cost at {data['resolution']} ({data['video']}, {data['frames']} frames, one stream, this process):",
            row("MediaPipe landmarker alone", data["mediapipe_bare_ms"]),
            row("whole analysis (analyse_frame)", data["analysis_ms"]),
            row("  colour conversion", stages["colour_conversion"]),
            row("  landmarks (our wrapper)", stages["landmarks"]),
            row("  signals + engine", stages["signals_and_engine"]),
            row("VP8 decode (server, per stream)", data["vp8_decode_ms"]),
            row("VP8 encode (sender)", data["vp8_encode_ms"]),
            f"engine overhead over the bare call: {fmt(overhead * 100 if overhead is not None else None)} % "
            f"(target <= {data['engine_overhead_target'] * 100:g} %: {'met' if data['target_met'] else 'NOT met'})",
            f"streams at 15 analysed fps that {CORES} cores could carry (analysis + decode only): "
            f"{fmt(data['capacity_streams_at_15fps'])}, with a local sender's VP8 encoding: {fmt(data['capacity_streams_at_15fps_with_local_sender'])}",
        ]
    )


def parse_size(text: str | None) -> tuple[int, int] | None:
    if not text or text == "native":
        return None
    width, _, height = text.lower().partition("x")
    return int(width) // 2 * 2, int(height) // 2 * 2
