"""The personal-information protection impact assessment (PIPL art. 55-56; face-recognition measures of
2025, art. 8), generated from the running configuration: what is collected, where it flows, how long it
is kept, who can see it and the safeguards, with each merchant's modes and the models loaded. Its texts
are in the locales (`pia.*`), so the same report reads in English and in Chinese. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..models.inventory import ModelIdentity
from .census import FaceDataCensus
from .modes import Retention

Translate = Callable[..., str]


@dataclass(frozen=True)
class MerchantFacts:
    id: int
    name: str
    retention: str
    in_person_url: str | None


def assessment(
    settings: Settings, merchants: Sequence[MerchantFacts], census: FaceDataCensus, models: Sequence[ModelIdentity], t: Translate, now: float
) -> dict[str, Any]:
    """The report as data: translated sections, and the facts they were drawn from."""
    days, result_days = _number(settings.retention_days), _number(settings.result_retention_days)
    pad = any(m.role == "pad" for m in models)
    minimal = [m.name for m in merchants if m.retention == Retention.MINIMAL]
    facts: dict[str, Any] = {
        "service": settings.base_url,
        "database": "postgresql" if settings.database_url else "sqlite",
        "evidence_retention_days": settings.retention_days,
        "result_retention_days": settings.result_retention_days,
        "anti_spoofing_loaded": pad,
        "approve_without_anti_spoofing": settings.approve_without_anti_spoofing,
        "reads_documents": settings.read_documents,
        "turn_relay": bool(settings.turn_urls or settings.turn_server_url),
        "four_eyes_review": settings.console_four_eyes,
        "max_recording_bytes": settings.max_recording_bytes,
        "face_data": census.health(),
        "merchants": [
            {"name": m.name, "retention": m.retention, "in_person_url": m.in_person_url, "face_data_individuals": census.of(m.id)}
            for m in merchants
        ],
        "models": [m.to_dict() for m in models],
    }
    collected = [
        t("pia.collected.id_photo"),
        t("pia.collected.live"),
        t("pia.collected.recorded", mb=settings.max_recording_bytes // (1024 * 1024)),
        t("pia.collected.templates"),
        t("pia.collected.document") if settings.read_documents else t("pia.collected.no_document"),
        t("pia.collected.reference"),
        t("pia.collected.records"),
    ]
    flows = [t("pia.flows.browser"), t("pia.flows.relay") if facts["turn_relay"] else t("pia.flows.no_relay"), t("pia.flows.merchant"),
             t("pia.flows.storage", database=facts["database"]), t("pia.flows.none")]
    kept = [t("pia.kept.standard", days=days), t("pia.kept.minimal", merchants=", ".join(minimal) if minimal else "-"),
            t("pia.kept.results", days=result_days), t("pia.kept.unfinished")]
    who = [t("pia.who.merchant_api"), t("pia.who.operators"), t("pia.who.service_operator")]
    safeguards = [
        t("pia.safeguards.sealed"),
        t("pia.safeguards.erasure_postgres") if settings.database_url else t("pia.safeguards.erasure"),
        t("pia.safeguards.pad_on") if pad else t("pia.safeguards.pad_off"),
        t("pia.safeguards.consent"),
        t("pia.safeguards.alternative"),
        t("pia.safeguards.receipts"),
        t("pia.safeguards.four_eyes_on") if settings.console_four_eyes else t("pia.safeguards.four_eyes_off"),
        t("pia.safeguards.access"),
    ]
    filing = "pia.filing.due" if census.over_threshold else "pia.filing.not_due"
    sections = [
        ("purpose", [t("pia.purpose.text")]),
        ("collected", collected),
        ("flows", flows),
        ("kept", kept),
        ("who", who),
        ("safeguards", safeguards),
        ("filing", [t(filing, count=census.total, threshold=census.threshold)]),
        ("outside", [t("pia.outside.text")]),
    ]
    return {
        "title": t("pia.title"),
        "generated_at": dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sections": [{"id": name, "title": t(f"pia.{name}.title"), "items": items} for name, items in sections],
        "facts": facts,
    }


def to_markdown(report: dict[str, Any], t: Translate) -> str:
    lines = [f"# {report['title']}", "", t("pia.generated", at=report["generated_at"], service=report["facts"]["service"]), ""]
    for section in report["sections"]:
        lines += [f"## {section['title']}", "", *(f"- {item}" for item in section["items"]), ""]
    lines += [f"## {t('pia.merchants.title')}", "", f"| {t('pia.merchants.name')} | {t('pia.merchants.retention')} | {t('pia.merchants.in_person')} | {t('pia.merchants.count')} |", "|---|---|---|---|"]
    for m in report["facts"]["merchants"]:
        lines.append(f"| {_cell(m['name'])} | {m['retention']} | {_cell(m['in_person_url'] or '-')} | {m['face_data_individuals']} |")
    lines += ["", f"## {t('pia.models.title')}", "", f"| {t('pia.models.role')} | {t('pia.models.file')} | SHA-256 |", "|---|---|---|"]
    lines += [f"| {m['role']} | {_cell(m['name'])} | `{m['sha256']}` |" for m in report["facts"]["models"]]
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    return f"{value:g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
