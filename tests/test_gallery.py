"""The face gallery (1:N): the same tests on both engines (SQLite's exact search in memory, PostgreSQL's
pgvector HNSW index), the keyed rotation, the signals, and the decision in the real app."""

from __future__ import annotations

import os

import numpy as np
import pytest

from server.config import Settings
from server.gallery.checks import Identity, Policy, gallery_signals
from server.gallery.rotation import rotation_for
from server.gallery.service import Gallery, WrongGalleryKeyError, rekey
from server.matching.calibration import DEFAULT_FILE, Calibration
from server.sessions import Session, Status
from server.spoof.signals import Action, SignalCode
from server.storage.crypto import Cipher
from server.storage.gallery import BLOCKED, ENROLLED, GRAPH_BYTES_PER_FACE, NEAREST_SQL, GalleryEntry, GalleryStore, Hit, _vector, index_build_mb
from server.storage.store import Store
from tests.support.postgres import BACKENDS, database_for

CALIBRATION = Calibration.load(DEFAULT_FILE)


@pytest.fixture(params=BACKENDS)
def database_url(request) -> str:
    """Every test here, the real app's included, runs on both engines."""
    return database_for(request)


@pytest.fixture
def location(database_url, tmp_path) -> str:
    return database_url or str(tmp_path / "db.sqlite3")


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def templates(count: int, seed: int = 0) -> np.ndarray:
    return unit(np.random.default_rng(seed).standard_normal((count, 512)))


def same_face(template: np.ndarray, seed: int = 1, noise: float = 0.6) -> np.ndarray:
    """Another capture of the same face: the template plus noise (cosine about 0.85)."""
    return unit(template + noise * unit(np.random.default_rng(seed).standard_normal(512)))


def session(store: Store, reference: str = "ref-1") -> Session:
    import time

    from server.api.auth import create_api_key

    if not store.api_keys():
        create_api_key(store, "Shop", sandbox=True)
    key = store.api_keys()[0]
    now = time.time()
    s = Session("ses_" + os.urandom(6).hex(), key.id, True, reference, Status.CREATED, now, now, now + 900, 1, 3)
    store.insert_session(s, os.urandom(8).hex())
    return s


# -- the engines ------------------------------------------------------------------------------------


def test_both_engines_find_remove_and_purge_alike(location):
    store = Store(location, Cipher(os.urandom(32)))
    records = GalleryStore(store)
    shop, other = store.create_merchant("shop"), store.create_merchant("other")
    faces = templates(300)
    records.add_many(shop.id, False, faces)
    records.add(other.id, False, faces[5])  # another merchant's gallery is never searched
    records.add(shop.id, True, faces[5])  # nor the sandbox's from live sessions
    first = records.nearest(shop.id, False, same_face(faces[5]), k=3)
    assert first[0].score > 0.7 and first[1].score < 0.3
    assert (first[0].entry.merchant_id, first[0].entry.sandbox, first[0].entry.kind) == (shop.id, False, ENROLLED)
    assert [hit.score for hit in first] == sorted((hit.score for hit in first), reverse=True)
    ses = session(store)
    entry = records.add(shop.id, False, faces[7], BLOCKED, ses.id, "doc", "ref", reason="stole a card", created_by="operator:x")
    assert records.reason(records.entries_of(ses.id)[0]) == "stole a card"
    assert [hit.entry.id for hit in records.with_document(shop.id, False, "doc", faces[7])] == [entry]
    assert records.with_document(shop.id, False, "doc", faces[7])[0].score == pytest.approx(1.0, abs=1e-5)
    assert records.remove_session(ses.id) == 1
    assert records.nearest(shop.id, False, faces[7], k=1)[0].entry.id != entry  # the row and its index entry
    assert records.purge(created_before=0, finished_before=0) == 0
    import time

    assert records.purge(created_before=time.time() + 1, finished_before=0) == 302
    assert records.nearest(shop.id, False, faces[5], k=3) == [] and records.count() == 0
    store.close()


def test_the_sqlite_engine_rebuilds_its_index_at_start(tmp_path, database_url):
    if database_url:
        pytest.skip("SQLite's in-memory index only")
    path = tmp_path / "db.sqlite3"
    cipher = Cipher(os.urandom(32))
    store = Store(path, cipher)
    merchant = store.create_merchant("shop")
    faces = templates(20)
    GalleryStore(store).add_many(merchant.id, False, faces)
    store.close()
    store = Store(path, cipher)
    again = GalleryStore(store)
    assert len(again.index) == 20 and again.nearest(merchant.id, False, faces[3], k=1)[0].score == pytest.approx(1.0, abs=1e-5)
    store.close()


def test_the_postgresql_search_walks_the_hnsw_graph_whatever_its_ef_search(database_url):
    """pgvector's cost estimate grows with ef_search: at 400, reading every row and sorting looked
    cheaper than the graph (a whole-table scan per search: 0.6 s at 10^5 faces, docs/benchmarks.md)."""
    if not database_url:
        pytest.skip("PostgreSQL's HNSW index only")
    store = Store(database_url, Cipher(os.urandom(32)))
    records = GalleryStore(store)
    shop = store.create_merchant("shop")
    faces = templates(3000)
    records.bulk_load(shop.id, False, faces)
    query = _vector(faces[0])
    for ef_search in (40, 400, 1000):
        records.ef_search = ef_search
        with records.searching():
            plan = "\n".join(row["QUERY PLAN"] for row in store._all("EXPLAIN " + NEAREST_SQL, (query, shop.id, 0, query, 10)))
        assert "Index Scan using gallery_embedding" in plan and "Seq Scan" not in plan and "Sort" not in plan, plan
        assert records.nearest(shop.id, False, faces[0], k=3)[0].score == pytest.approx(1.0, abs=1e-5)
    assert store._one("SELECT current_setting('enable_sort') AS s")["s"] == "on"  # the settings ended with the search
    with store.transaction():  # inside a caller's transaction, which the search leaves open
        assert records.nearest(shop.id, False, faces[1], k=1)[0].score == pytest.approx(1.0, abs=1e-5)
        assert store._db.in_transaction
    store.close()


def test_the_hnsw_graph_is_built_with_the_memory_it_needs():
    assert index_build_mb(100) == 64  # PostgreSQL's default, at least
    for faces in (10**5, 10**6):
        assert faces * GRAPH_BYTES_PER_FACE <= index_build_mb(faces) * 2**20 <= 1.3 * faces * GRAPH_BYTES_PER_FACE


# -- the rotation -----------------------------------------------------------------------------------


def test_the_rotation_keeps_cosines_and_hides_the_templates():
    rotation = rotation_for(b"k" * 32)
    assert np.allclose(rotation @ rotation.T, np.eye(512), atol=1e-9)
    a, b = templates(2)
    assert float((rotation @ a) @ (rotation @ b)) == pytest.approx(float(a @ b), abs=1e-6)
    assert abs(float((rotation @ a) @ a)) < 0.2  # a rotated template says nothing of the face it came from
    assert not np.allclose(rotation_for(b"j" * 32), rotation)


def test_a_copied_database_does_not_match_the_raw_templates_and_another_key_is_refused(location):
    cipher = Cipher(os.urandom(32))
    store = Store(location, cipher)
    merchant = store.create_merchant("shop")
    key = os.urandom(32)
    gallery = Gallery(Settings(), store, key, CALIBRATION, 0.178)
    faces = templates(50, seed=3)
    for face in faces:
        gallery.records.add(merchant.id, False, gallery.protect(face))
    # What a copy of the database holds, searched with the raw embeddings of the same faces: nothing.
    copied = GalleryStore(store)
    best = [copied.nearest(merchant.id, False, face, k=1)[0].score for face in faces]
    assert max(best) < gallery.threshold
    # Through the key, every face is found.
    assert all(gallery.records.nearest(merchant.id, False, gallery.protect(same_face(face)), k=1)[0].score > 0.7 for face in faces)
    with pytest.raises(WrongGalleryKeyError):
        Gallery(Settings(), store, os.urandom(32), CALIBRATION, 0.178)
    # Re-keying rotates them all: the new key finds them, the old one is refused.
    new_key = os.urandom(32)
    assert rekey(gallery.records, key, new_key) == 50
    if store.shared:  # the HNSW index, dropped for the updates, is there again
        assert store._one("SELECT indexdef FROM pg_indexes WHERE indexname = 'gallery_embedding'")["indexdef"].endswith("USING hnsw (embedding vector_cosine_ops)")
    renewed = Gallery(Settings(), store, new_key, CALIBRATION, 0.178)
    assert all(renewed.records.nearest(merchant.id, False, renewed.protect(face), k=1)[0].score == pytest.approx(1.0, abs=1e-4) for face in faces)
    with pytest.raises(WrongGalleryKeyError):
        Gallery(Settings(), store, key, CALIBRATION, 0.178)
    store.close()


# -- the signals (pure) -----------------------------------------------------------------------------


def hit(score: float, session_id: str, document: str | None = None, reference: str | None = None, kind: str = ENROLLED) -> Hit:
    return Hit(GalleryEntry(1, 1, False, session_id, kind, document, reference, None, 0.0), score)


POLICY = Policy(same_face=0.32, different_face=0.178, action=Action.REVIEW, document_cap=5)


def codes(signals) -> list[str]:
    return [s.code.value for s in signals]


def test_the_same_face_under_another_document_or_reference_is_a_duplicate():
    me = Identity("ses_me", "doc-a", "ref-a")
    found = [hit(0.8, "ses_1", "doc-b"), hit(0.9, "ses_2", "doc-a"), hit(0.2, "ses_3", "doc-c")]
    (signal,) = gallery_signals(me, found, [], [], POLICY, CALIBRATION.far_at)
    assert signal.code == SignalCode.DUPLICATE_FACE and signal.action == Action.REVIEW
    assert signal.detail == {"sessions": ["ses_1"], "matches": 1, "score": 0.8, "far_band": CALIBRATION.far_at(0.8)}
    # Without document numbers, the merchant's references tell the identities apart.
    assert codes(gallery_signals(Identity("ses_me", None, "ref-a"), [hit(0.8, "ses_1", None, "ref-b")], [], [], POLICY, CALIBRATION.far_at)) == ["duplicate_face"]
    assert gallery_signals(Identity("ses_me", None, "ref-a"), [hit(0.8, "ses_1", None, "ref-a")], [], [], POLICY, CALIBRATION.far_at) == []


def test_a_document_with_another_face_its_cap_and_the_blocklist():
    me = Identity("ses_me", "doc-a", "ref-a")
    reject = Policy(0.32, 0.178, Action.FAIL, 2)
    signals = gallery_signals(
        me, [hit(0.7, "ses_9", kind=BLOCKED)], [hit(0.05, "ses_4", "doc-a"), hit(0.6, "ses_5", "doc-a")], ["ses_4", "ses_5"], reject, CALIBRATION.far_at
    )
    assert codes(signals) == ["blocklisted_face", "document_reused", "document_cap"]
    assert all(s.action == Action.FAIL for s in signals)
    assert signals[1].detail["sessions"] == ["ses_4"] and signals[2].detail == {"approved": 2, "cap": 2, "sessions": ["ses_4", "ses_5"]}
    assert gallery_signals(me, [], [], ["ses_4"], reject, CALIBRATION.far_at) == []  # under the cap


# -- at decision time, in the real app ----------------------------------------------------------------

PERSON = "george_clooney"


async def decided(http, server, services, key, id_photo: bytes, live_photo: str, reference: str, gallery: bool) -> dict:
    """A session through the hosted pages (consent, with or without the gallery's box, and the ID photo),
    then decided as a passed live check whose camera saw `live_photo`; the merchant's view of it."""
    from realname_tools.client import HostedFlowClient
    from server.liveness.challenges import Challenge
    from server.liveness.engine import ChallengeRecord, LivenessResult
    from server.matching.images import decode_image
    from server.sessions import CheckPath
    from server.spoof.pad import PadResult
    from tests.support.media import photo
    from tests.test_live_flow import new_session, session_json

    created = await new_session(http, server, key, reference_id=reference)
    customer = HostedFlowClient(http, str(server.make_url("/")))
    assert await customer.open(created["url"]) == 303
    assert await customer.consent(gallery=gallery) == 303
    status, page = await customer.upload_document(id_photo)
    assert status == 303, page
    session = services.lifecycle.move(services.store.session(created["id"]), Status.LIVE, "test", attempts=1)
    passed = LivenessResult(True, None, None, (ChallengeRecord(Challenge.BLINK),), 0.0, 3.0, ())
    camera = decode_image(photo(f"{PERSON}/{live_photo}").read_bytes())
    await services.attempts.decide(session, [camera], passed, {}, PadResult.unavailable(), [], CheckPath.WEBRTC)
    return await session_json(http, server, key, created["id"])


def gallery_on(services, action: str = "review", cap: int = 5) -> None:
    merchant_id = services.store.api_keys()[0].merchant_id
    services.lifecycle.gallery.records.configure(merchant_id, True, action, cap)


@pytest.mark.reads_documents
async def test_one_face_under_two_documents_goes_to_review_until_the_first_is_erased(http, server, services, models, sandbox_key):
    from tests.support.api import auth
    from tests.support.documents import card_with_face, jpeg
    from tests.support.media import photo

    gallery_on(services)
    first_card, second_card = (card_with_face(models, photo(f"{PERSON}/deepface_img{n}.jpg"), seed=seed) for n, seed in ((38, 11), (40, 12)))
    assert first_card.truth["id_number"] != second_card.truth["id_number"]
    first = await decided(http, server, services, sandbox_key, jpeg(first_card.image), "deepface_img39.jpg", "customer-1", gallery=True)
    assert first["status"] == "approved", first["match"]
    assert first["document"]["fields"]["id_number"]["value"] == first_card.truth["id_number"]
    assert [entry.kind for entry in services.lifecycle.gallery.records.entries_of(first["id"])] == [ENROLLED]

    second = await decided(http, server, services, sandbox_key, jpeg(second_card.image), "deepface_img41.jpg", "customer-2", gallery=True)
    assert second["status"] == "review" and second["match"]["decision"] == "match"
    assert second["liveness"]["review_because"] == ["duplicate_face"]
    (signal,) = [s for s in second["liveness"]["signals"] if s["code"] == "duplicate_face"]
    assert signal["detail"]["sessions"] == [first["id"]] and signal["detail"]["score"] >= services.lifecycle.gallery.threshold
    assert signal["action"] == "review" and signal["detail"]["far_band"] <= 1e-4

    async with http.delete(server.make_url(f"/api/v1/sessions/{first['id']}"), headers=auth(sandbox_key)) as response:
        assert response.status == 200
    assert services.lifecycle.gallery.records.entries_of(first["id"]) == []
    third = await decided(http, server, services, sandbox_key, jpeg(second_card.image), "deepface_img41.jpg", "customer-3", gallery=False)
    assert [s["code"] for s in third["liveness"]["signals"] if s["code"] == "duplicate_face"] == []
    # The second one is in review, not approved: it was never enrolled; the third did not consent.
    assert third["status"] == "approved" and services.lifecycle.gallery.records.count() == 0


async def test_without_the_customers_consent_nothing_is_enrolled_and_reject_rejects(http, server, services, sandbox_key):
    from tests.support.media import photo

    id_photo = photo(f"{PERSON}/deepface_img38.jpg").read_bytes()
    gallery_on(services, action="reject")
    declined = await decided(http, server, services, sandbox_key, id_photo, "deepface_img39.jpg", "customer-1", gallery=False)
    assert declined["status"] == "approved" and services.lifecycle.gallery.records.count() == 0
    assert declined["consent"]["gallery"] is False and services.store.session(declined["id"]).consent["gallery"]["text"]
    agreed = await decided(http, server, services, sandbox_key, id_photo, "deepface_img39.jpg", "customer-2", gallery=True)
    assert agreed["status"] == "approved" and agreed["consent"]["gallery"] is True and services.lifecycle.gallery.records.count() == 1
    # Another reference (no document read here) with the same face: the merchant rejects such sessions.
    again = await decided(http, server, services, sandbox_key, id_photo, "deepface_img41.jpg", "customer-3", gallery=True)
    assert again["status"] == "rejected" and again["failure_reason"] == "identity_conflict"
    assert [s["code"] for s in again["liveness"]["signals"]] == ["duplicate_face"]


async def test_the_consent_page_asks_for_the_gallery_only_when_the_merchant_turned_it_on(http, server, services, sandbox_key):
    from realname_tools.client import HostedFlowClient
    from tests.test_live_flow import new_session

    async def consent_page(lang: str) -> str:
        created = await new_session(http, server, sandbox_key)
        customer = HostedFlowClient(http, str(server.make_url("/")))
        assert await customer.open(created["url"]) == 303
        async with http.get(server.make_url(f"/verify/consent?lang={lang}")) as response:
            return await response.text()

    page = await consent_page("en")
    assert 'name="agree"' in page and 'name="gallery"' not in page
    gallery_on(services)
    page = await consent_page("en")
    assert 'name="gallery"' in page and "earlier customers" in page and "365 days" in page
    page = await consent_page("zh-CN")
    assert 'name="gallery"' in page and "以往客户" in page


async def test_an_operator_blocklists_a_face_from_the_console_and_it_is_found_later(http, server, services, sandbox_key):
    import aiohttp

    from tests.support.console import make_operator, page_csrf, sign_in
    from tests.support.media import photo

    id_photo = photo(f"{PERSON}/deepface_img38.jpg").read_bytes()
    first = await decided(http, server, services, sandbox_key, id_photo, "deepface_img39.jpg", "customer-1", gallery=False)
    assert first["status"] == "approved" and services.lifecycle.gallery.records.count() == 0  # the gallery is off
    make_operator(services, "Test Shop", "alice")
    page = f"/console/sessions/{first['id']}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as operator:
        assert await sign_in(operator, server, "Test Shop", "alice") == 303
        token = await page_csrf(operator, server, page)
        async with operator.post(server.make_url(page + "/blocklist"), data={"csrf_token": token, "reason": " "}) as response:
            assert response.status == 422
        async with operator.post(server.make_url(page + "/blocklist"), data={"csrf_token": token, "reason": "card fraud, case 7"}) as response:
            assert response.status == 200 and 'id="blocklisted"' in await response.text()
        (entry,) = services.lifecycle.gallery.records.entries_of(first["id"])
        assert entry.kind == BLOCKED and services.lifecycle.gallery.records.reason(entry) == "card fraud, case 7"
        audited = [(e["actor"], e["action"]) for e in services.store.audit_for(first["id"]) if e["action"] == "gallery.blocked"]
        assert audited == [("operator:Test Shop/alice", "gallery.blocked")]
        later = await decided(http, server, services, sandbox_key, id_photo, "deepface_img41.jpg", "customer-1", gallery=False)
        assert later["status"] == "review" and later["liveness"]["review_because"] == ["blocklisted_face"]
        (signal,) = later["liveness"]["signals"]
        assert signal["detail"]["sessions"] == [first["id"]]
        # The reviewer sees both faces side by side, the blocklisted session's linked.
        async with operator.get(server.make_url(f"/console/sessions/{later['id']}")) as response:
            review_page = await response.text()
        assert f"/console/sessions/{first['id']}/evidence/live_face_0" in review_page
        assert f"/console/sessions/{later['id']}/evidence/live_face_0" in review_page


async def test_retention_purges_gallery_entries_after_their_own_period(services):
    from server.retention import DAY, run_once

    store, gallery = services.store, services.lifecycle.gallery
    ses = session(store)
    merchant_id = store.api_keys()[0].merchant_id
    gallery.records.add(merchant_id, True, gallery.protect(templates(1)[0]), ENROLLED, ses.id)
    import time

    assert run_once(services.settings, store, services.lifecycle)["gallery_purged"] == 0
    later = time.time() + (services.settings.gallery_retention_days + 1) * DAY
    assert run_once(services.settings, store, services.lifecycle, now=later)["gallery_purged"] == 1
    assert gallery.records.count() == 0 and gallery.records.nearest(merchant_id, True, gallery.protect(templates(1)[0]), 1) == []


async def test_with_four_eyes_a_face_is_blocklisted_once_a_second_operator_asks(services):
    from server.operators.blocklist import BlockVerdict, request_block
    from tests.support.console import make_operator

    store, gallery = services.store, services.lifecycle.gallery
    ses = session(store)
    store.put_evidence(ses.id, "live_embedding", templates(1)[0].tobytes())
    merchant = store.merchant(store.api_keys()[0].merchant_id)
    alice, bob = (make_operator(services, merchant.name, name) for name in ("alice", "bob"))
    assert request_block(gallery, services.operators, alice, ses, "  ", True) == BlockVerdict.BAD_INPUT
    assert request_block(gallery, services.operators, alice, ses, "fraud ring", True) == BlockVerdict.WAITING
    assert request_block(gallery, services.operators, alice, ses, "fraud ring", True) == BlockVerdict.ALREADY_VOTED
    assert not gallery.blocked(ses.id)
    assert request_block(gallery, services.operators, bob, ses, "confirmed", True) == BlockVerdict.BLOCKED
    (entry,) = gallery.records.entries_of(ses.id)
    assert entry.kind == BLOCKED and entry.created_by == f"operator:{merchant.name}/alice+bob"
    actions = [e["action"] for e in store.audit_for(ses.id)]
    assert actions.count("gallery.block_requested") == 2 and "gallery.blocked" in actions
