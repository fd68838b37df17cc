"""A session's life on a real SQLite file and a real PostgreSQL database through the real `Lifecycle`: creation, consent, the ID photo,
the one place a status moves, retries, redaction, expiry and restarts."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from server.errors import FlowError
from server.flow.lifecycle import MAX_REFERENCE_UPLOADS
from server.liveness.challenges import ChallengeListError
from server.matching.images import ImageError
from server.reasons import Reason
from server.sessions import Status
from server.storage.store import ConflictError
from tests.support.flow import BASE_URL, make_flow
from tests.support.media import photo
from tests.support.postgres import BACKENDS, database_for


@pytest.fixture(params=BACKENDS)
def database_url(request):
    """Every test here runs on SQLite and on PostgreSQL."""
    return database_for(request)


CALLBACK = "https://shop.example/hooks"


@pytest.fixture
async def flow(tmp_path, database_url):
    flow = make_flow(tmp_path, database_url=database_url)
    yield flow
    await flow.close()


@pytest.fixture
async def flow_with_models(tmp_path, models, database_url):
    flow = make_flow(tmp_path, models.matcher, database_url=database_url)
    yield flow
    await flow.close()


def id_photo() -> bytes:
    return photo("angelina_jolie/deepface_img10.jpg").read_bytes()


# -- creation ------------------------------------------------------------------------------------------


def test_create_stores_a_new_session_and_hands_out_its_link_once(flow):
    session, token = flow.create(sandbox=False)
    stored = flow.store.session(session.id)
    assert stored.status == Status.CREATED and stored.sandbox is False
    assert stored.challenge_count == flow.settings.challenge_count
    assert stored.max_attempts == flow.settings.max_attempts
    assert stored.expires_at == pytest.approx(time.time() + flow.settings.session_ttl_s, abs=60)
    # The link finds the session; only the token's hash is stored.
    assert flow.by_token(token).id == session.id
    assert flow.lifecycle.create(flow.keys[True], True, None, BASE_URL + "/")[1].startswith(BASE_URL + "/v/")
    assert [row["action"] for row in flow.store.audit_for(session.id)] == ["session.created"]
    # Without fixed challenges, each check draws its own.
    assert len(flow.lifecycle.challenges_for(stored)) == flow.settings.challenge_count


def test_sandbox_keys_may_fix_the_challenges(flow):
    session, _ = flow.create(sandbox=True, fixed_challenges=["blink", "turn_left"])
    stored = flow.store.session(session.id)
    assert stored.fixed_challenges == ["blink", "turn_left"] and stored.challenge_count == 2
    assert [c.value for c in flow.lifecycle.challenges_for(stored)] == ["blink", "turn_left"]


def test_live_keys_may_not_fix_the_challenges(flow):
    with pytest.raises(FlowError) as refused:
        flow.create(sandbox=False, fixed_challenges=["blink"])
    assert (refused.value.code, refused.value.status) == ("fixed_challenges_forbidden", 403)
    with pytest.raises(ChallengeListError):
        flow.create(sandbox=True, fixed_challenges=["wink"])


# -- consent and the ID photo --------------------------------------------------------------------------


def test_consent_moves_created_to_consented_and_records_what_was_shown(flow):
    session, _ = flow.create()
    consented = flow.lifecycle.record_consent(session, "zh-CN", "我同意", "v3")
    assert consented.status == Status.CONSENTED
    assert consented.consent["locale"] == "zh-CN" and consented.consent["version"] == "v3" and consented.consent["text"] == "我同意"
    assert len(consented.consent["text_sha256"]) == 64
    # Consenting again changes nothing.
    assert flow.lifecycle.record_consent(consented, "en", "other", "v4").consent == consented.consent
    assert flow.statuses_audited(session.id) == ["status.consented"]


@pytest.mark.media
async def test_a_merchant_photo_lets_the_customer_skip_the_upload_step(flow_with_models):
    flow = flow_with_models
    session, _ = flow.create()
    session = await flow.lifecycle.set_reference(session, id_photo(), "image/jpeg", "merchant", "api")
    assert session.status == Status.CREATED and session.has_reference and session.reference_source == "merchant"
    assert sorted(flow.store.evidence_kinds(session.id)) == ["reference_embedding", "reference_face"]
    consented = flow.lifecycle.record_consent(session, "en", "I agree", "v1")
    assert consented.status == Status.ID_UPLOADED
    assert flow.statuses_audited(session.id) == ["status.consented", "status.id_uploaded"]


@pytest.mark.media
async def test_the_customers_photo_moves_a_consented_session_on(flow_with_models):
    flow = flow_with_models
    session, _ = flow.create()
    session = flow.lifecycle.record_consent(session, "en", "I agree", "v1")
    session = await flow.lifecycle.set_reference(session, id_photo(), "image/jpeg", "customer", "customer")
    assert session.status == Status.ID_UPLOADED and session.reference_source == "customer"


async def test_the_photo_cannot_change_once_the_check_is_live(flow):
    session, _ = flow.create()
    session = flow.walk_to(session, Status.LIVE)
    with pytest.raises(FlowError) as refused:
        await flow.lifecycle.set_reference(session, b"\xff\xd8\xff", "image/jpeg", "merchant", "api")
    assert refused.value.code == "wrong_state"


async def test_a_session_gets_a_limited_number_of_photo_tries(flow):
    session, _ = flow.create()
    for _ in range(MAX_REFERENCE_UPLOADS):
        with pytest.raises(ImageError):
            await flow.lifecycle.set_reference(session, b"not a photo", "image/jpeg", "customer", "customer")
    with pytest.raises(FlowError) as refused:
        await flow.lifecycle.set_reference(session, b"not a photo", "image/jpeg", "customer", "customer")
    assert (refused.value.code, refused.value.status) == ("too_many_uploads", 429)
    # Another session has its own count.
    other, _ = flow.create()
    with pytest.raises(ImageError):
        await flow.lifecycle.set_reference(other, b"not a photo", "image/jpeg", "customer", "customer")


# -- the one place a status moves ----------------------------------------------------------------------


def test_move_refuses_a_stale_status_and_audits_each_move_once(flow):
    session, _ = flow.create(callback_url=CALLBACK)
    moved = flow.lifecycle.move(session, Status.CONSENTED, "customer")
    with pytest.raises(ConflictError):
        flow.lifecycle.move(session, Status.EXPIRED, "system")  # `session` still says created
    assert flow.store.session(session.id).status == Status.CONSENTED
    flow.lifecycle.move(moved, Status.EXPIRED, "system")
    audited = [(row["actor"], row["action"], row["detail"]) for row in flow.store.audit_for(session.id) if row["action"].startswith("status.")]
    assert audited == [("customer", "status.consented", {"from": "created"}), ("system", "status.expired", {"from": "consented"})]


def test_final_states_queue_one_webhook_and_others_none(flow):
    session, _ = flow.create(callback_url=CALLBACK)
    session = flow.walk_to(session, Status.PROCESSING)
    assert flow.webhooks(session.id) == []
    approved = flow.lifecycle.move(session, Status.APPROVED, "system")
    assert approved.finished_at is not None
    assert flow.webhooks(session.id) == ["session.approved"]
    # No callback URL: nothing to queue.
    quiet, _ = flow.create()
    flow.lifecycle.move(quiet, Status.EXPIRED, "system")
    assert flow.webhooks(quiet.id) == []


def test_retry_or_fail_gives_the_attempt_back_while_attempts_remain(flow):
    session, _ = flow.create(callback_url=CALLBACK)
    session = flow.walk_to(session, Status.LIVE)
    again = flow.lifecycle.retry_or_fail(session, Reason.TIMEOUT.value, {"frames_received": 10})
    assert again.status == Status.ID_UPLOADED and again.failure_reason == "timeout"
    assert again.live_stats == {"frames_received": 10}
    assert flow.store.audit_for(session.id)[-1]["detail"] == {"from": "live", "reason": "timeout"}
    assert flow.webhooks(session.id) == []


def test_retry_or_fail_fails_the_session_on_its_last_attempt(flow):
    session, _ = flow.create(callback_url=CALLBACK)
    session = flow.walk_to(session, Status.LIVE, attempts=flow.settings.max_attempts)
    failed = flow.lifecycle.retry_or_fail(session, Reason.FACE_LOST.value, None)
    assert failed.status == Status.FAILED and failed.failure_reason == "face_lost"
    assert flow.webhooks(session.id) == ["session.failed"]


# -- redaction -----------------------------------------------------------------------------------------


async def test_redact_erases_evidence_and_confirms_once(flow):
    session, _ = flow.create(callback_url=CALLBACK)
    session = flow.walk_to(session, Status.ID_UPLOADED)
    flow.store.put_evidence(session.id, "reference_face", b"face bytes")
    flow.store.put_evidence(session.id, "reference_embedding", b"embedding bytes")
    redacted = await flow.lifecycle.redact(session, "api")
    assert redacted.status == Status.FAILED and redacted.failure_reason == Reason.REDACTED.value
    assert redacted.redacted_at is not None and redacted.reference_id is None and redacted.callback_url is None
    assert flow.store.evidence_kinds(session.id) == []
    # One event confirms the erasure (not a `session.failed` as well), and it names no reference.
    assert flow.webhooks(session.id) == ["session.redacted"]
    event = flow.store.webhook_events_for(session.id)[0]
    assert '"reference_id":null' in event["body"]
    # Redacting again changes nothing and sends nothing.
    again = await flow.lifecycle.redact(redacted, "api")
    assert again.redacted_at == redacted.redacted_at
    assert flow.webhooks(session.id) == ["session.redacted"]


async def test_redact_keeps_a_final_outcome(flow):
    session, _ = flow.create()
    session = flow.walk_to(session, Status.PROCESSING)
    session = flow.lifecycle.move(session, Status.REVIEW, "system")
    redacted = await flow.lifecycle.redact(session, "api")
    assert redacted.status == Status.REVIEW and redacted.redacted_at is not None


async def test_redact_ends_a_live_check_first(flow):
    session, _ = flow.create()
    session = flow.walk_to(session, Status.LIVE)
    ended: list[str] = []

    async def end(reason: str) -> None:
        ended.append(reason)

    # The registry's attempt, reduced to what redaction touches (its WebRTC connection).
    flow.live.register(SimpleNamespace(session_id=session.id, connection=SimpleNamespace(end=end)))  # type: ignore[arg-type]
    redacted = await flow.lifecycle.redact(session, "api")
    assert ended == ["redacted"]
    assert redacted.status == Status.FAILED and redacted.failure_reason == "redacted"


# -- the clock and restarts ----------------------------------------------------------------------------


def test_expire_due_skips_checks_under_way(flow):
    due, _ = flow.create(callback_url=CALLBACK)
    live_here, _ = flow.create()
    fresh, _ = flow.create()
    long_ago = time.time() - 3600
    for session in (due, live_here):
        flow.store.update_session(session.id, expires_at=long_ago)
    flow.live.reserve(live_here.id)
    assert flow.lifecycle.expire_due() == 1
    assert flow.store.session(due.id).status == Status.EXPIRED
    assert flow.webhooks(due.id) == ["session.expired"]
    assert flow.store.session(live_here.id).status == Status.CREATED
    assert flow.store.session(fresh.id).status == Status.CREATED


def test_expire_if_due_leaves_a_check_under_way_alone(flow):
    session, _ = flow.create()
    session = flow.walk_to(session, Status.LIVE, expires_at=time.time() - 1)
    assert flow.lifecycle.expire_if_due(session) is False
    assert flow.store.session(session.id).status == Status.LIVE
    waiting, _ = flow.create()
    waiting = flow.store.update_session(waiting.id, expires_at=time.time() - 1)
    assert flow.lifecycle.expire_if_due(waiting) is True
    assert flow.lifecycle.expire_if_due(flow.store.session(waiting.id)) is True  # already expired


def test_recover_interrupted_gives_attempts_back_even_the_last_except_to_checks_still_running(flow):
    interrupted, _ = flow.create()
    interrupted = flow.walk_to(interrupted, Status.LIVE)
    last_try, _ = flow.create(callback_url=CALLBACK)
    last_try = flow.walk_to(last_try, Status.PROCESSING, attempts=flow.settings.max_attempts)
    running, _ = flow.create()
    running = flow.walk_to(running, Status.LIVE)
    flow.live.reserve(running.id)
    assert flow.lifecycle.recover_interrupted() == 2
    back = flow.store.session(interrupted.id)
    assert back.status == Status.ID_UPLOADED and back.failure_reason == Reason.INTERRUPTED.value
    # The instance stopped, not the customer: even the last attempt is given back.
    again = flow.store.session(last_try.id)
    assert again.status == Status.ID_UPLOADED and again.failure_reason == Reason.INTERRUPTED.value
    assert again.attempts == flow.settings.max_attempts - 1 and back.attempts == 0
    assert flow.webhooks(last_try.id) == []
    assert flow.store.session(running.id).status == Status.LIVE
