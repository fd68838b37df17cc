"""API keys: created by the operator's CLI, shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from aiohttp import web

from ..storage.store import ApiKey, Store
from ..web.security import client_address
from ..web.services import SERVICES
from .problems import Problem

LIVE_PREFIX = "rn_live_"
SANDBOX_PREFIX = "rn_test_"
WEBHOOK_SECRET_PREFIX = "whsec_"


def hash_key(key: str) -> str:
    # surrogatepass: header bytes that are not UTF-8 arrive as surrogates; they hash (and never match) like any key.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_api_key(store: Store, name: str, sandbox: bool) -> tuple[str, str]:
    """(API key, webhook signing secret). Only their hash and an encrypted copy of the secret are kept."""
    key = (SANDBOX_PREFIX if sandbox else LIVE_PREFIX) + secrets.token_urlsafe(32)
    webhook_secret = WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)
    store.create_api_key(name, key[:14], hash_key(key), sandbox, webhook_secret.encode())
    store.audit("operator", "api_key.created", detail={"name": name, "prefix": key[:14], "sandbox": sandbox})
    return key, webhook_secret


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
