"""The hosted-page link on a real SQLite file: looking changes nothing, the first claim binds one browser,
anyone else is told the link is used, and erased or expired sessions are not found."""

from __future__ import annotations

import time

import pytest

from server.errors import FlowError
from server.flow.links import MAX_TOKEN_LENGTH
from server.sessions import Status
from tests.support.flow import make_flow


@pytest.fixture
async def flow(tmp_path):
    flow = make_flow(tmp_path)
    yield flow
    await flow.close()


def test_looking_at_a_link_changes_nothing(flow):
    session, token = flow.create()
    before = flow.store.session(session.id)
    for _ in range(3):  # a chat app's preview robot, a HEAD request, the customer
        state = flow.links.look(token, None)
        assert state.problem is None and state.session.id == session.id and not state.claimed_by_this_browser
    after = flow.store.session(session.id)
    assert after.token_used_at is None and after.updated_at == before.updated_at
    assert [row["action"] for row in flow.store.audit_for(session.id)] == ["session.created"]


def test_the_first_claim_binds_the_link_to_one_browser(flow):
    session, token = flow.create()
    claim = flow.links.claim(token, None)
    assert claim.problem is None and claim.session.id == session.id and claim.browser_key
    assert flow.links.session_for_browser(claim.browser_key).id == session.id
    assert flow.store.session(session.id).token_used_at is not None
    assert [row["action"] for row in flow.store.audit_for(session.id)] == ["session.created", "link.opened"]


def test_a_second_browser_is_told_the_link_is_used(flow):
    _, token = flow.create()
    assert flow.links.claim(token, None).browser_key
    for stranger in (None, "another-browsers-key"):
        assert flow.links.look(token, stranger).problem == "used"
        second = flow.links.claim(token, stranger)
        assert second.problem == "used" and second.browser_key is None


def test_the_same_browser_may_come_back(flow):
    session, token = flow.create()
    first = flow.links.claim(token, None)
    state = flow.links.look(token, first.browser_key)
    assert state.problem is None and state.claimed_by_this_browser
    again = flow.links.claim(token, first.browser_key)
    assert again.problem is None and again.session.id == session.id
    assert again.browser_key is None  # keeps its cookie: nothing new is issued
    assert [row["action"] for row in flow.store.audit_for(session.id)].count("link.opened") == 1


def test_a_finished_session_is_not_reopened_by_its_browser(flow):
    session, token = flow.create()
    first = flow.links.claim(token, None)
    flow.lifecycle.move(flow.store.session(session.id), Status.EXPIRED, "system")
    assert flow.links.look(token, first.browser_key).problem == "used"


def test_unknown_links(flow):
    for token in ("", "no-such-token", "x" * (MAX_TOKEN_LENGTH + 1)):
        state = flow.links.look(token, None)
        assert (state.session, state.problem) == (None, "unknown")
        claim = flow.links.claim(token, None)
        assert (claim.session, claim.browser_key, claim.problem) == (None, None, "unknown")


def test_an_expired_link_expires_its_session(flow):
    session, token = flow.create()
    flow.store.update_session(session.id, expires_at=time.time() - 1)
    assert flow.links.look(token, None).problem == "expired"
    assert flow.store.session(session.id).status == Status.EXPIRED
    claim = flow.links.claim(token, None)
    assert claim.problem == "expired" and claim.browser_key is None
    assert flow.store.session(session.id).token_used_at is None


async def test_a_redacted_session_is_unknown_to_its_link_and_its_browser(flow):
    session, token = flow.create()
    first = flow.links.claim(token, None)
    await flow.lifecycle.redact(flow.store.session(session.id), "api")
    state = flow.links.look(token, first.browser_key)
    assert (state.session, state.problem) == (None, "unknown")
    assert flow.links.claim(token, first.browser_key).problem == "unknown"


# -- desktop to phone -------------------------------------------------------------------------------


def handed_over(flow):
    """A session bound to a desktop, ready for its live check, and a handoff link the desktop asked for."""
    session, token = flow.create()
    desktop = flow.links.claim(token, None).browser_key
    session = flow.walk_to(session, Status.ID_UPLOADED)
    return session, desktop, flow.links.offer_handoff(session, desktop)


def test_a_handoff_binds_the_phone_and_leaves_the_desktop_only_watching(flow):
    session, desktop, link = handed_over(flow)
    assert len(link.code) == 12 and link.expires_at <= time.time() + flow.settings.handoff_ttl_s
    assert flow.links.look_handoff(link.code).problem is None  # looking uses nothing
    assert not flow.links.handed_off(session.id)
    phone = flow.links.claim_handoff(link.code)
    assert phone.problem is None and phone.browser_key and phone.session.id == session.id
    assert flow.links.session_for_browser(phone.browser_key).id == session.id
    assert flow.links.session_for_browser(desktop) is None  # the desktop can no longer act on it
    assert flow.links.watched_session(desktop).id == session.id
    assert flow.links.handed_off(session.id)
    actions = [row["action"] for row in flow.store.audit_for(session.id)]
    assert actions[-2:] == ["handoff.offered", "handoff.claimed"]


def test_a_handoff_link_works_once(flow):
    session, _desktop, link = handed_over(flow)
    assert flow.links.claim_handoff(link.code).problem is None
    again = flow.links.claim_handoff(link.code)
    assert again.problem == "used" and again.browser_key is None
    assert flow.links.look_handoff(link.code).problem == "used"


def test_an_expired_or_unknown_handoff_link_binds_nobody(flow):
    session, desktop, link = handed_over(flow)
    flow.store._write("UPDATE handoffs SET expires_at = ?", (time.time() - 1,))
    assert flow.links.claim_handoff(link.code).problem == "expired"
    assert flow.links.session_for_browser(desktop).id == session.id  # still the desktop's
    for code in ("", "x" * 12, link.code.upper(), link.code + "a", "../" * 4):
        assert flow.links.look_handoff(code).problem == "unknown"


def test_a_handoff_is_offered_only_before_the_live_check_and_a_few_times(flow):
    session, desktop, _link = handed_over(flow)
    for _ in range(4):
        assert flow.links.offer_handoff(session, desktop) is not None
    assert flow.links.offer_handoff(session, desktop) is None
    fresh, token = flow.create()
    with pytest.raises(FlowError):
        flow.links.offer_handoff(fresh, flow.links.claim(token, None).browser_key)
