"""Signing an operator in: the password (scrypt, off the event loop), the TOTP code when enabled,
lockouts per account and per client address, and a random session token of which only a hash is kept."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from enum import StrEnum

from ..flow.tokens import new_token, token_hash
from ..ratelimit import FailureLimiter
from ..storage.operators import Operator, OperatorStore
from ..storage.store import Store
from . import totp
from .passwords import DUMMY_HASH, verify_password


class Role(StrEnum):
    REVIEWER = "reviewer"  # sees the merchant's sessions and the dashboard, decides reviews
    ADMIN = "admin"  # and redacts sessions


class Outcome(StrEnum):
    SIGNED_IN = "signed_in"
    WRONG = "wrong"  # the same answer for an unknown name, a wrong password and a wrong code
    LOCKED = "locked"  # the account, or this client address, is paused after too many wrong tries


@dataclass(frozen=True)
class Policy:
    max_failures: int  # wrong sign-ins in a row that lock an account, and per address within the window
    lockout_s: float
    session_ttl_s: float


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    operator: Operator | None = None
    token: str | None = None  # for the cookie; shown once


class SignIn:
    def __init__(self, store: Store, operators: OperatorStore, policy: Policy) -> None:
        self.store = store
        self.operators = operators
        self.policy = policy
        self.addresses = FailureLimiter(policy.max_failures * 2, window_s=policy.lockout_s, pause_s=policy.lockout_s)

    async def attempt(self, merchant_name: str, name: str, password: str, code: str, address: str) -> Result:
        if self.addresses.paused_for(address):
            self.store.audit("console", "console.signin_refused", detail={"why": "address_paused"})
            return Result(Outcome.LOCKED)
        merchant = self.store.merchant_by_name(merchant_name)
        operator = self.operators.by_name(merchant.id, name) if merchant else None
        loop = asyncio.get_running_loop()
        if operator is None or operator.disabled_at is not None:
            await loop.run_in_executor(None, verify_password, password, DUMMY_HASH)
            self.addresses.record(address)
            self.store.audit("console", "console.signin_failed", detail={"merchant": merchant_name[:64], "why": "unknown"})
            return Result(Outcome.WRONG)
        if operator.locked_until and operator.locked_until > time.time():
            self.addresses.record(address)
            self.store.audit(operator.actor, "console.signin_refused", detail={"why": "account_locked"})
            return Result(Outcome.LOCKED)
        good = await loop.run_in_executor(None, verify_password, password, operator.password_hash)
        if good and operator.has_totp:
            good = self._code_is_good(operator, code)
        if not good:
            self.addresses.record(address)
            locked = self.operators.record_failure(operator.id, self.policy.max_failures, self.policy.lockout_s)
            self.store.audit(operator.actor, "console.signin_failed", detail={"locked": locked})
            return Result(Outcome.LOCKED if locked else Outcome.WRONG)
        self.operators.record_success(operator.id)
        token = new_token()
        self.operators.add_session(token_hash(token), operator.id, self.policy.session_ttl_s)
        self.store.audit(operator.actor, "console.signed_in")
        return Result(Outcome.SIGNED_IN, operator, token)

    def _code_is_good(self, operator: Operator, code: str) -> bool:
        secret = self.operators.totp_secret(operator.id)
        step = totp.matching_step(secret, code, time.time()) if secret else None
        return step is not None and self.operators.use_totp_step(operator.id, step)

    def operator_for(self, token: str | None) -> Operator | None:
        return self.operators.session_operator(token_hash(token)) if token else None

    def sign_out(self, token: str, operator: Operator) -> None:
        self.operators.end_session(token_hash(token))
        self.store.audit(operator.actor, "console.signed_out")
