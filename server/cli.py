"""Command line: `python -m server [serve]`, and the offline tools that share the service's code paths."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any

from .config import ConfigError, describe_settings, load_settings

EXIT_ERROR = 2


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=None))


def _fail(code: str, message: str, as_json: bool) -> int:
    if as_json:
        _print_json({"error": {"code": code, "message": message}})
    else:
        print(f"error ({code}): {message}", file=sys.stderr)
    return EXIT_ERROR


def _quiet_native_logs() -> None:
    # MediaPipe and TFLite write informational lines to stderr from C++; keep tool output clean.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_serve(args: argparse.Namespace) -> int:
    from .web.app import run

    settings = load_settings(args.config, host=args.host, port=args.port)
    run(settings)
    return 0


def cmd_liveness(args: argparse.Namespace) -> int:
    from .liveness.challenges import ChallengeListError, parse_challenges
    from .liveness.replay import VideoError, replay_video
    from .models.files import ModelFileError
    from .models.loader import landmarker_file

    try:
        challenges = parse_challenges(args.challenges)
        settings = load_settings(args.config)
        report = replay_video(
            args.video,
            challenges,
            landmarker_file(settings.landmarker_model),
            challenge_timeout_s=args.timeout_s if args.timeout_s is not None else settings.challenge_timeout_s,
            start_timeout_s=settings.start_timeout_s,
        )
    except ChallengeListError as error:
        return _fail("bad_challenges", str(error), args.json)
    except VideoError as error:
        return _fail(error.code, str(error), args.json)
    except (ModelFileError, ConfigError) as error:
        return _fail("configuration", str(error), args.json)
    data = report.to_dict()
    if args.json:
        _print_json(data)
    else:
        verdict = "PASSED" if data["passed"] else f"FAILED ({data['reason']}{': ' + data['detail'] if data['detail'] else ''})"
        print(f"{verdict}; {data['frames']} frames analysed at {data['analysed_fps']} fps")
        for c in data["challenges"]:
            state = "passed" if c["passed"] else "not passed"
            print(f"  {c['type']:<11} asked at {c['asked_at_s']} s, completed at {c['completed_at_s']} s: {state}")
    return 0


def _matcher(settings):
    from .matching.calibration import calibration_for
    from .matching.matcher import FaceMatcher
    from .models.loader import load_face_models

    models = load_face_models(settings.face_model_dir)
    calibration = calibration_for(settings.face_model_dir, settings.calibration_file)
    return FaceMatcher(models, calibration, settings.match_far, settings.review_far)


def cmd_match(args: argparse.Namespace) -> int:
    from .matching.calibration import CalibrationError
    from .matching.faces import FaceError
    from .matching.images import ImageError, decode_image
    from .matching.matcher import similarity
    from .models.files import ModelFileError

    try:
        settings = load_settings(args.config)
        matcher = _matcher(settings)
    except (ModelFileError, CalibrationError) as error:
        return _fail("configuration", str(error), args.json)
    faces = []
    for path in (args.id_image, args.live_image):
        try:
            with open(path, "rb") as stream:
                data = stream.read(settings.max_upload_bytes + 1)
            faces.append(matcher.embed_photo(decode_image(data, settings.max_upload_bytes, settings.max_image_pixels)))
        except OSError as error:
            return _fail("unreadable_image", f"{path}: {error.strerror}", args.json)
        except (ImageError, FaceError) as error:
            return _fail(error.code, f"{path}: {error.message}", args.json)
    result = matcher.decide(similarity(faces[0].embedding, faces[1].embedding))
    data = result.to_dict()
    if args.json:
        _print_json({"score": data["score"], "decision": data["decision"], "threshold": data["threshold"],
                     "review_threshold": data["review_threshold"], "far_band": data["far_band"]})
    else:
        print(f"{data['decision']}: score {data['score']} (match at >= {data['threshold']}, review at >= {data['review_threshold']})")
    return 0


def cmd_eval_match(args: argparse.Namespace) -> int:
    from .matching.calibration import CalibrationError
    from .matching.evaluation import PairsError, evaluate, plot, read_pairs, stderr_progress
    from .models.files import ModelFileError

    try:
        settings = load_settings(args.config)
        matcher = _matcher(settings)
        pairs = read_pairs(args.pairs)
    except PairsError as error:
        return _fail("bad_pairs", str(error), args.json)
    except (ModelFileError, CalibrationError) as error:
        return _fail("configuration", str(error), args.json)
    evaluation = evaluate(matcher, pairs, args.root, progress=stderr_progress)
    report = evaluation.report(matcher)
    if args.write_calibration:
        models = matcher.models
        calibration = evaluation.calibration(
            model=models.source,
            model_files=models.files,
            notes=f"measured with eval-match on {args.pairs}",
        )
        calibration.save(args.write_calibration)
        report["calibration_written"] = args.write_calibration
    if args.plot:
        plot(evaluation, matcher, args.plot)
        report["plot_written"] = args.plot
    if args.json:
        _print_json(report)
    else:
        print(f"genuine pairs {report['genuine_pairs']}, impostor pairs {report['impostor_pairs']}")
        print(f"failures to enrol: {report['failed_images']} images ({report['failed_genuine_pairs']} genuine pairs counted as misses)")
        for name, code in report["failures"].items():
            print(f"  {name}: {code}")
        print(f"EER {report['eer']:.2%} at threshold {report['eer_threshold']}")
        for far, row in report["tar_at_far"].items():
            note = "" if row["measurable"] else " (too few impostor pairs to measure)"
            print(f"TAR at FAR {far}: {row['tar']:.2%} (threshold {row['threshold']}){note}")
        for name, row in report["configured"].items():
            print(f"configured {name} threshold {row['threshold']}: TAR {row['tar']:.2%}, FAR {row['far']:.3%}")
        print(f"median time per image (decode, detect, embed): {report['median_image_ms']} ms")
    return 0


def cmd_make_cards(args: argparse.Namespace) -> int:
    from .matching.cards import write_card_set
    from .matching.evaluation import PairsError
    from .models.loader import load_face_models

    settings = load_settings(args.config)
    try:
        detector = load_face_models(settings.face_model_dir).detector
        result = write_card_set(args.pairs, args.root, args.out, detector, keep_photo_pairs=args.keep_photo_pairs)
    except PairsError as error:
        return _fail("bad_pairs", str(error), False)
    print(f"wrote {result}; measure with: python -m server eval-match --pairs {result} --root {args.out}")
    return 0


def _store(settings):
    from .storage.crypto import Cipher, decode_key, ensure_private_dir, load_or_create_key
    from .storage.store import Store

    data = ensure_private_dir(settings.data_path)
    key = decode_key(settings.evidence_key) if settings.evidence_key else load_or_create_key(data / "evidence.key")
    return Store(settings.database_path, Cipher(key))


def cmd_keys(args: argparse.Namespace) -> int:
    from .api.auth import create_api_key

    settings = load_settings(args.config)
    store = _store(settings)
    try:
        if args.keys_command == "create":
            key, secret = create_api_key(store, args.name, args.sandbox)
            if args.json:
                _print_json({"name": args.name, "sandbox": args.sandbox, "api_key": key, "webhook_secret": secret})
            else:
                kind = "sandbox" if args.sandbox else "live"
                print(f"Created {kind} API key {args.name!r}. Both values are shown only now; store them safely.")
                print(f"  API key:        {key}")
                print(f"  Webhook secret: {secret}")
        elif args.keys_command == "revoke":
            count = store.revoke_api_key(args.name)
            if not count:
                return _fail("not_found", f"no active key named or prefixed {args.name!r}", args.json)
            store.audit("operator", "api_key.revoked", detail={"name": args.name})
            print(f"Revoked {count} key(s).")
        else:
            for key in store.api_keys():
                state = "revoked" if key.revoked_at else "active"
                print(f"{key.prefix}…  {key.name:<24} {'sandbox' if key.sandbox else 'live':<8} {state}")
    finally:
        store.close()
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    for env, default, doc in describe_settings():
        print(f"{env}={default}\n    {doc}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import asyncio

    from .bench import BenchError, BenchOptions, frame_cost, parse_size, render_frame_cost, render_report, render_sweep, run_bench, run_sweep

    if args.frame_cost:
        data = frame_cost(args.video, frames=args.frames, size=parse_size(args.size))
        if args.json:
            _print_json(data)
        else:
            print(render_frame_cost(data))
        return 0
    extra_env = dict(item.split("=", 1) for item in args.server_env or [])
    if args.analysis_threads is not None:
        extra_env["REALNAME_ANALYSIS_THREADS"] = str(args.analysis_threads)
    counts = [int(n) for n in args.sessions.split(",")]
    options = BenchOptions(
        sessions=counts[0],
        seconds=args.seconds,
        video=args.video,
        url=args.url,
        api_key=args.api_key,
        server_pid=args.server_pid,
        id_photo=args.id_photo,
        challenges=args.challenges.split(","),
        decision=not args.no_decision,
        decision_video=args.decision_video,
        decision_challenges=args.decision_challenges.split(","),
        profile=args.profile,
        profile_native=args.profile_native,
        warmup_s=args.warmup_s,
        quiet_wait_s=args.quiet_wait,
        encode_live=args.encode_live,
        server_env=extra_env,
        progress=not args.json,
    )
    try:
        report = asyncio.run(run_bench(options) if len(counts) == 1 else run_sweep(options, counts))
    except BenchError as error:
        return _fail("bench_failed", str(error), args.json)
    if args.json:
        _print_json(report)
    else:
        print(render_report(report) if len(counts) == 1 else render_sweep(report))
    return 0


def _add_bench_parser(sub) -> None:
    bench = sub.add_parser("bench", help="measure concurrent live checks on this machine (real API, real WebRTC)")
    bench.add_argument("--video", required=True, help="clip each simulated customer streams, looped at its native rate")
    bench.add_argument("--sessions", default="1", help="simultaneous live checks; a list (1,2,4,8) runs one measurement per count")
    bench.add_argument("--seconds", type=float, default=20.0, help="length of the measurement window")
    bench.add_argument("--json", action="store_true")
    bench.add_argument("--url", help="a running server to measure (default: start one on a temporary data folder)")
    bench.add_argument("--api-key", dest="api_key", help="a sandbox API key of the --url server")
    bench.add_argument("--server-pid", dest="server_pid", type=int, help="process id of the --url server, for its CPU and memory")
    bench.add_argument("--id-photo", dest="id_photo", help="ID photo to upload (default: a frame of the clip)")
    bench.add_argument("--challenges", default="smile", help="fixed challenges of the measured sessions (ones the clip never performs)")
    bench.add_argument("--decision-video", dest="decision_video", help="clip for the decision-latency session (default: --video)")
    bench.add_argument("--decision-challenges", dest="decision_challenges", default="blink", help="challenges that clip performs")
    bench.add_argument("--no-decision", dest="no_decision", action="store_true", help="skip the decision-latency session")
    bench.add_argument("--profile", action="store_true", help="sample the server with py-spy during the window: where the time goes")
    bench.add_argument("--profile-native", dest="profile_native", action="store_true", help="with --profile: include native frames")
    bench.add_argument("--warmup-s", dest="warmup_s", type=float, default=2.0, help="seconds of streaming before the window opens")
    bench.add_argument("--encode-live", dest="encode_live", action="store_true", help="every sender encodes VP8 itself (default: encode once, replay)")
    bench.add_argument("--quiet-wait", dest="quiet_wait", type=float, default=0.0, help="wait up to this many seconds for other processes to go idle")
    bench.add_argument("--analysis-threads", dest="analysis_threads", type=int, help="REALNAME_ANALYSIS_THREADS of a started server")
    bench.add_argument("--server-env", dest="server_env", action="append", metavar="NAME=VALUE", help="another setting of a started server")
    bench.add_argument("--frame-cost", dest="frame_cost", action="store_true", help="measure the per-frame analysis cost offline instead")
    bench.add_argument("--frames", type=int, default=300, help="with --frame-cost: frames to measure")
    bench.add_argument("--size", default="640x480", help="with --frame-cost: WIDTHxHEIGHT to scale frames to, or 'native'")
    bench.set_defaults(func=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description="Realname identity self-registration service.")
    parser.add_argument("--config", help="TOML config file (default: $REALNAME_CONFIG)")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the service (the default command)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    live = sub.add_parser("liveness", help="replay a video file through the liveness engine")
    live.add_argument("video")
    live.add_argument("--challenges", required=True, help="comma-separated, e.g. turn_left,turn_right")
    live.add_argument("--timeout-s", type=float, dest="timeout_s", help="seconds allowed per challenge")
    live.add_argument("--json", action="store_true")
    live.set_defaults(func=cmd_liveness)

    match = sub.add_parser("match", help="compare the faces of two photos (an ID photo and a live photo)")
    match.add_argument("id_image")
    match.add_argument("live_image")
    match.add_argument("--json", action="store_true")
    match.set_defaults(func=cmd_match)

    evalm = sub.add_parser("eval-match", help="measure the face matcher on labelled pairs")
    evalm.add_argument("--pairs", required=True, help="CSV with columns file_a,file_b,same")
    evalm.add_argument("--root", required=True, help="folder the CSV's paths are relative to")
    evalm.add_argument("--json", action="store_true")
    evalm.add_argument("--write-calibration", metavar="FILE", help="write a score-to-FAR calibration measured on these pairs")
    evalm.add_argument("--plot", metavar="FILE.png", help="draw score distributions and the ROC curve")
    evalm.set_defaults(func=cmd_eval_match)

    cards = sub.add_parser("make-cards", help="make photographed-ID-card versions of a pairs list's first images")
    cards.add_argument("--pairs", required=True)
    cards.add_argument("--root", required=True)
    cards.add_argument("--out", required=True)
    cards.add_argument("--keep-photo-pairs", action="store_true", help="also list the original photo pairs")
    cards.set_defaults(func=cmd_make_cards)

    keys = sub.add_parser("keys", help="create, revoke or list merchant API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (shown once)")
    create.add_argument("name")
    create.add_argument("--sandbox", action="store_true", help="a test key: sandbox sessions only")
    create.add_argument("--json", action="store_true")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its name or prefix")
    revoke.add_argument("name")
    revoke.add_argument("--json", action="store_true")
    keys_list = keys_sub.add_parser("list", help="list keys (never their values)")
    keys_list.add_argument("--json", action="store_true")
    keys.set_defaults(func=cmd_keys)

    settings = sub.add_parser("settings", help="list every setting with its environment variable and default")
    settings.set_defaults(func=cmd_settings)
    _add_bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _quiet_native_logs()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*(argv or sys.argv[1:]), "serve"])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except ConfigError as error:
        return _fail("configuration", str(error), getattr(args, "json", False))
