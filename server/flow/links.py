"""The hosted-page link: single-use, expiring, claimed by the customer's own browser.

Opening the link (GET, also a chat app's preview robot or a HEAD request) only shows a start page; the
link is claimed by the customer's POST from that page, which binds the session to that browser with a
cookie. Anyone else then gets "already used".
"""

from __future__ import annotations

from dataclasses import dataclass

from ..sessions import Session
from ..storage.store import Store
from .lifecycle import Lifecycle
from .tokens import new_token, token_hash

MAX_TOKEN_LENGTH = 200


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
