"""`python -m server pia-report [--lang en|zh-CN] [--format md|json] [--output FILE]`: the impact
assessment from the running configuration (settings, merchant modes, the models it loads)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ..config import Settings, load_settings
from ..models.inventory import ModelIdentity
from ..storage.face_data import FaceDataRecords
from ..storage.store import Store
from ..web.i18n import LOCALES, Translator
from .assessment import MerchantFacts, assessment, to_markdown


def render_report(settings: Settings, store: Store, models: Sequence[ModelIdentity], lang: str, fmt: str) -> str:
    t = Translator(lang)
    merchants = [MerchantFacts(m.id, m.name, m.retention, m.in_person_url) for m in store.merchants()]
    report = assessment(settings, merchants, FaceDataRecords(store).census(settings.face_data_filing_threshold), models, t, time.time())
    if fmt == "json":
        return json.dumps({"lang": t.locale, **report}, ensure_ascii=False, indent=2) + "\n"
    return to_markdown(report, t)


def cmd_pia_report(open_store: Callable[[Settings], Store], args: argparse.Namespace) -> int:
    from ..app import load_models  # the models the service would run, checksummed (a few seconds)

    settings = load_settings(args.config)
    models = load_models(settings)
    store = open_store(settings)
    try:
        text = render_report(settings, store, models.inventory, args.lang, args.format)
    finally:
        store.close()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text, end="")
    return 0


def add_parser(sub: argparse._SubParsersAction, open_store: Callable[[Settings], Store]) -> None:
    report = sub.add_parser("pia-report", help="the personal-information protection impact assessment, from the running configuration")
    report.add_argument("--lang", choices=LOCALES, default="en")
    report.add_argument("--format", choices=("md", "json"), default="md")
    report.add_argument("--output", help="write to this file instead of standard output")
    report.set_defaults(func=lambda args: cmd_pia_report(open_store, args))
