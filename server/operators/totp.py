"""Time-based one-time passwords (RFC 6238 on RFC 4226's HOTP, SHA-1, 6 digits, 30 s), the kind every
authenticator app reads from an otpauth:// URI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

PERIOD_S = 30
DIGITS = 6
SECRET_BYTES = 20
WINDOW_STEPS = 1  # a code from the step before or after is accepted too (clock drift, typing time)


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def hotp(secret: bytes, counter: int, digits: int = DIGITS) -> str:
    mac = hmac.new(secret, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_at(now: float) -> int:
    return int(now // PERIOD_S)


def code_at(secret: bytes, now: float, digits: int = DIGITS) -> str:
    return hotp(secret, step_at(now), digits)


def matching_step(secret: bytes, code: str, now: float) -> int | None:
    """The time step whose code this is (within the window), or None."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    current = step_at(now)
    for step in range(current - WINDOW_STEPS, current + WINDOW_STEPS + 1):
        if hmac.compare_digest(hotp(secret, step), code):
            return step
    return None


def provisioning_uri(secret: bytes, account: str, issuer: str = "Realname") -> str:
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode({"secret": base64.b32encode(secret).decode().rstrip("="), "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": PERIOD_S})
    return f"otpauth://totp/{label}?{query}"
