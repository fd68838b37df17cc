"""Encryption at rest for evidence and secrets (AES-256-GCM), and the service's generated keys."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class CryptoKeyError(ValueError):
    pass


class Cipher:
    """AES-GCM with a random nonce per message; `context` (e.g. session id and kind) is authenticated,
    so a ciphertext copied to another row does not decrypt."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise CryptoKeyError("the evidence key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode())
        except InvalidTag as error:
            raise CryptoKeyError("evidence cannot be decrypted with the configured key") from error


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def load_or_create_key(path: Path) -> bytes:
    """32 random bytes kept in a file readable by the owner only, created on first start."""
    if path.exists():
        key = base64.b64decode(path.read_text().strip())
        if len(key) != 32:
            raise CryptoKeyError(f"{path} does not hold a 32-byte base64 key")
        return key
    ensure_private_dir(path.parent)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(base64.b64encode(key).decode() + "\n")
    return key


def decode_key(text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as error:
        raise CryptoKeyError("the evidence key is not valid base64") from error
    if len(key) != 32:
        raise CryptoKeyError("the evidence key must decode to 32 bytes")
    return key
