"""Signing an operator in: the password (scrypt, off the event loop), the TOTP code when enabled,
growing delays per account and per client network after wrong tries, and a random session token of
which only a hash is kept."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ..flow.tokens import new_token, token_hash
from ..ratelimit import backoff_delay, network_of
from ..storage.backoffs import Backoffs
from ..storage.operators import Operator, OperatorStore
from ..storage.store import Store
from . import totp
from .passwords import DUMMY_HASH, verify_password


class Role(StrEnum):
    REVIEWER = "reviewer"  # sees the merchant's sessions and the dashboard, decides reviews
    ADMIN = "admin"  # and redacts sessions


class Outcome(StrEnum):
    SIGNED_IN = "signed_in"
    # The one answer for an unknown name, a wrong password or code, and a try made while a delay runs:
    # the same status, the same page, and the same work (one password hash), so none tells them apart.
    WRONG = "wrong"


@dataclass(frozen=True)
class Policy:
    max_failures: int  # wrong tries, for one account from one network, before the delays begin
    lockout_s: float  # the longest delay; a key quiet this long after its delay starts over
    session_ttl_s: float
    first_delay_s: float = 30.0  # the first delay, doubling with each further wrong try

    def delay_after(self, free: int) -> Callable[[int], float]:
        return lambda failures: backoff_delay(failures, free, self.first_delay_s, self.lockout_s)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    operator: Operator | None = None
    token: str | None = None  # for the cookie; shown once


def account_key(merchant_name: str, name: str) -> str:
    return f"account:{merchant_name}\0{name}"


def backoff_keys(merchant_name: str, name: str, address: str) -> dict[str, str]:
    """What a wrong try counts against: the account from this network (the operator's own typos), the
    network across accounts (spraying), and the account from everywhere (guessing from many networks).
    A name that does not exist is counted the same way as one that does."""
    network = network_of(address)
    account = account_key(merchant_name, name)
    return {"pair": f"{account}\0{network}", "network": f"network:{network}", "account": account}


class SignIn:
    """Growing delays instead of a lock: after `max_failures` wrong tries (twice as many from one network,
    ten times as many for one account from all networks) each further try waits a delay that doubles. A
    try during the delay is answered as a wrong one, whatever the password, and is not counted: an
    attacker cannot lengthen it, and the operator's right password passes once it is over. Counts live in
    the database, shared by every instance and kept across restarts."""

    def __init__(self, store: Store, operators: OperatorStore, policy: Policy) -> None:
        self.store = store
        self.operators = operators
        self.policy = policy
        self.backoffs = Backoffs(store)
        self._failures = 0

    def free_tries(self) -> dict[str, int]:
        limit = self.policy.max_failures
        return {"pair": limit, "network": 2 * limit, "account": 10 * limit}

    async def attempt(self, merchant_name: str, name: str, password: str, code: str, address: str) -> Result:
        keys = backoff_keys(merchant_name, name, address)
        paused = any(self.backoffs.paused_for(key) > 0 for key in keys.values())
        merchant = self.store.merchant_by_name(merchant_name)
        operator = self.operators.by_name(merchant.id, name) if merchant else None
        usable = operator is not None and operator.disabled_at is None
        stored = operator.password_hash if usable and operator is not None else DUMMY_HASH
        good = await asyncio.get_running_loop().run_in_executor(None, verify_password, password, stored)
        actor = operator.actor if operator is not None else "console"
        if paused:
            self.store.audit(actor, "console.signin_refused", detail={"why": "delay"})
            return Result(Outcome.WRONG)
        if good and operator is not None and usable and operator.has_totp:
            good = self._code_is_good(operator, code)
        if not (good and usable and operator is not None):
            self._record_failure(keys)
            detail = {"why": "wrong"} if usable else {"merchant": merchant_name[:64], "why": "unknown"}
            self.store.audit(actor if usable else "console", "console.signin_failed", detail=detail)
            return Result(Outcome.WRONG)
        self.backoffs.clear(keys["pair"])
        self.backoffs.clear(keys["account"])
        self.operators.record_success(operator.id)
        token = new_token()
        self.operators.add_session(token_hash(token), operator.id, self.policy.session_ttl_s)
        self.store.audit(operator.actor, "console.signed_in")
        return Result(Outcome.SIGNED_IN, operator, token)

    def _record_failure(self, keys: dict[str, str]) -> None:
        free = self.free_tries()
        for kind, key in keys.items():
            self.backoffs.record_failure(key, self.policy.delay_after(free[kind]), self.policy.lockout_s)
        self._failures += 1
        if self._failures % 256 == 0:
            self.backoffs.forget_old()

    def _code_is_good(self, operator: Operator, code: str) -> bool:
        secret = self.operators.totp_secret(operator.id)
        step = totp.matching_step(secret, code, time.time()) if secret else None
        return step is not None and self.operators.use_totp_step(operator.id, step)

    def operator_for(self, token: str | None) -> Operator | None:
        return self.operators.session_operator(token_hash(token)) if token else None

    def sign_out(self, token: str, operator: Operator) -> None:
        self.operators.end_session(token_hash(token))
        self.store.audit(operator.actor, "console.signed_out")
