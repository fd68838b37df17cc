"""The consent notice, composed from what will actually happen in the session: who supplies the ID photo,
that the live image is analysed and not stored, what happens to a recorded fallback's clip (uploaded,
analysed in memory, never stored: see flow/recorded.py), and the merchant's retention mode. The page shows
exactly these texts, and the same texts, joined, are what the session's consent record holds. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .modes import Retention

VERSION_KEY = "consent.version"


@dataclass(frozen=True)
class Text:
    key: str  # a locale key
    values: dict[str, Any] = field(default_factory=dict)

    def render(self, t: Callable[..., str]) -> str:
        return t(self.key, **self.values)


@dataclass(frozen=True)
class ConsentNotice:
    intro: Text
    steps: tuple[Text, ...]
    kept: tuple[Text, ...]
    face: tuple[Text, ...]  # the separate consent to face processing: what, why, how long, withdrawal
    checkbox: Text

    def texts(self) -> list[Text]:
        return [self.intro, *self.steps, *self.kept, *self.face, self.checkbox]

    def text(self, t: Callable[..., str]) -> str:
        """What the customer agreed to, as shown, for the consent record."""
        return " ".join(part.render(t) for part in self.texts())


def consent_notice(merchant: str, photo_by_merchant: bool, retention: Retention, retention_days: int) -> ConsentNotice:
    m = {"merchant": merchant}
    photo = Text("consent.step.photo_by_merchant", m) if photo_by_merchant else Text("consent.step.photo_by_customer")
    kept = (
        Text("consent.kept.minimal", m)
        if retention == Retention.MINIMAL
        else Text("consent.kept.standard", {**m, "days": retention_days})
    )
    return ConsentNotice(
        intro=Text("consent.intro", m),
        steps=(photo, Text("consent.step.live"), Text("consent.step.recorded"), Text("consent.step.compare", m)),
        kept=(kept, Text("consent.kept.result")),
        face=(Text("consent.face.purpose", m), Text("consent.face.withdraw", m)),
        checkbox=Text("consent.checkbox"),
    )
