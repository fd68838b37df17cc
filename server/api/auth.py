"""API keys: created by the operator's CLI for a merchant account, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import itertools
import secrets
from dataclasses import dataclass

from aiohttp import web

from ..http.client import client_address
from ..http.problems import Problem
from ..http.services import SERVICES
from ..storage.store import ApiKey, Merchant, Store

LIVE_PREFIX = "rn_live_"
SANDBOX_PREFIX = "rn_test_"
WEBHOOK_SECRET_PREFIX = "whsec_"
PREFIX_CHARS = 14  # shown in listings and audit entries; identifies a key without revealing it


def hash_key(key: str) -> str:
    # surrogatepass: header bytes that are not UTF-8 arrive as surrogates; they hash (and never match) like any key.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_api_key(store: Store, merchant: str | Merchant, sandbox: bool, name: str | None = None) -> tuple[str, str]:
    """(API key, webhook signing secret) for the merchant, created under that name if it is a new one.
    Only the key's hash and an encrypted copy of the secret are kept. Key names are unique per merchant;
    without one the key is called "live 1", "sandbox 2", ..."""
    account = merchant if isinstance(merchant, Merchant) else store.merchant_by_name(merchant) or store.create_merchant(merchant)
    key = (SANDBOX_PREFIX if sandbox else LIVE_PREFIX) + secrets.token_urlsafe(32)
    webhook_secret = WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)
    name = name or _free_key_name(store, account.id, "sandbox" if sandbox else "live")
    store.create_api_key(account.id, name, key[:PREFIX_CHARS], hash_key(key), sandbox, webhook_secret.encode())
    store.audit(
        "operator", "api_key.created", detail={"merchant": account.name, "name": name, "prefix": key[:PREFIX_CHARS], "sandbox": sandbox}
    )
    return key, webhook_secret


def _free_key_name(store: Store, merchant_id: int, kind: str) -> str:
    taken = {key.name for key in store.api_keys(merchant_id)}
    return next(f"{kind} {n}" for n in itertools.count(1) if f"{kind} {n}" not in taken)


class KeyLookupError(LookupError):
    """No active key, or more than one, answers to the name or prefix given."""


@dataclass(frozen=True)
class Revocation:
    key: ApiKey
    open_sessions: int  # sessions the key created that are still under way; they keep working
    other_active_keys: int  # the merchant's keys that can still read and erase them


def find_active_key(store: Store, name_or_prefix: str, merchant: str | None = None) -> ApiKey:
    """The one active key with this name (within `merchant` if given) or whose prefix starts with this text."""
    text = name_or_prefix.strip()
    is_prefix = text.startswith((LIVE_PREFIX, SANDBOX_PREFIX)) and len(text) > len(LIVE_PREFIX)
    matches = [
        key
        for key in store.api_keys()
        if key.revoked_at is None
        and (merchant is None or key.merchant == merchant)
        and (key.name == text or (is_prefix and (key.prefix.startswith(text) or text.startswith(key.prefix))))
    ]
    if not matches:
        raise KeyLookupError(f"no active key named or prefixed {text!r}" + (f" for merchant {merchant!r}" if merchant else ""))
    if len(matches) > 1:
        which = ", ".join(f"{k.prefix} ({k.merchant} / {k.name})" for k in matches)
        raise KeyLookupError(f"{text!r} matches {len(matches)} active keys: {which}; give the key's prefix or --merchant")
    return matches[0]


def revoke_api_key(store: Store, name_or_prefix: str, merchant: str | None = None) -> Revocation:
    """Revoke one key at once. Its sessions stay the merchant's: they keep running, and the merchant's
    other keys can still read and erase them."""
    key = find_active_key(store, name_or_prefix, merchant)
    store.revoke_api_key(key.id)
    store.audit("operator", "api_key.revoked", detail={"merchant": key.merchant, "name": key.name, "prefix": key.prefix})
    others = sum(1 for k in store.api_keys(key.merchant_id) if k.revoked_at is None)
    return Revocation(key, store.open_sessions_of_key(key.id), others)


def authenticate(request: web.Request) -> ApiKey:
    services = request.app[SERVICES]
    address = client_address(request)
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    api_key = services.store.api_key_by_hash(hash_key(key.strip())) if scheme.lower() == "bearer" and key.strip() else None
    if api_key is None:
        wait = services.bad_key_limiter.check(address)
        if wait:
            raise Problem(429, "rate_limited", "too many requests with a wrong API key", {"Retry-After": str(int(wait) + 1)})
        raise Problem(401, "unauthorized", "send a valid API key as 'Authorization: Bearer <key>'", {"WWW-Authenticate": "Bearer"})
    wait = services.api_limiter.check(f"key:{api_key.id}")
    if wait:
        raise Problem(429, "rate_limited", "this API key is over its request rate", {"Retry-After": str(int(wait) + 1)})
    return api_key
