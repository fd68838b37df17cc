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

    The bare MediaPipe call (`bare_call`: the graph alone on a ready RGB image) and the
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



def bare_call(landmarker) -> Callable[[Any], None]:
    """The landmarker's MediaPipe graph alone on a ready mp.Image: no result read, no Python around it.

    The yardstick of `bench`'s efficiency. MediaPipe's public Python call costs about 0.8 ms more a
    frame (its dispatcher thread and the result rebuilt as Python objects), which the service does not
    pay (server/models/landmarker.py, _DirectCalls); timed with it, the yardstick was that much easier.
    """
    import ctypes

    direct, task = landmarker._direct, landmarker._task  # noqa: SLF001 - the bare call, on purpose
    if direct is None:  # this MediaPipe lacks the internals: its public call
        return task.detect

    def run(image) -> None:
        result = direct.result_type()
        direct.run_graph(task, image, result)
        direct.close_result(ctypes.byref(result))

    return run


def bare_landmarker_ms(clip: list[Any], fps: float, frames_per_core: int = 200, cores: int = CORES, rounds: int = 3) -> dict[str, float]:
    """The bare MediaPipe call on the clip's frames (ready RGB images), timed two ways:

    - `per_core_ms`: one landmarker per core, all running at once, the cores' time per frame (cores x wall
      time / frames). This is what `bench`'s efficiency is measured against: what the machine does when
      every core runs nothing but the bare call. Cores that share caches or a physical core (SMT) each
      run slower when all are busy, and no server can beat that.
    - `one_core_ms`: one landmarker alone, the median call (the other cores idle).

    The all-cores run is repeated `rounds` times; `per_core_ms` is their median, `per_core_ms_fastest`
    the fastest (see `bracketing` for why the median is the yardstick).
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

    calls: dict[int, int] = {}  # per landmarker: its timestamps must keep increasing

    def run(landmarker, count: int, timings: list[float]) -> None:
        first = calls.get(id(landmarker), 0)
        call = bare_call(landmarker)
        for index in range(first, first + count):
            started = time.perf_counter()
            call(images[index % len(images)])
            timings.append((time.perf_counter() - started) * 1000)
        calls[id(landmarker)] = first + count

    landmarkers = [new_landmarker(model) for _ in range(cores)]
    try:
        alone: list[float] = []
        run(landmarkers[0], frames_per_core, alone)
        for landmarker in landmarkers[1:]:
            run(landmarker, warm, [])
        round_spans: list[float] = []
        for _ in range(rounds):
            barrier = threading.Barrier(cores + 1)
            spans: list[float] = []

            def busy(landmarker, barrier: threading.Barrier, spans: list[float]) -> None:
                barrier.wait()
                started = time.perf_counter()
                run(landmarker, frames_per_core, [])
                spans.append(time.perf_counter() - started)

            threads = [threading.Thread(target=busy, args=(landmarker, barrier, spans)) for landmarker in landmarkers]
            for thread in threads:
                thread.start()
            barrier.wait()
            for thread in threads:
                thread.join()
            round_spans.append(max(spans))
    finally:
        for landmarker in landmarkers:
            landmarker.close()
    return {
        "per_core_ms": _round(statistics.median(round_spans) * 1000 / frames_per_core),
        "per_core_ms_fastest": _round(min(round_spans) * 1000 / frames_per_core),
        "per_core_ms_rounds": [_round(span * 1000 / frames_per_core) for span in round_spans],
        "one_core_ms": _round(statistics.median(alone[warm:])),
        "cores": cores,
    }


def bracketing(before: dict[str, Any], after: dict[str, Any] | None) -> dict[str, Any]:
    """The bare cost timed before and after a bench window, as one yardstick for it.

    A VM's speed drifts by several per cent from minute to minute (other tenants of its host): rounds
    taken on both sides of the window bracket the conditions the service ran in, and their median is the
    machine's speed then. The fastest round, the strictest yardstick, is kept as `per_core_ms_fastest`.
    """
    rounds = list(before["per_core_ms_rounds"]) + (list(after["per_core_ms_rounds"]) if after else [])
    alone = [before["one_core_ms"]] + ([after["one_core_ms"]] if after else [])
    return {
        "per_core_ms": _round(statistics.median(rounds)),
        "per_core_ms_fastest": min(rounds),
        "per_core_ms_rounds": rounds,
        "rounds_after_window": len(after["per_core_ms_rounds"]) if after else 0,
        "one_core_ms": _round(statistics.median(alone)),
        "cores": before["cores"],
    }


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
