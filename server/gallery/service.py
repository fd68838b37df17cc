"""The gallery in the flow: search at decision time, enrol approved consenting customers, block a face
on an operator's word, and forget on erasure or at the end of the gallery's retention."""

from __future__ import annotations

import logging

import numpy as np

from ..config import ConfigError, Settings
from ..matching.calibration import Calibration
from ..sessions import Session, Status
from ..spoof.signals import Action, RiskSignal
from ..storage.gallery import BLOCKED, ENROLLED, GalleryStore, session_keys
from ..storage.store import Merchant, Store
from .checks import Identity, Policy, gallery_signals
from .rotation import key_digest, rotate, rotation_for

log = logging.getLogger(__name__)
DAY = 86400.0
NEAREST = 10  # entries a search returns (hits above the threshold among them)
ACTIONS = ("review", "reject")


class WrongGalleryKeyError(ConfigError):
    """The configured gallery key is not the one the gallery's templates were rotated with."""


class GalleryError(ValueError):
    """A face cannot be put on the blocklist (no template kept for the session)."""


def check_key(records: GalleryStore, key: bytes) -> None:
    digest, kept = key_digest(key), records.key_digest()
    if kept is None:
        records.set_key_digest(digest)
    elif kept != digest:
        raise WrongGalleryKeyError(
            "the gallery key does not match the one the face gallery was written with: set REALNAME_GALLERY_KEY or "
            "REALNAME_GALLERY_KEY_FILE to it (`python -m server gallery rekey` changes it)"
        )


class Gallery:
    def __init__(self, settings: Settings, store: Store, key: bytes, calibration: Calibration, different_face: float) -> None:
        self.settings = settings
        self.store = store
        self.records = GalleryStore(store)
        check_key(self.records, key)
        self.rotation = rotation_for(key)
        self.threshold = gallery_threshold(settings, calibration)
        self.different_face = min(different_face, self.threshold)
        self.far_at = calibration.far_at

    def merchant_of(self, session: Session) -> Merchant | None:
        keys = session_keys(self.store, session.id)
        return self.store.merchant(keys[0]) if keys else None

    def offered(self, session: Session) -> bool:
        """The consent page asks for the gallery's separate consent."""
        merchant = self.merchant_of(session)
        return bool(merchant and merchant.gallery)

    def protect(self, template: np.ndarray) -> np.ndarray:
        """A unit template under the gallery's rotation."""
        template = np.asarray(template, dtype=np.float64)
        return rotate(self.rotation, template / max(float(np.linalg.norm(template)), 1e-12))

    # -- at decision time -------------------------------------------------------------------------

    def check(self, session: Session, template: np.ndarray) -> list[RiskSignal]:
        """The gallery's signals for a session about to be decided (none when it has no gallery)."""
        keys = session_keys(self.store, session.id)
        merchant = self.store.merchant(keys[0]) if keys else None
        if keys is None or merchant is None:
            return []
        _, document_hash, reference_hash = keys
        query = self.protect(template)
        nearest = self.records.nearest(merchant.id, session.sandbox, query, NEAREST)
        same_document, approved = [], []
        if merchant.gallery and document_hash:
            same_document = self.records.with_document(merchant.id, session.sandbox, document_hash, query)
            approved = self.records.approved_with_document(merchant.id, session.sandbox, document_hash, session.id)
        action = Action.FAIL if merchant.gallery_action == "reject" else Action.REVIEW
        policy = Policy(self.threshold, self.different_face, action, merchant.document_cap if merchant.gallery else 0)
        return gallery_signals(Identity(session.id, document_hash, reference_hash), nearest, same_document, approved, policy, self.far_at)

    def enrol(self, session: Session, template: np.ndarray | None = None) -> bool:
        """An approved session's face enters its merchant's gallery, if the merchant turned the gallery on
        and the customer gave its separate consent; `template`: the live faces' mean (else the one kept)."""
        if session.status != Status.APPROVED or not consented(session):
            return False
        keys = session_keys(self.store, session.id)
        merchant = self.store.merchant(keys[0]) if keys else None
        if keys is None or merchant is None or not merchant.gallery:
            return False
        if template is None:
            kept = self.store.evidence(session.id, "live_embedding")
            if kept is None:
                return False
            template = np.frombuffer(kept, dtype=np.float32)
        self.records.remove_session(session.id)  # a session is enrolled once
        self.records.add(merchant.id, session.sandbox, self.protect(template), ENROLLED, session.id, keys[1], keys[2], created_by="system")
        self.store.audit("system", "gallery.enrolled", session.id)
        return True

    # -- the blocklist ----------------------------------------------------------------------------

    def block(self, session: Session, reason: str, actor: str) -> int:
        """The session's live face (else its ID photo's) on its merchant's blocklist."""
        keys = session_keys(self.store, session.id)
        kept = self.store.evidence(session.id, "live_embedding") or self.store.evidence(session.id, "reference_embedding")
        if keys is None or kept is None:
            raise GalleryError("the session no longer has a face template (erased or purged)")
        template = self.protect(np.frombuffer(kept, dtype=np.float32))
        entry_id = self.records.add(keys[0], session.sandbox, template, BLOCKED, session.id, keys[1], keys[2], reason=reason, created_by=actor)
        self.store.audit(actor, "gallery.blocked", session.id, {"entry": entry_id})
        return entry_id

    def blocked(self, session_id: str) -> bool:
        return any(entry.kind == BLOCKED for entry in self.records.entries_of(session_id))

    # -- forgetting -------------------------------------------------------------------------------

    def forget(self, session_id: str) -> int:
        return self.records.remove_session(session_id)

    def purge(self, now: float) -> int:
        return self.records.purge(now - self.settings.gallery_retention_days * DAY, now - self.settings.result_retention_days * DAY)


def gallery_threshold(settings: Settings, calibration: Calibration) -> float:
    """GALLERY_THRESHOLD when set, else the calibration's threshold at GALLERY_FAR."""
    return settings.gallery_threshold or calibration.threshold_for(settings.gallery_far)


def consented(session: Session) -> bool:
    """The customer ticked the gallery's own box on the consent page."""
    return bool((session.consent or {}).get("gallery", {}).get("agreed"))


def rekey(records: GalleryStore, old_key: bytes, new_key: bytes) -> int:
    """Every template from the old key's rotation to the new one's, and the new key's digest, together."""
    change = rotation_for(new_key) @ rotation_for(old_key).T
    return records.transform_all(change, key_digest(new_key))
