"""Merchant accounts: the account's record and its settings (display name, privacy choices, the origins
that may frame its hosted pages). `MerchantAccounts` is the part of `Store` that reads and sets them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..privacy.modes import Retention


@dataclass(frozen=True)
class Merchant:
    id: int
    name: str
    display_name: str
    created_at: float
    retention: str = Retention.STANDARD.value  # minimal: biometric data is erased when a decision is final
    in_person_url: str | None = None  # another way to verify, offered on the consent page
    frame_origins: str = ""  # space-separated origins allowed to frame the hosted pages (the widget)
    gallery: bool = False  # 1:N duplicate checks and enrolment of consenting customers (server/gallery)
    gallery_action: str = "review"  # what a gallery hit does to an approval: review or reject
    document_cap: int = 5  # approved sessions per document number; 0: no cap


class MerchantAccounts:
    """Mixed into `Store`, whose `_one`, `_all`, `_write` and `_merchant_of` it uses."""

    _one: Any
    _all: Any
    _write: Any
    _merchant_of: Any

    def merchant(self, merchant_id: int) -> Merchant | None:
        row = self._one("SELECT * FROM merchants WHERE id = ?", (merchant_id,))
        return _merchant(row) if row else None

    def merchant_by_name(self, name: str) -> Merchant | None:
        row = self._one("SELECT * FROM merchants WHERE name = ?", (name,))
        return _merchant(row) if row else None

    def merchants(self) -> list[Merchant]:
        return [_merchant(r) for r in self._all("SELECT * FROM merchants ORDER BY name")]

    def merchant_of_session(self, session_id: str) -> Merchant | None:
        merchant_id = self._merchant_of(session_id)
        return self.merchant(merchant_id) if merchant_id is not None else None

    def set_display_name(self, merchant_id: int, display_name: str) -> None:
        self._write("UPDATE merchants SET display_name = ? WHERE id = ?", (display_name, merchant_id))

    def set_privacy(self, merchant_id: int, retention: Retention, in_person_url: str | None) -> None:
        self._write("UPDATE merchants SET retention = ?, in_person_url = ? WHERE id = ?", (retention.value, in_person_url, merchant_id))

    def set_frame_origins(self, merchant_id: int, origins: list[str]) -> None:
        self._write("UPDATE merchants SET frame_origins = ? WHERE id = ?", (" ".join(origins), merchant_id))

    def frame_origins_of_session(self, session_id: str) -> tuple[str, ...]:
        """The origins the session's merchant lets frame its hosted pages; none for most merchants."""
        row = self._one("SELECT m.frame_origins FROM sessions s JOIN merchants m ON m.id = s.merchant_id WHERE s.id = ?", (session_id,))
        return tuple(row["frame_origins"].split()) if row else ()


def _merchant(row: dict[str, Any]) -> Merchant:
    return Merchant(**{**row, "gallery": bool(row["gallery"])})
