"""Encryption at rest for evidence and secrets (AES-256-GCM), and the service's generated keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..config import ConfigError

NONCE_BYTES = 12
log = logging.getLogger(__name__)


class CryptoKeyError(ValueError):
    pass


class WrongKeyError(CryptoKeyError, ConfigError):
    """The configured evidence key is not the one the database was written with."""


class Cipher:
    """AES-GCM with a random nonce per message; `context` (e.g. session id and kind) is authenticated,
    so a ciphertext copied to another row does not decrypt."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise CryptoKeyError("the evidence key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)
        # A separate key for lookup hashes, so a hash never doubles as anything sealed with the main key.
        self._mac_key = HKDF(hashes.SHA256(), 32, salt=None, info=b"realname lookup hash").derive(key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode())
        except InvalidTag as error:
            raise CryptoKeyError("evidence cannot be decrypted with the configured key") from error

    def seal_text(self, text: str | None, context: str) -> bytes | None:
        return None if text is None else self.seal(text.encode("utf-8"), context)

    def open_text(self, sealed: bytes | None, context: str) -> str | None:
        return None if sealed is None else self.open(sealed, context).decode("utf-8")

    def lookup_hash(self, text: str, purpose: str) -> str:
        """HMAC-SHA256 for exact-match lookups of a sealed value; useless without the key."""
        return hmac.new(self._mac_key, f"{purpose}\0{text}".encode(), hashlib.sha256).hexdigest()


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


def load_evidence_key(key_text: str, key_file: str, data_dir: Path, warn: bool = True) -> bytes:
    """The evidence key: from the setting's text (a secret store), else from `key_file`, else from
    DATA_DIR/evidence.key (created on first start). With `warn` (the service's start), logs
    `evidence_key_warning`; the command-line tools leave it to `settings`."""
    if key_text:
        return decode_key(key_text)
    warning = evidence_key_warning(key_text, key_file, data_dir)
    if warn and warning:
        log.warning("%s", warning)
    return load_or_create_key(_key_path(key_file, data_dir))


def evidence_key_warning(key_text: str, key_file: str, data_dir: Path) -> str | None:
    """Why the evidence key's place is unsafe, or None."""
    if key_text:
        return None
    return inside_data_dir_warning(_key_path(key_file, data_dir), data_dir, "the evidence key", "REALNAME_EVIDENCE_KEY_FILE", "REALNAME_EVIDENCE_KEY")


def warn_inside_data_dir(path: Path, data_dir: Path, what: str, file_setting: str, text_setting: str) -> None:
    warning = inside_data_dir_warning(path, data_dir, what, file_setting, text_setting)
    if warning:
        log.warning("%s", warning)


def inside_data_dir_warning(path: Path, data_dir: Path, what: str, file_setting: str, text_setting: str) -> str | None:
    """A key inside the data folder travels with every copy of it (a backup, a stolen disk)."""
    if not _inside(path, data_dir):
        return None
    return (
        f"{what} is stored inside the data folder ({data_dir}): a copy of that folder carries it along; "
        f"set {file_setting} to a file on another volume or pass {text_setting} from a secret store"
    )


def _key_path(key_file: str, data_dir: Path) -> Path:
    return Path(key_file).expanduser() if key_file else data_dir / "evidence.key"


def load_gallery_key(key_text: str, key_file: str, data_dir: Path) -> bytes:
    """The face gallery's key (its templates' rotation), kept like the evidence key: GALLERY_KEY,
    else GALLERY_KEY_FILE, else DATA_DIR/gallery.key."""
    if key_text:
        return decode_key(key_text)
    path = gallery_key_path(key_file, data_dir)
    warn_inside_data_dir(path, data_dir, "the gallery key", "REALNAME_GALLERY_KEY_FILE", "REALNAME_GALLERY_KEY")
    return load_or_create_key(path)


def gallery_key_path(key_file: str, data_dir: Path) -> Path:
    return Path(key_file).expanduser() if key_file else data_dir / "gallery.key"


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())
