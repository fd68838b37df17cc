"""Operator passwords, hashed with scrypt (memory-hard, in the standard library): a random salt per
password, and the cost parameters stored with the hash so they can be raised later."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

MIN_LENGTH = 12
MAX_LENGTH = 1024  # a longer "password" is only a way to make us hash megabytes


@dataclass(frozen=True)
class ScryptCost:
    n: int = 2**15
    r: int = 8
    p: int = 1

    @property
    def maxmem(self) -> int:
        return 128 * self.r * self.n * self.p * 2 + 1024 * 1024


DEFAULT_COST = ScryptCost()
MAX_N = 2**20  # a stored hash asking for more is refused (it could make a verification take minutes)


class PasswordError(ValueError):
    pass


def check_new_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise PasswordError(f"a password has at most {MAX_LENGTH} characters")


def hash_password(password: str, cost: ScryptCost = DEFAULT_COST) -> str:
    salt = secrets.token_bytes(16)
    derived = _derive(password, salt, cost)
    return "$".join(["scrypt", str(cost.n), str(cost.r), str(cost.p), _b64(salt), _b64(derived)])


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, expected = stored.split("$")
        cost = ScryptCost(int(n), int(r), int(p))
        if scheme != "scrypt" or not 1 < cost.n <= MAX_N or not 0 < cost.r <= 32 or not 0 < cost.p <= 16:
            return False
        derived = _derive(password[:MAX_LENGTH], _unb64(salt), cost)
        return hmac.compare_digest(derived, _unb64(expected))
    except ValueError:
        return False


def needs_rehash(stored: str, cost: ScryptCost = DEFAULT_COST) -> bool:
    return not stored.startswith(f"scrypt${cost.n}${cost.r}${cost.p}$")


# Verified when the operator named does not exist, so a wrong name takes as long as a wrong password.
DUMMY_HASH = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def _derive(password: str, salt: bytes, cost: ScryptCost) -> bytes:
    return hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=cost.n, r=cost.r, p=cost.p, maxmem=cost.maxmem, dklen=32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
