"""Signing an operator in, on the real store: one answer for every wrong thing, lockouts, expiry,
disabled accounts; only the token's hash is kept."""

from __future__ import annotations

import time

import pytest

from server.flow.tokens import token_hash
from server.operators.signin import Outcome, Policy, SignIn, backoff_keys
from server.ratelimit import backoff_delay, network_of
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


async def test_wrong_tries_delay_the_account_and_the_right_password_passes_after_the_delay(services):
    make_operator(services, "acme", "alice")
    signin = signin_for(services)
    outcomes = [(await signin.attempt("acme", "alice", "wrong password!", "", "10.0.0.1")).outcome for _ in range(3)]
    assert outcomes == [Outcome.WRONG] * 3
    assert (await signin.attempt("acme", "alice", PASSWORD, "", "10.0.0.1")).outcome == Outcome.WRONG  # during the delay
    assert signin.backoffs.paused_for(backoff_keys("acme", "alice", "10.0.0.1")["pair"]) > 0
    assert signin.backoffs.paused_for(backoff_keys("acme", "alice", "10.0.0.1")["account"]) == 0  # 30 wrong tries for that
    assert (await signin.attempt("acme", "alice", PASSWORD, "", "10.0.0.9")).outcome == Outcome.SIGNED_IN  # another network
    services.store._write("UPDATE failure_counts SET paused_until = ?", (time.time() - 1,))
    assert (await signin.attempt("acme", "alice", PASSWORD, "", "10.0.0.1")).outcome == Outcome.SIGNED_IN


def test_the_delays_grow_and_are_capped():
    assert [backoff_delay(n, 3, 30.0, 900.0) for n in range(1, 10)] == [0, 0, 30, 60, 120, 240, 480, 900, 900]


def test_ipv6_addresses_count_by_their_64_and_ipv4_by_address():
    assert network_of("2001:db8:1:2:aaaa::1") == network_of("2001:db8:1:2:ffff:1:2:3") == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:3::1") != network_of("2001:db8:1:2::1")
    assert network_of("192.0.2.7") == network_of("::ffff:192.0.2.7") == "192.0.2.7" != network_of("192.0.2.8")
    assert network_of("unknown") == "unknown"


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
