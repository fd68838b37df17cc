"""Command line: `python -m server [serve]`, and the offline tools that share the service's code paths."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from .config import ConfigError, describe_settings, effective_settings, load_settings
from .console import fail as _fail
from .console import print_json as _print_json
from .privacy.modes import Retention, check_in_person_url


def _quiet_native_logs() -> None:
    # MediaPipe and TFLite write informational lines to stderr from C++; keep tool output clean.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cmd_serve(args: argparse.Namespace) -> int:
    from .app import run

    settings = load_settings(args.config, host=args.host, port=args.port)
    run(settings)
    return 0


def cmd_liveness(args: argparse.Namespace) -> int:
    from .liveness.analyzer import load_pad_models
    from .liveness.challenges import ChallengeListError, parse_challenges
    from .liveness.replay import VideoError, replay_video
    from .models.files import ModelFileError
    from .models.loader import landmarker_file
    from .spoof.calibration import PadCalibrationError

    try:
        challenges = parse_challenges(args.challenges)
        settings = load_settings(args.config)
        pad_dir = args.pad_model_dir or settings.pad_model_dir
        pad_models = load_pad_models(pad_dir, settings.pad_calibration_file) if pad_dir else None
        report = replay_video(
            args.video,
            challenges,
            landmarker_file(settings.landmarker_model, settings.models_dir),
            challenge_timeout_s=args.timeout_s if args.timeout_s is not None else settings.challenge_timeout_s,
            start_timeout_s=settings.start_timeout_s,
            pad_models=pad_models,
        )
    except ChallengeListError as error:
        return _fail("bad_challenges", str(error), args.json)
    except VideoError as error:
        return _fail(error.code, str(error), args.json)
    except (ModelFileError, PadCalibrationError, ConfigError) as error:
        return _fail("configuration", str(error), args.json)
    if args.reference:
        return _judge_clip(args, settings, report)
    data = report.to_dict()
    if args.json:
        _print_json(data)
    else:
        verdict = "PASSED" if data["passed"] else f"FAILED ({data['reason']}{': ' + data['detail'] if data['detail'] else ''})"
        print(f"{verdict}; {data['frames']} frames analysed at {data['analysed_fps']} fps")
        for c in data["challenges"]:
            state = "passed" if c["passed"] else "not passed"
            print(f"  {c['type']:<11} asked at {c['asked_at_s']} s, completed at {c['completed_at_s']} s: {state}")
        pad = data["pad"]
        print(f"passive anti-spoofing: {pad['verdict']}" + (f", score {pad['score']} over {pad['frames_scored']} frames" if pad["score"] is not None else ""))
        for signal in data["signals"]:
            print(f"  signal {signal['code']} ({signal['level']}, action {signal['action']})")
    return 0


def _judge_clip(args: argparse.Namespace, settings, report) -> int:
    """The clip's whole decision against an ID photo, as a check on a live key (or --sandbox) would make it."""
    from .flow.offline import judge_clip
    from .matching.calibration import CalibrationError
    from .matching.faces import FaceError
    from .matching.images import ImageError, decode_image
    from .models.files import ModelFileError
    from .spoof.signals import SignalCode

    try:
        matcher = _matcher(settings)
    except (ModelFileError, CalibrationError) as error:
        return _fail("configuration", str(error), args.json)
    try:
        with open(args.reference, "rb") as stream:
            photo = decode_image(stream.read(settings.max_upload_bytes + 1), settings.max_upload_bytes, settings.max_image_pixels)
        waived = frozenset({SignalCode.PAD_UNAVAILABLE}) if settings.approve_without_anti_spoofing else frozenset()
        judgement = judge_clip(report, matcher, photo, sandbox=args.sandbox, waived=waived)
    except OSError as error:
        return _fail("unreadable_image", f"{args.reference}: {error.strerror}", args.json)
    except (ImageError, FaceError) as error:
        return _fail(error.code, f"{args.reference}: {error.message}", args.json)
    data = judgement.to_dict()
    if args.json:
        _print_json(data)
        return 0
    why = data["failure_reason"] or ""
    if data["attacks"]:
        why += f": {', '.join(data['attacks'])}"
    if data["review_because"]:
        why = f"because of {', '.join(data['review_because'])}"
    print(f"{data['status'].upper()}{' (' + why + ')' if why else ''} on a {'sandbox' if args.sandbox else 'live'} key")
    print(f"  challenges {'passed' if data['passed'] else 'not passed'}; passive anti-spoofing: {data['pad']['verdict']}")
    if data["match"] is not None:
        print(f"  face match {data['match']['decision']}: score {data['match']['score']}")
    for signal in data["signals"]:
        print(f"  signal {signal['code']} ({signal['level']}, action {signal['action']})")
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


def cmd_read_document(args: argparse.Namespace) -> int:
    import datetime as dt

    from .documents.reader import DocumentReader
    from .errors import RealnameError
    from .matching.images import decode_image

    settings = load_settings(args.config)
    try:
        with open(args.image, "rb") as stream:
            data = stream.read(settings.max_upload_bytes + 1)
        image = decode_image(data, settings.max_upload_bytes, settings.max_image_pixels)
        reading = DocumentReader(args.models_dir or settings.models_dir).read_image(image, dt.date.today())
        if reading.lines_read == 0:
            return _fail("no_text", f"{args.image}: no text could be read; photograph the document flat, sharp and without glare", args.json)
    except OSError as error:
        return _fail("unreadable_image", f"{args.image}: {error.strerror}", args.json)
    except RealnameError as error:
        return _fail(error.code, f"{args.image}: {error.message}", args.json)
    data = reading.to_dict()
    if args.json:
        _print_json(data)
        return 0
    print(f"{data['type']}: checks {'passed' if data['checks_passed'] else 'FAILED'}; expired: {data['expired']}; age: {data['age']}")
    for name, value in data["fields"].items():
        print(f"  {name:<18} {value['value']}  ({value['confidence']:.2f})")
    for check in data["checks"]:
        print(f"  check {check['code']}: {({True: 'passed', False: 'FAILED', None: 'not made'})[check['passed']]}")
    return 0


def cmd_eval_match(args: argparse.Namespace) -> int:
    from realname_tools.plots import plot_match_scores

    from .matching.calibration import CalibrationError
    from .matching.evaluation import PairsError, evaluate, read_pairs, stderr_progress
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
        plot_match_scores(evaluation, matcher, args.plot)
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
    from realname_tools.cards import write_card_set

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
    from .storage.crypto import Cipher, ensure_private_dir, load_evidence_key
    from .storage.store import Store

    data = ensure_private_dir(settings.data_path)
    # The key's place is warned about once, at the service's start and in `settings`, not by every command.
    return Store(settings.database_location, Cipher(load_evidence_key(settings.evidence_key, settings.evidence_key_file, data, warn=False)))


def cmd_merchants(args: argparse.Namespace) -> int:
    from .storage.face_data import FaceDataRecords
    from .storage.store import DuplicateError
    from .web.framing import OriginError, parse_origins

    settings = load_settings(args.config)
    store = _store(settings)
    try:
        if args.merchants_command == "create":
            try:
                merchant = store.create_merchant(args.name, args.display_name)
            except DuplicateError as error:
                return _fail("exists", str(error), args.json)
            store.audit("operator", "merchant.created", detail={"merchant": merchant.name})
            if args.json:
                _print_json({"name": merchant.name, "display_name": merchant.display_name})
            else:
                print(f"Created merchant {merchant.name!r} (customers see {merchant.display_name!r}).")
                print(f"Create its API key with: python -m server keys create --merchant {merchant.name!r}")
        elif args.merchants_command == "set-display-name":
            merchant = store.merchant_by_name(args.name)
            if merchant is None:
                return _fail("not_found", f"no merchant named {args.name!r}", args.json)
            store.set_display_name(merchant.id, args.display_name)
            store.audit("operator", "merchant.display_name", detail={"merchant": merchant.name})
            print(f"Customers of {merchant.name!r} now see {args.display_name!r}.")
        elif args.merchants_command == "set-privacy":
            return _set_privacy(store, args)
        elif args.merchants_command == "set-frame-origins":
            merchant = store.merchant_by_name(args.name)
            if merchant is None:
                return _fail("not_found", f"no merchant named {args.name!r}", args.json)
            try:
                origins = parse_origins(args.origins)
            except OriginError as error:
                return _fail("invalid_origin", str(error), args.json)
            store.set_frame_origins(merchant.id, origins)
            store.audit("operator", "merchant.frame_origins", detail={"merchant": merchant.name, "origins": origins})
            if args.json:
                _print_json({"name": merchant.name, "frame_origins": origins})
            elif origins:
                print(f"The widget may open {merchant.name!r}'s hosted pages on: {' '.join(origins)}")
            else:
                print(f"No page may frame {merchant.name!r}'s hosted pages (the widget opens them in a new tab).")
        else:
            keys, census = store.api_keys(), FaceDataRecords(store).census(settings.face_data_filing_threshold)
            rows = [
                {
                    "name": m.name,
                    "display_name": m.display_name,
                    "active_keys": sum(1 for k in keys if k.merchant_id == m.id and k.revoked_at is None),
                    "retention": m.retention,
                    "in_person_url": m.in_person_url,
                    "face_data_individuals": census.of(m.id),
                }
                for m in store.merchants()
            ]
            if args.json:
                _print_json(rows)
            for row in [] if args.json else rows:
                print(
                    f"{row['name']:<24} {row['display_name']:<32} {row['active_keys']} active key(s), {row['retention']} retention, "
                    f"face data of {row['face_data_individuals']} people stored{', in person: ' + row['in_person_url'] if row['in_person_url'] else ''}"
                )
    finally:
        store.close()
    return 0


def _set_privacy(store, args: argparse.Namespace) -> int:
    merchant = store.merchant_by_name(args.name)
    if merchant is None:
        return _fail("not_found", f"no merchant named {args.name!r}", args.json)
    retention = Retention(args.retention or merchant.retention)
    url = merchant.in_person_url
    if args.no_in_person_url:
        url = None
    elif args.in_person_url is not None:
        try:
            url = check_in_person_url(args.in_person_url)
        except ValueError as error:
            return _fail("bad_url", str(error), args.json)
    store.set_privacy(merchant.id, retention, url)
    store.audit("operator", "merchant.privacy", detail={"merchant": merchant.name, "retention": retention.value, "in_person_url": url})
    if args.json:
        _print_json({"name": merchant.name, "retention": retention.value, "in_person_url": url})
    else:
        print(f"{merchant.name!r}: {retention.value} retention; alternative to the face check: {url or 'none offered'}.")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from .api.auth import KeyLookupError, create_api_key, hash_key, revoke_api_key
    from .storage.store import DuplicateError
    from .webhooks import standard_secret

    store = _store(load_settings(args.config))
    try:
        if args.keys_command == "create":
            merchant = store.merchant_by_name(args.merchant)
            if merchant is None:
                hint = f"create it first: python -m server merchants create {args.merchant!r} --display-name 'Shown to customers'"
                return _fail("not_found", f"no merchant named {args.merchant!r}; {hint}", args.json)
            try:
                key, secret = create_api_key(store, merchant, args.sandbox, args.name)
            except DuplicateError as error:
                return _fail("exists", str(error), args.json)
            created = store.api_key_by_hash(hash_key(key))
            if args.json:
                _print_json(
                    {
                        "merchant": merchant.name,
                        "name": created.name,
                        "sandbox": args.sandbox,
                        "api_key": key,
                        "webhook_secret": secret,
                        "standard_webhook_secret": standard_secret(secret.encode()),
                    }
                )
            else:
                kind = "sandbox" if args.sandbox else "live"
                print(f"Created {kind} API key {created.name!r} of {merchant.name!r}. Both values are shown only now; store them safely.")
                print(f"  API key:        {key}")
                print(f"  Webhook secret: {secret}")
                print(f"  The same secret for Standard Webhooks libraries: {standard_secret(secret.encode())}")
        elif args.keys_command == "revoke":
            try:
                revocation = revoke_api_key(store, args.key, args.merchant)
            except KeyLookupError as error:
                return _fail("not_found" if str(error).startswith("no ") else "ambiguous", str(error), args.json)
            key = revocation.key
            if revocation.other_active_keys:
                consequence = (
                    f"{revocation.open_sessions} open session(s) it created keep working; "
                    f"the merchant's {revocation.other_active_keys} other active key(s) can still read and erase them."
                )
            else:
                consequence = (
                    f"It was {key.merchant!r}'s last active key: {revocation.open_sessions} open session(s) keep working, "
                    f"but nobody can read or erase them through the API until you create a new key "
                    f"(keys create --merchant {key.merchant!r})."
                )
            if args.json:
                _print_json(
                    {"revoked": key.prefix, "merchant": key.merchant, "name": key.name,
                     "open_sessions": revocation.open_sessions, "other_active_keys": revocation.other_active_keys}
                )
            else:
                print(f"Revoked {key.prefix}… ({key.merchant} / {key.name}). {consequence}")
        else:
            merchant = store.merchant_by_name(args.merchant) if args.merchant is not None else None
            if args.merchant is not None and merchant is None:
                return _fail("not_found", f"no merchant named {args.merchant!r}", args.json)
            keys = store.api_keys(merchant.id if merchant else None)
            if args.json:
                _print_json(
                    [{"prefix": k.prefix, "merchant": k.merchant, "name": k.name, "sandbox": k.sandbox, "revoked": bool(k.revoked_at)} for k in keys]
                )
            for key in [] if args.json else keys:
                state = "revoked" if key.revoked_at else "active"
                print(f"{key.prefix}…  {key.merchant:<24} {key.name:<16} {'sandbox' if key.sandbox else 'live':<8} {state}")
    finally:
        store.close()
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    if args.markdown:
        for env, default, doc in describe_settings():
            print(f"| `{env}` | `{default}` | {doc} |")
        return 0
    from .storage.crypto import evidence_key_warning

    settings, rows = effective_settings(args.config)
    if args.json:
        _print_json([{"env": r.env, "value": json.loads(r.value), "source": r.source} for r in rows])
        return 0
    for row in rows:
        print(f"{row.env}={row.value}  ({row.source})\n    {row.doc}")
    warning = evidence_key_warning(settings.evidence_key, settings.evidence_key_file, settings.data_path)
    if warning:
        print(f"\nwarning: {warning}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from realname_tools.bench.cli import add_parser as add_bench_parser
    from realname_tools.bench.soak import add_parser as add_soak_parser
    from realname_tools.bench_gallery import add_parser as add_bench_gallery_parser
    from realname_tools.customer_time import add_parser as add_customer_time_parser
    from realname_tools.eval_documents import add_parser as add_eval_documents_parser
    from realname_tools.eval_duplicates import add_parser as add_eval_duplicates_parser
    from realname_tools.eval_injection import add_parser as add_eval_injection_parser
    from realname_tools.eval_pad import add_parser as add_eval_pad_parser
    from realname_tools.pad_attacks import add_parser as add_pad_attacks_parser

    from .gallery.commands import add_parser as add_gallery_parser
    from .models.commands import add_parser as add_models_parser
    from .operators.commands import add_parser as add_operators_parser
    from .privacy.commands import add_parser as add_privacy_parser
    from .receipts.commands import add_parser as add_receipts_parser

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
    live.add_argument("--pad-model-dir", dest="pad_model_dir", help="passive anti-spoofing models (default: REALNAME_PAD_MODEL_DIR)")
    live.add_argument("--reference", metavar="PHOTO", help="the ID photo: judge the whole check (match, reference_replay, decision)")
    live.add_argument("--sandbox", action="store_true", help="with --reference: judge as on a sandbox key (stream signals only flag)")
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

    document = sub.add_parser("read-document", help="read an ID document photo (resident card, MRZ) and check it")
    document.add_argument("image")
    document.add_argument("--models-dir", dest="models_dir", help="folder `models install` put the OCR models in (default: MODELS_DIR)")
    document.add_argument("--json", action="store_true")
    document.set_defaults(func=cmd_read_document)

    merchants = sub.add_parser("merchants", help="create or list merchant accounts (they own sessions and API keys)")
    merchants_sub = merchants.add_subparsers(dest="merchants_command", required=True)
    m_create = merchants_sub.add_parser("create", help="create a merchant account")
    m_create.add_argument("name", help="unique account name")
    m_create.add_argument("--display-name", help="the name customers see on the hosted pages (default: NAME)")
    m_create.add_argument("--json", action="store_true")
    m_display = merchants_sub.add_parser("set-display-name", help="change the name customers see")
    m_display.add_argument("name")
    m_display.add_argument("display_name")
    m_display.add_argument("--json", action="store_true")
    m_privacy = merchants_sub.add_parser("set-privacy", help="retention mode and the link to verifying without a face check")
    m_privacy.add_argument("name")
    m_privacy.add_argument("--retention", choices=[r.value for r in Retention], help="minimal: biometric data is erased when the decision is final")
    m_privacy.add_argument("--in-person-url", dest="in_person_url", help="https link the consent page offers instead of the face check")
    m_privacy.add_argument("--no-in-person-url", dest="no_in_person_url", action="store_true", help="offer no such link")
    m_privacy.add_argument("--json", action="store_true")
    m_frame = merchants_sub.add_parser("set-frame-origins", help="the origins whose pages may embed the hosted pages (realname.js); none to forbid")
    m_frame.add_argument("name")
    m_frame.add_argument("origins", nargs="*", help="e.g. https://shop.example https://www.shop.example")
    m_frame.add_argument("--json", action="store_true")
    m_list = merchants_sub.add_parser("list", help="list merchant accounts")
    m_list.add_argument("--json", action="store_true")
    merchants.set_defaults(func=cmd_merchants)

    keys = sub.add_parser("keys", help="create, revoke or list merchant API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key of a merchant (shown once)")
    create.add_argument("--merchant", required=True, help="the merchant account's name")
    create.add_argument("--name", help="a name unique within the merchant (default: 'live 1', 'sandbox 1', ...)")
    create.add_argument("--sandbox", action="store_true", help="a test key: sandbox sessions only")
    create.add_argument("--json", action="store_true")
    revoke = keys_sub.add_parser("revoke", help="revoke one key by its prefix or its name; refuses when several match")
    revoke.add_argument("key", help="the key's prefix (rn_live_... as `keys list` shows it) or its name")
    revoke.add_argument("--merchant", help="look for the name among this merchant's keys only")
    revoke.add_argument("--json", action="store_true")
    keys_list = keys_sub.add_parser("list", help="list keys (never their values)")
    keys_list.add_argument("--merchant", help="only this merchant account's keys")
    keys_list.add_argument("--json", action="store_true")
    keys.set_defaults(func=cmd_keys)

    settings = sub.add_parser("settings", help="list every setting in force, with its environment variable and where its value came from")
    settings.add_argument("--markdown", action="store_true", help="the defaults, as the rows of the README's configuration table")
    settings.add_argument("--json", action="store_true")
    settings.set_defaults(func=cmd_settings)
    add_bench_parser(sub)
    add_soak_parser(sub)
    add_models_parser(sub)
    add_operators_parser(sub, _store)
    add_privacy_parser(sub, _store)
    add_receipts_parser(sub)
    add_gallery_parser(sub, _store)
    add_eval_pad_parser(sub)
    add_pad_attacks_parser(sub)
    add_eval_documents_parser(sub)
    add_eval_duplicates_parser(sub)
    add_bench_gallery_parser(sub)
    add_eval_injection_parser(sub)
    add_customer_time_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    _quiet_native_logs()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*(argv or sys.argv[1:]), "serve"])
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .web.security import quiet_third_party_logs

    quiet_third_party_logs()
    try:
        return args.func(args)
    except ConfigError as error:
        return _fail("configuration", str(error), getattr(args, "json", False))
