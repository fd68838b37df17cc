"""A session from creation to its final state: create, consent, reference photo, redact, expire.

`Lifecycle.move` is the one place a status changes: it records the change in the audit log and queues
the webhook of a final state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import replace
from typing import Any

import numpy as np

from .. import webhooks
from ..config import Settings
from ..documents.outcome import session_document, without_personal_data
from ..documents.reader import DocumentReader
from ..documents.reading import Expected
from ..errors import FlowError, RealnameError
from ..gallery.service import Gallery
from ..liveness.challenges import Challenge, parse_challenges, random_challenges
from ..matching.decoding import ImageDecoder
from ..matching.faces import FaceError
from ..matching.matcher import FaceMatcher
from ..privacy.modes import Retention
from ..reasons import Reason
from ..receipts.issuer import ReceiptIssuer
from ..sessions import FINAL, Session, Status
from ..storage.shared import SharedState, cluster_time
from ..storage.store import ConflictError, Store
from .registry import LiveRegistry
from .tokens import new_token, token_hash

log = logging.getLogger(__name__)

LIVE_GRACE_S = 300.0  # a check under way may outlive its link by this much
END_ELSEWHERE_WAIT_S = 5.0  # for another instance to end a live check it was asked to end
MAX_REFERENCE_UPLOADS = 10  # per session: a customer retakes a photo a few times, an attacker loops
_TRACKED_UPLOADS = 10_000
# Documents a customer is asked to photograph again when the merchant expects values read from them.
UNREADABLE = {
    "unrecognised": ("document_unreadable", "the document could not be read; photograph the whole front of the ID card or the passport's photo page, sharp and without glare", 422),
    "cn_resident_card_back": ("document_back_side", "this is the back of the card; photograph the front, with the photo", 422),
}


class Lifecycle:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        matcher: FaceMatcher,
        decoder: ImageDecoder,
        uploads: Executor,
        live: LiveRegistry,
        outbox: webhooks.Outbox | None = None,
        shared: SharedState | None = None,
        documents: DocumentReader | None = None,
        receipts: ReceiptIssuer | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.matcher = matcher
        self.decoder = decoder  # untrusted photos are decoded in child processes with memory and time limits
        self.uploads = uploads  # embedding the ID photo: never the live analysis workers
        self.live = live
        self.outbox = outbox
        self.shared = shared  # other instances use the same database: their live checks are not ours
        self.documents = documents  # None: reference photos are used for the face only
        self.receipts = receipts  # signs every final decision
        self._uploads_per_session: OrderedDict[str, int] = OrderedDict()
        self.gallery: Gallery | None = None  # the merchants' face galleries (1:N); None: no gallery at all
        # Called with a session's id before it is redacted, to stop work in flight on it (recorded checks).
        self.on_redact: list[Callable[[str], Awaitable[None]]] = []

    # -- the merchant's side ----------------------------------------------------------------------

    def create(
        self,
        api_key_id: int,
        sandbox: bool,
        reference_id: str | None,
        base_url: str,
        actor: str = "api",
        merchant_name: str | None = None,
        callback_url: str | None = None,
        redirect_url: str | None = None,
        locale: str | None = None,
        challenge_count: int | None = None,
        fixed_challenges: list[str] | None = None,
        ttl_s: int | None = None,
        expected: dict[str, str] | None = None,
    ) -> tuple[Session, str]:
        """A new session and its hosted-page link (the token is shown once; only its hash is kept)."""
        if fixed_challenges is not None:
            if not sandbox:
                raise FlowError("fixed_challenges_forbidden", "only sandbox keys may fix the challenges", 403)
            fixed_challenges = [c.value for c in parse_challenges(fixed_challenges)]
        now = self.now()  # its expiry is compared by every instance
        token = new_token()
        session = Session(
            id="ses_" + secrets.token_hex(12),
            api_key_id=api_key_id,
            sandbox=sandbox,
            reference_id=reference_id,
            status=Status.CREATED,
            created_at=now,
            updated_at=now,
            expires_at=now + (ttl_s or self.settings.session_ttl_s),
            challenge_count=len(fixed_challenges) if fixed_challenges else (challenge_count or self.settings.challenge_count),
            max_attempts=self.settings.max_attempts,
            locale=locale,
            merchant_name=merchant_name,
            callback_url=callback_url,
            redirect_url=redirect_url,
            fixed_challenges=fixed_challenges,
            expected=Expected.from_dict(expected).to_dict() or None if expected else None,
        )
        self.store.insert_session(session, token_hash(token))
        self.store.audit(actor, "session.created", session.id, {"sandbox": sandbox})
        return session, f"{base_url.rstrip('/')}/v/{token}"

    async def set_reference(self, session: Session, data: bytes, content_type: str | None, source: str, actor: str, require_document: bool = False) -> Session:
        """Check an ID photo and keep only its aligned face and embedding (encrypted); never the photo.
        With `require_document` (a customer whose merchant sent expected values) a photo whose document
        cannot be read, or shows the back of the card, is refused so that the customer can retake it."""
        allowed = {Status.CREATED, Status.CONSENTED, Status.ID_UPLOADED}
        if session.status not in allowed:
            raise FlowError("wrong_state", f"the session is {session.status.value}; the ID photo can no longer change")
        self._count_upload(session.id)
        loop = asyncio.get_running_loop()
        image = await self.decoder.decode_upload(data, content_type)
        try:
            face = await loop.run_in_executor(self.uploads, self.matcher.embed_photo, image)
        except FaceError as error:
            if require_document and error.code == "no_face":  # the back of a card has no face: say so
                missed = await self._read_document(session, image)
                if missed is not None and missed["type"] == "cn_resident_card_back":
                    raise RealnameError(*UNREADABLE["cn_resident_card_back"]) from None
            raise
        document = await self._read_document(session, image)
        # A reading its bounds cut short is kept as it is (marked incomplete), never a reason to refuse.
        if require_document and document is not None and document["type"] in UNREADABLE and document["complete"]:
            raise RealnameError(*UNREADABLE[document["type"]])
        self.store.put_evidence(session.id, "reference_face", jpeg(face.aligned))
        self.store.put_evidence(session.id, "reference_embedding", face.embedding.astype(np.float32).tobytes())
        session = self.store.update_session(session.id, has_reference=True, reference_source=source, document=document)
        self.store.audit(actor, "reference.stored", session.id, {"source": source, "quality": {k: round(v, 1) for k, v in face.quality.items()}})
        if document is not None:  # what was read stays sealed in the session; the log says only how it went
            self.store.audit(actor, "reference.document_read", session.id, {"type": document["type"], "checks_passed": document["checks_passed"]})
        if session.status == Status.CONSENTED:
            session = self.move(session, Status.ID_UPLOADED, actor)
        return session

    async def _read_document(self, session: Session, image: np.ndarray) -> dict[str, Any] | None:
        """The document on the reference photo, once its face is found (OCR costs about a second)."""
        if self.documents is None:
            return None
        reading = await self.documents.read_decoded(image, dt.datetime.now(dt.UTC).date(), session.id)
        return session_document(reading, Expected.from_dict(session.expected) if session.expected else None)

    def _count_upload(self, session_id: str) -> None:
        count = self._uploads_per_session.pop(session_id, 0) + 1
        self._uploads_per_session[session_id] = count
        while len(self._uploads_per_session) > _TRACKED_UPLOADS:
            self._uploads_per_session.popitem(last=False)
        if count > MAX_REFERENCE_UPLOADS:
            raise FlowError("too_many_uploads", f"at most {MAX_REFERENCE_UPLOADS} photos can be tried for one check", 429)

    async def redact(self, session: Session, actor: str) -> Session:
        """Erase evidence and biometric data now; keep a tombstone with the outcome and timestamps."""
        for stop in self.on_redact:
            await stop(session.id)
        session = self.store.session(session.id) or session
        attempt = self.live.get(session.id)
        if attempt is not None:
            await attempt.connection.end("redacted")
            session = self.store.session(session.id) or session
        elif self.shared is not None and session.status in (Status.LIVE, Status.PROCESSING):
            session = await self._end_elsewhere(session)
        if not session.status.is_final:
            session = self.move(session, Status.FAILED, actor, failure_reason=Reason.REDACTED.value, notify=False)
        first_time, callback_url = session.redacted_at is None, session.callback_url
        self.store.delete_evidence(session.id)
        if self.gallery is not None:
            self.gallery.forget(session.id)  # the gallery's row and index entry, also from the blocklist
        self.store.scrub_webhook_events(session.id)
        session = self.store.update_session(
            session.id,
            redacted_at=session.redacted_at or time.time(),
            reference_id=None,
            callback_url=None,
            redirect_url=None,
            has_reference=False,
            expected=None,
            document=None,
            liveness=None,
            match=None,
            live_stats=None,
        )
        self.store.audit(actor, "session.redacted", session.id)
        if first_time and callback_url:
            # Confirms the erasure to the merchant, like every final state.
            self._notify(replace(session, callback_url=callback_url), "session.redacted")
        return session

    async def _end_elsewhere(self, session: Session) -> Session:
        """A check another running instance holds: that instance ends it (a notice) before the evidence
        is erased here, so it cannot store more afterwards."""
        assert self.shared is not None
        owner = self.shared.owner_of(session.id)
        if owner and owner != self.shared.instance_id and owner in self.shared.alive_instances():
            self.shared.ask_owner_to_end(owner, session.id)
            deadline = time.monotonic() + END_ELSEWHERE_WAIT_S
            while time.monotonic() < deadline:
                current = self.store.session(session.id)
                if current is None or current.status not in (Status.LIVE, Status.PROCESSING):
                    break
                await asyncio.sleep(0.05)
        return self.store.session(session.id) or session

    # -- the customer's side ----------------------------------------------------------------------

    def record_consent(self, session: Session, locale: str, text: str, version: str, gallery: tuple[str, bool] | None = None) -> Session:
        """`gallery`: the text of the gallery's separate consent as shown, and whether its box was ticked."""
        if session.status != Status.CREATED:
            return session
        consent: dict[str, Any] = {
            "version": version,
            "locale": locale,
            "text": text,
            "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
            "at": time.time(),
        }
        if gallery is not None:
            consent["gallery"] = {"text": gallery[0], "text_sha256": hashlib.sha256(gallery[0].encode()).hexdigest(), "agreed": gallery[1]}
        session = self.move(session, Status.CONSENTED, "customer", consent=consent)
        if session.has_reference:
            session = self.move(session, Status.ID_UPLOADED, "customer")
        return session

    def challenges_for(self, session: Session) -> list[Challenge]:
        if session.sandbox and session.fixed_challenges:
            return parse_challenges(session.fixed_challenges)
        return random_challenges(session.challenge_count)

    # -- the clock and restarts -------------------------------------------------------------------

    def now(self) -> float:
        """The time other instances, coturn and browsers compare with: the cluster's (storage/shared.py)."""
        return cluster_time(self.shared)

    def expire_if_due(self, session: Session) -> bool:
        if session.status.is_final or session.expires_at > self.now():
            return session.status == Status.EXPIRED
        if session.status in (Status.LIVE, Status.PROCESSING):
            return False
        try:
            self.move(session, Status.EXPIRED, "system")
        except ConflictError:
            pass
        return True

    def expire_due(self) -> int:
        count = 0
        due = self.store.sessions_to_expire(self.now(), LIVE_GRACE_S)
        held = self._held_elsewhere([s for s in due if s.status in (Status.LIVE, Status.PROCESSING)], include_own=True)
        for session in due:
            if session.id in self.live or session.id in held:
                continue
            try:
                self.move(session, Status.EXPIRED, "system")
                count += 1
            except ConflictError:
                pass
        return count

    def recover_interrupted(self, include_own: bool = True) -> int:
        """Checks that were under way can never finish: back to the live step with the attempt given
        back (the instance stopped, not the customer: even a last attempt may be taken again). At start-up
        (`include_own`) this instance's from before its restart; later, those of instances that stopped.
        Checks another running instance holds are never touched."""
        count = 0
        interrupted = self.store.sessions_with_status([Status.LIVE, Status.PROCESSING])
        held = self._held_elsewhere(interrupted, include_own)
        for session in interrupted:
            if session.id in self.live or session.id in held:
                continue
            try:
                given_back = replace(session, attempts=max(0, session.attempts - 1))
                self.retry_or_fail(given_back, Reason.INTERRUPTED.value, None, attempts=given_back.attempts)
                count += 1
            except ConflictError:
                pass
        return count

    def _held_elsewhere(self, checks: list[Session], include_own: bool) -> set[str]:
        """Of these live or processing sessions, those a running instance holds (not ours unless `include_own` is off)."""
        if self.shared is None or not checks:
            return set() if include_own else {s.id for s in checks}
        orphaned = self.shared.orphaned_checks(include_own)
        return {s.id for s in checks if s.id not in orphaned}

    # -- the one place a status changes -----------------------------------------------------------

    def move(self, session: Session, target: Status, actor: str, notify: bool = True, **fields: Any) -> Session:
        """From the status `session` has to `target`; ConflictError if the stored status moved on."""
        if target == Status.LIVE and self.shared is not None:
            fields["owner"] = self.shared.instance_id  # the peer connection is in this process
        moved = self.store.move_session(session.id, session.status, target, **fields)
        detail = {"from": session.status.value}
        if moved.failure_reason and target in (Status.FAILED, Status.ID_UPLOADED, Status.REJECTED, Status.REVIEW):
            detail["reason"] = moved.failure_reason
        self.store.audit(actor, f"status.{target.value}", session.id, detail)
        if target in FINAL and self.receipts is not None:
            moved = self.store.update_session(moved.id, receipt=self.receipts.issue(moved))
        if notify and target in FINAL:
            self._notify(moved, f"session.{target.value}")
        if target in FINAL and target != Status.REVIEW:  # a review's frames wait for the operator's decision
            merchant = self.store.merchant_of_session(moved.id)
            if merchant is not None and merchant.retention == Retention.MINIMAL:
                moved = self._erase_at_decision(moved)
        return moved

    def _erase_at_decision(self, session: Session) -> Session:
        """Minimal retention: the decision is final, so its biometric data goes now. The receipt (signed
        over the evidence's hashes), the event log, the scores and the hashes stay."""
        with self.store.transaction():
            erased = self.store.delete_evidence(session.id)
            session = self.store.update_session(
                session.id,
                has_reference=False,
                evidence_purged_at=time.time(),
                document=session.document and without_personal_data(session.document),
                expected=None,
            )
        self.store.audit("system", "evidence.erased_at_decision", session.id, {"retention": "minimal", "pieces": erased})
        return session

    def settle_review(self, session: Session, target: Status, actor: str, review: dict[str, Any]) -> Session:
        """An operator's decision on a session in review: approved or rejected, with a new webhook. The
        customer's finishing time is kept (the dashboard's time to complete is the customer's)."""
        if session.status != Status.REVIEW or target not in (Status.APPROVED, Status.REJECTED):
            raise FlowError("wrong_state", f"the session is {session.status.value}; only a session in review can be decided")
        reason = Reason.REJECTED_IN_REVIEW.value if target == Status.REJECTED else None
        session = self.move(session, target, actor, review=review, failure_reason=reason, finished_at=session.finished_at)
        if self.gallery is not None:
            self.gallery.enrol(session)
        return session

    def retry_or_fail(self, session: Session, reason: str, stats: dict | None, **fields: Any) -> Session:
        """A failed attempt: back to the live step while attempts remain, else the session fails."""
        target = Status.ID_UPLOADED if session.attempts < session.max_attempts else Status.FAILED
        return self.move(session, target, "system", failure_reason=reason, live_stats=stats, **fields)

    def _notify(self, session: Session, type_: str) -> None:
        if webhooks.enqueue(self.store, session, type_) and self.outbox is not None:
            self.outbox.wake()


def jpeg(bgr: np.ndarray, quality: int = 90) -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise FaceError("unreadable_image", "could not encode the face")
    return encoded.tobytes()
