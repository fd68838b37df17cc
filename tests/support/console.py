"""The operator console from a test's side: operators made through the real store, signing in with a
browser-like client through the real pages, and a session brought to `review` the way the live check
leaves one (statuses through Lifecycle, face crops as evidence)."""

from __future__ import annotations

import re

import numpy as np

from server.operators.passwords import ScryptCost, hash_password
from server.sessions import Session, Status
from server.storage.operators import Operator

PASSWORD = "correct horse battery staple"
CHEAP = ScryptCost(n=2**12)  # the stored parameters are honoured: a cheaper hash keeps the tests quick
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def make_operator(services, merchant: str, name: str, role: str = "reviewer", password: str = PASSWORD) -> Operator:
    account = services.store.merchant_by_name(merchant) or services.store.create_merchant(merchant)
    return services.operators.create(account.id, name, role, hash_password(password, CHEAP))


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def sign_in(http, server, merchant: str, name: str, password: str = PASSWORD, code: str = "") -> int:
    """The status of the sign-in POST (303 on success; the client keeps the cookie)."""
    async with http.get(server.make_url("/console/signin")) as response:
        token = csrf_of(await response.text())
    form = {"csrf_token": token, "merchant": merchant, "name": name, "password": password, "code": code}
    async with http.post(server.make_url("/console/signin"), data=form, allow_redirects=False) as response:
        return response.status


async def page_csrf(http, server, path: str) -> str:
    async with http.get(server.make_url(path)) as response:
        assert response.status == 200, response.status
        return csrf_of(await response.text())


def bring_to_review(services, session_id: str, face_jpeg: bytes, score: float = 0.29) -> Session:
    """What the live check does when the match lands in the review band (see flow/attempts.py _decide)."""
    lifecycle, store = services.lifecycle, services.store
    session = store.session(session_id)
    assert session is not None
    if session.status == Status.CREATED:
        session = lifecycle.record_consent(session, "en", "consent text", "test")
    if session.status == Status.CONSENTED:
        session = lifecycle.move(session, Status.ID_UPLOADED, "customer")
    store.put_evidence(session_id, "reference_face", face_jpeg)
    store.put_evidence(session_id, "reference_embedding", np.ones(512, dtype=np.float32).tobytes())
    session = lifecycle.move(session, Status.LIVE, "system", attempts=1)
    session = lifecycle.move(session, Status.PROCESSING, "system", liveness={"passed": True, "challenges": [], "signals": [], "pad": None})
    store.put_evidence(session_id, "live_face_0", face_jpeg)
    match = {"score": score, "decision": "review", "threshold": 0.3221, "review_threshold": 0.178, "far_band": 0.0005}
    return lifecycle.move(session, Status.REVIEW, "system", match=match)
