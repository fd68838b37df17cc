"""Compact JWS with EdDSA (RFC 8037, Ed25519): signing, verifying against a JWK Set, and JWKs. Pure."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALGORITHM = "EdDSA"
TYPE = "realname-receipt+jwt"


class ReceiptError(ValueError):
    """A receipt that is malformed, signed by an unknown key, or whose signature does not verify."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as error:
        raise ReceiptError("not base64url") from error


def _json_part(claims: dict[str, Any]) -> str:
    return b64url(json.dumps(claims, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode("utf-8"))


def public_x(public_key: Ed25519PublicKey) -> str:
    return b64url(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def thumbprint(x: str) -> str:
    """The RFC 7638 thumbprint of an Ed25519 JWK: its key id."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def public_jwk(public_key: Ed25519PublicKey) -> dict[str, str]:
    x = public_x(public_key)
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": thumbprint(x), "alg": ALGORITHM, "use": "sig"}


def sign(claims: dict[str, Any], private_key: Ed25519PrivateKey, kid: str) -> str:
    signing_input = f"{_json_part({'alg': ALGORITHM, 'kid': kid, 'typ': TYPE})}.{_json_part(claims)}"
    return f"{signing_input}.{b64url(private_key.sign(signing_input.encode('ascii')))}"


def header_of(token: str) -> dict[str, Any]:
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise ReceiptError("a compact JWS has three parts separated by dots")
    return _decoded_json(parts[0])


def verify(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """The claims of a receipt whose signature verifies with the JWK Set's key of its `kid`."""
    token = token.strip()
    header = header_of(token)
    if header.get("alg") != ALGORITHM:
        raise ReceiptError(f"unexpected algorithm {header.get('alg')!r}")
    key = next((k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == header.get("kid")), None)
    if key is None:
        raise ReceiptError(f"no key {header.get('kid')!r} in the JWK Set")
    if key.get("kty") != "OKP" or key.get("crv") != "Ed25519":
        raise ReceiptError("the key is not an Ed25519 key")
    head, payload, signature = token.split(".")
    try:
        Ed25519PublicKey.from_public_bytes(b64url_decode(key["x"])).verify(b64url_decode(signature), f"{head}.{payload}".encode("ascii"))
    except (InvalidSignature, ValueError, KeyError, UnicodeEncodeError) as error:
        raise ReceiptError("the signature does not verify: the receipt was altered or signed by another key") from error
    return _decoded_json(payload)


def _decoded_json(part: str) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(part))
    except (ValueError, UnicodeDecodeError) as error:
        raise ReceiptError("a part is not base64url JSON") from error
    if not isinstance(value, dict):
        raise ReceiptError("a part is not a JSON object")
    return value
