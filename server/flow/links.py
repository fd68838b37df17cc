"""The hosted-page link: single-use, expiring, claimed by the customer's own browser.

Opening the link (GET, also a chat app's preview robot or a HEAD request) only shows a start page; the
link is claimed by the customer's POST from that page, which binds the session to that browser with a
cookie. Anyone else then gets "already used".

A customer on a desktop may hand the session over to a phone: the bound desktop asks for a handoff link
(short, single-use, valid for HANDOFF_TTL_S), and claiming it binds the session to the phone instead, the
same way. The desktop keeps only the right to follow the check (see `watched_session`). The first claim
ends the handoffs of the session: its other links are used up with it and no new one is made, so neither
another phone nor the desktop can take the session from the phone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..errors import FlowError
from ..sessions import Session, Status
from ..storage.handoffs import HandoffRecords
from ..storage.store import Store
from .lifecycle import Lifecycle
from .tokens import SHORT_CODE_ALPHABET, SHORT_CODE_LENGTH, new_short_code, new_token, token_hash

MAX_TOKEN_LENGTH = 200
HANDOFFS_PER_SESSION = 5  # links a desktop may ask for one session (each one replaces nothing: all expire)


@dataclass(frozen=True)
class HandoffLink:
    code: str
    expires_at: float


@dataclass(frozen=True)
class LinkState:
    session: Session | None
    problem: str | None  # unknown, expired, used; None: the link can be claimed (or is this browser's)
    claimed_by_this_browser: bool = False


@dataclass(frozen=True)
class Claim:
    session: Session | None
    browser_key: str | None  # the new browser cookie, when this request claimed the link
    problem: str | None


class Links:
    def __init__(self, store: Store, lifecycle: Lifecycle) -> None:
        self.store = store
        self.lifecycle = lifecycle
        self.handoffs = HandoffRecords(store)

    def look(self, token: str, browser_key: str | None) -> LinkState:
        """What opening the link shows; changes nothing (safe for previews and HEAD)."""
        session = self.store.session_by_token_hash(token_hash(token)) if len(token) < MAX_TOKEN_LENGTH else None
        if session is None or session.redacted_at:
            return LinkState(None, "unknown")
        if session.token_used_at is not None:
            bound = self.session_for_browser(browser_key) if browser_key else None
            mine = bound is not None and bound.id == session.id and not session.status.is_final
            return LinkState(session, None if mine else "used", claimed_by_this_browser=mine)
        if self.lifecycle.expire_if_due(session):
            return LinkState(session, "expired")
        return LinkState(session, None)

    def claim(self, token: str, browser_key: str | None) -> Claim:
        """The customer starts: the link is used up and bound to this browser."""
        state = self.look(token, browser_key)
        if state.problem or state.session is None:
            return Claim(state.session, None, state.problem or "unknown")
        if state.claimed_by_this_browser:
            return Claim(state.session, None, None)
        new_key = new_token()
        if not self.store.claim_token(state.session.id, token_hash(new_key)):
            return Claim(state.session, None, "used")
        self.store.audit("customer", "link.opened", state.session.id)
        return Claim(state.session, new_key, None)

    def session_for_browser(self, browser_key: str) -> Session | None:
        return self.store.session_by_browser_key_hash(token_hash(browser_key))

    # -- desktop to phone -------------------------------------------------------------------------

    def offer_handoff(self, session: Session, desktop_key: str) -> HandoffLink | None:
        """A handoff link for the session bound to this desktop browser, ready for its live check; None
        when this session had HANDOFFS_PER_SESSION already."""
        if session.status != Status.ID_UPLOADED:
            raise FlowError("wrong_state", f"the session is {session.status.value}")
        if self.handoffs.handed_off(session.id):
            raise FlowError("wrong_state", "the session was handed to a phone already")
        if self.handoffs.count(session.id) >= HANDOFFS_PER_SESSION:
            return None
        code, now = new_short_code(), time.time()
        expires_at = min(now + self.lifecycle.settings.handoff_ttl_s, session.expires_at)
        self.handoffs.add(session.id, token_hash(code), token_hash(desktop_key), now, expires_at)
        self.store.audit("customer", "handoff.offered", session.id, {"expires_in_s": round(expires_at - now)})
        return HandoffLink(code, expires_at)

    def look_handoff(self, code: str) -> LinkState:
        """What opening a handoff link shows; changes nothing."""
        record = self.handoffs.find(token_hash(code)) if _short_code_shaped(code) else None
        session = self.store.session(record.session_id) if record else None
        if record is None or session is None or session.redacted_at:
            return LinkState(None, "unknown")
        if record.claimed_at is not None or self.handoffs.handed_off(session.id):
            return LinkState(session, "used")  # this link, or another of the session's
        if record.expires_at <= time.time() or self.lifecycle.expire_if_due(session) or session.status.is_final:
            return LinkState(session, "expired")
        return LinkState(session, None)

    def claim_handoff(self, code: str) -> Claim:
        """The phone starts: the link is used up and the session bound to this browser, no longer the desktop."""
        state = self.look_handoff(code)
        if state.problem or state.session is None:
            return Claim(state.session, None, state.problem or "unknown")
        new_key = new_token()
        if not self.handoffs.claim(state.session.id, token_hash(code), token_hash(new_key), time.time()):
            return Claim(state.session, None, "used")
        self.store.audit("customer", "handoff.claimed", state.session.id)
        return Claim(state.session, new_key, None)

    def watched_session(self, desktop_key: str) -> Session | None:
        """The session this desktop handed to a phone, which it may follow but no longer act on."""
        session_id = self.handoffs.watched(token_hash(desktop_key))
        return self.store.session(session_id) if session_id else None

    def handed_off(self, session_id: str) -> bool:
        return self.handoffs.handed_off(session_id)


def _short_code_shaped(code: str) -> bool:
    return len(code) == SHORT_CODE_LENGTH and all(c in SHORT_CODE_ALPHABET for c in code)
