"""Signing an operator in, on the real store: one answer for every wrong thing, lockouts, expiry,
disabled accounts; only the token's hash is kept."""

from __future__ import annotations

import time

import pytest

from server.flow.tokens import token_hash
from server.operators.signin import Outcome, Policy, SignIn
from tests.support.console import PASSWORD, make_operator
from tests.support.postgres import BACKENDS, database_for


@pytest.fixture(params=BACKENDS)
def database_url(request):
    """Every test here runs on SQLite and on PostgreSQL."""
    return database_for(request)


def signin_for(services, **policy) -> SignIn:
    values = {"max_failures": 3, "lockout_s": 60.0, "session_ttl_s": 3600.0, **policy}
    return SignIn(services.store, services.operators, Policy(**values))


async def test_the_right_password_signs_in_and_the_token_finds_the_operator(services):
    make_operator(services, "acme", "alice")
    signin = signin_for(services)
    result = await signin.attempt("acme", "alice", PASSWORD, "", "10.0.0.1")
    assert result.outcome == Outcome.SIGNED_IN and result.token and result.operator.name == "alice"
    assert signin.operator_for(result.token).name == "alice"
    assert signin.operator_for(result.token + "x") is None and signin.operator_for(None) is None
    assert services.store._all("SELECT token_hash FROM operator_sessions") == [{"token_hash": token_hash(result.token)}]
    signin.sign_out(result.token, result.operator)
    assert signin.operator_for(result.token) is None


async def test_unknown_merchant_unknown_name_and_wrong_password_look_the_same(services):
    make_operator(services, "acme", "alice")
    signin = signin_for(services, max_failures=10)
    for merchant, name, password in (("nope", "alice", PASSWORD), ("acme", "bob", PASSWORD), ("acme", "alice", "wrong password!")):
        assert (await signin.attempt(merchant, name, password, "", "10.0.0.1")).outcome == Outcome.WRONG


async def test_the_account_locks_after_the_limit_and_unlocks_after_the_pause(services):
    operator = make_operator(services, "acme", "alice")
    signin = signin_for(services)
    outcomes = [(await signin.attempt("acme", "alice", "wrong password!", "", f"10.0.0.{i}")).outcome for i in range(3)]
    assert outcomes == [Outcome.WRONG, Outcome.WRONG, Outcome.LOCKED]
    assert (await signin.attempt("acme", "alice", PASSWORD, "", "10.0.0.9")).outcome == Outcome.LOCKED
    services.store._write("UPDATE operators SET locked_until = ? WHERE id = ?", (time.time() - 1, operator.id))
    assert (await signin.attempt("acme", "alice", PASSWORD, "", "10.0.0.9")).outcome == Outcome.SIGNED_IN
    assert services.operators.get(operator.id).failed_signins == 0


async def test_a_success_resets_the_count_of_wrong_tries(services):
    make_operator(services, "acme", "alice")
    signin = signin_for(services)
    for _ in range(2):
        await signin.attempt("acme", "alice", "wrong password!", "", "10.0.0.1")
    assert (await signin.attempt("acme", "alice", PASSWORD, "", "10.0.0.1")).outcome == Outcome.SIGNED_IN
    for _ in range(2):
        assert (await signin.attempt("acme", "alice", "wrong password!", "", "10.0.0.1")).outcome == Outcome.WRONG


async def test_sessions_expire_and_a_disabled_operator_is_signed_out(services):
    operator = make_operator(services, "acme", "alice")
    short = signin_for(services, session_ttl_s=0.001)
    result = await short.attempt("acme", "alice", PASSWORD, "", "10.0.0.1")
    time.sleep(0.01)
    assert short.operator_for(result.token) is None
    signin = signin_for(services)
    result = await signin.attempt("acme", "alice", PASSWORD, "", "10.0.0.1")
    services.operators.set_disabled(operator.id, True)
    assert signin.operator_for(result.token) is None
    assert (await signin.attempt("acme", "alice", PASSWORD, "", "10.0.0.1")).outcome == Outcome.WRONG
