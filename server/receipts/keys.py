"""The receipt signing keys: Ed25519, kept like the evidence key (a setting's text from a secret store,
else a file readable by the owner only, created on first start). Rotation appends a key; the newest signs
and every older one stays in the JWK Set, so receipts signed before a rotation still verify."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from ..config import ConfigError
from ..storage.crypto import ensure_private_dir, warn_inside_data_dir
from .jws import b64url, b64url_decode, public_jwk

log = logging.getLogger(__name__)
FILE_NAME = "receipt-keys.json"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Ed25519PrivateKey
    created_at: float


def new_key() -> SigningKey:
    private_key = Ed25519PrivateKey.generate()
    return SigningKey(public_jwk(private_key.public_key())["kid"], private_key, time.time())


def parse_keyring(text: str, where: str) -> list[SigningKey]:
    try:
        entries = json.loads(text)["keys"]
        keys = [
            SigningKey(e["kid"], Ed25519PrivateKey.from_private_bytes(b64url_decode(e["d"])), float(e["created_at"]))
            for e in entries
        ]
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{where} is not a receipt keyring ({{\"keys\": [{{\"kid\", \"d\", \"created_at\"}}]}})") from error
    if not keys:
        raise ConfigError(f"{where} holds no receipt key")
    return keys


def keyring_text(keys: list[SigningKey]) -> str:
    entries: list[dict[str, Any]] = [
        {"kid": k.kid, "d": b64url(k.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())), "created_at": k.created_at}
        for k in keys
    ]
    return json.dumps({"keys": entries}, indent=1) + "\n"


class ReceiptKeys:
    """The keyring; a file is read again when it changes, so a rotation reaches every running instance."""

    def __init__(self, path: Path | None = None, text: str = "") -> None:
        self.path, self._text = path, text
        self._keys: list[SigningKey] = parse_keyring(text, "REALNAME_RECEIPT_KEYS") if text else []
        self._mtime: float | None = None
        if path is not None:
            self._reload()

    @classmethod
    def from_settings(cls, key_text: str, key_file: str, data_dir: Path, create: bool = True) -> ReceiptKeys:
        if key_text:
            return cls(text=key_text)
        path = Path(key_file).expanduser() if key_file else data_dir / FILE_NAME
        if not path.exists():
            if not create:
                raise ConfigError(f"no receipt keyring at {path} (set REALNAME_RECEIPT_KEYS_FILE, or pass --jwks)")
            write_keyring(path, [new_key()])
        warn_inside_data_dir(path, data_dir, "the receipt signing keyring", "REALNAME_RECEIPT_KEYS_FILE", "REALNAME_RECEIPT_KEYS")
        return cls(path)

    def _reload(self) -> None:
        assert self.path is not None
        mtime = self.path.stat().st_mtime_ns
        if mtime != self._mtime:
            self._keys, self._mtime = parse_keyring(self.path.read_text(), str(self.path)), mtime

    def keys(self) -> list[SigningKey]:
        if self.path is not None:
            self._reload()
        return list(self._keys)

    def current(self) -> SigningKey:
        return max(self.keys(), key=lambda k: k.created_at)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(k.private_key.public_key()) for k in sorted(self.keys(), key=lambda k: -k.created_at)]}

    def rotate(self) -> SigningKey:
        """A new signing key; the old ones stay for verification."""
        if self.path is None:
            raise ConfigError("the receipt keys come from REALNAME_RECEIPT_KEYS: add the new key there (a rotation writes a file)")
        key = new_key()
        write_keyring(self.path, [*self.keys(), key])
        return key


def write_keyring(path: Path, keys: list[SigningKey]) -> None:
    """Atomically, readable by the owner only."""
    ensure_private_dir(path.parent)
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(keyring_text(keys))
    staging.replace(path)
