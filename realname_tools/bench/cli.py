"""The `bench` command: its flags come from BenchOptions' fields, so each option is declared once."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from typing import Any

from .options import BenchError, BenchOptions


def add_parser(sub) -> None:
    bench = sub.add_parser("bench", help="measure concurrent live checks on this machine (real API, real WebRTC)")
    for item in dataclasses.fields(BenchOptions):
        help_text, flag = item.metadata.get("help"), item.metadata.get("flag")
        if help_text is None:
            continue
        name = flag or "--" + item.name.replace("_", "-")
        default = item.default if item.default is not dataclasses.MISSING else item.default_factory()  # type: ignore[misc]
        if item.name == "sessions":
            bench.add_argument(name, dest=item.name, default=str(default), help=help_text)
        elif isinstance(default, bool):
            bench.add_argument(name, dest=item.name, action="store_false" if default else "store_true", help=help_text)
        elif isinstance(default, list):
            bench.add_argument(name, dest=item.name, default=",".join(default), help=help_text + " (comma-separated)")
        elif isinstance(default, dict):
            bench.add_argument(name, dest=item.name, action="append", metavar="NAME=VALUE", help=help_text)
        else:
            kind = {"int | None": int, "float | None": float, "float": float, "int": int}.get(str(item.type), type(default) if default is not None else str)
            bench.add_argument(name, dest=item.name, type=kind, default=default, help=help_text)
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--analysis-threads", dest="analysis_threads", type=int, help="REALNAME_ANALYSIS_THREADS of a started server")
    bench.add_argument("--frame-cost", dest="frame_cost", action="store_true", help="measure the per-frame analysis cost offline instead")
    bench.add_argument("--frames", type=int, default=300, help="with --frame-cost: frames to measure")
    bench.add_argument("--size", default="640x480", help="with --frame-cost: WIDTHxHEIGHT to scale frames to, or 'native'")
    bench.add_argument(
        "--frame-rate-cut", dest="frame_rate_cut", metavar="VIDEOS_DIR",
        help="replay the shared clip cases in VIDEOS_DIR with every frame and at the rate each step needs: verdicts and CPU",
    )
    bench.add_argument(
        "--step-rates", dest="step_rates", metavar="VIDEOS_DIR",
        help="the lowest rate each step of a check needs with every verdict of the shared clip cases unchanged, and the margin",
    )
    bench.add_argument(
        "--sent-rates", dest="sent_rates", metavar="VIDEOS_DIR",
        help="replay the shared clip cases as the page sends each step at the rate the server asks for, heard late: verdicts and frames received",
    )
    bench.add_argument(
        "--vp8-kbps", dest="vp8_kbps", type=int, default=0,
        help="with --frame-rate-cut: pass every frame through VP8 at this bitrate first, as a browser sends it",
    )
    bench.set_defaults(func=run)


def options_from(args: argparse.Namespace) -> tuple[BenchOptions, list[int]]:
    values: dict[str, Any] = {}
    for item in dataclasses.fields(BenchOptions):
        if item.metadata.get("help") is None:
            continue
        value = getattr(args, item.name)
        if item.name == "sessions":
            counts = [int(n) for n in str(value).split(",")]
            value = counts[0]
        elif isinstance(value, str) and str(item.type).startswith("list"):
            value = [v for v in value.split(",") if v]
        elif str(item.type).startswith("dict"):
            value = dict(entry.split("=", 1) for entry in value or [])
        values[item.name] = value
    if args.analysis_threads is not None:
        values["server_env"]["REALNAME_ANALYSIS_THREADS"] = str(args.analysis_threads)
    return BenchOptions(**values, progress=not args.json), counts


def run(args: argparse.Namespace) -> int:
    from .frame_cost import frame_cost, parse_size, render_frame_cost
    from .report import render_report
    from .run import render_sweep, run_bench, run_sweep

    if args.frame_rate_cut:
        from .frame_rate_cut import frame_rate_cut, render_frame_rate_cut

        data = frame_rate_cut(args.frame_rate_cut, vp8_kbps=args.vp8_kbps)
        print(json.dumps(data) if args.json else render_frame_rate_cut(data))
        return 0 if data["totals"]["verdicts_unchanged"] else 1
    if args.step_rates:
        from .step_rates import render_step_rates, step_rates

        data = step_rates(args.step_rates)
        print(json.dumps(data) if args.json else render_step_rates(data))
        return 0 if data["verdicts_unchanged"] else 1
    if args.sent_rates:
        from .step_rates import render_sent_rates, sent_rates

        data = sent_rates(args.sent_rates)
        print(json.dumps(data) if args.json else render_sent_rates(data))
        return 0 if data["verdicts_unchanged"] else 1
    if not args.video:
        print(json.dumps({"error": {"code": "bad_arguments", "message": "--video is required"}}) if args.json else "error (bad_arguments): --video is required")
        return 2
    if args.frame_cost:
        data = frame_cost(args.video, frames=args.frames, size=parse_size(args.size))
        print(json.dumps(data) if args.json else render_frame_cost(data))
        return 0
    options, counts = options_from(args)
    if options.upload_loop:
        return _upload_loop(options, args.json)
    if options.leave_fraction is not None:
        return _churn(options, args.json)
    try:
        report = asyncio.run(run_bench(options) if len(counts) == 1 else run_sweep(options, counts))
    except BenchError as error:
        if args.json:
            print(json.dumps({"error": {"code": "bench_failed", "message": str(error)}}))
        else:
            print(f"error (bench_failed): {error}")
        return 2
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(render_report(report) if len(counts) == 1 else render_sweep(report))
    return 0


def _upload_loop(options: BenchOptions, as_json: bool) -> int:
    from .upload_loop import render_upload_loop, run_upload_loop

    try:
        report = asyncio.run(run_upload_loop(options))
    except BenchError as error:
        print(json.dumps({"error": {"code": "bench_failed", "message": str(error)}}) if as_json else f"error (bench_failed): {error}")
        return 2
    print(json.dumps(report, ensure_ascii=False) if as_json else render_upload_loop(report))
    return 0


def _churn(options: BenchOptions, as_json: bool) -> int:
    from .churn import render_churn, run_churn
    from .options import progress

    try:
        report = asyncio.run(run_churn(options, progress))
    except BenchError as error:
        print(json.dumps({"error": {"code": "bench_failed", "message": str(error)}}) if as_json else f"error (bench_failed): {error}")
        return 2
    print(json.dumps(report, ensure_ascii=False) if as_json else render_churn(report))
    return 0
