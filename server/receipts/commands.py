"""`python -m server receipts rotate-key` and `python -m server verify-receipt FILE [--jwks FILE_OR_URL]`."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..config import ConfigError, load_settings
from . import jws
from .keys import ReceiptKeys

JWKS_TIMEOUT_S = 10.0
MAX_JWKS_BYTES = 256 * 1024


def _keys(config: str | None) -> ReceiptKeys:
    """The service's keyring as it is; never a new one (that is the service's first start)."""
    settings = load_settings(config)
    return ReceiptKeys.from_settings(settings.receipt_keys, settings.receipt_keys_file, settings.data_path, create=False)


def cmd_rotate(args: argparse.Namespace) -> int:
    keys = _keys(args.config)
    key = keys.rotate()
    print(f"new receipt signing key {key.kid}; {len(keys.keys()) - 1} older key(s) kept for verification")
    return 0


def load_jwks(source: str | None, config: str | None) -> dict[str, Any]:
    """A saved JWK Set file, a URL serving one, or (none given) the local keyring's public keys."""
    if not source:
        return _keys(config).jwks()
    try:
        if source.startswith(("https://", "http://")):
            with urllib.request.urlopen(source, timeout=JWKS_TIMEOUT_S) as response:
                text = response.read(MAX_JWKS_BYTES).decode("utf-8")
        else:
            text = Path(source).expanduser().read_text(encoding="utf-8")
        value = json.loads(text)
    except (OSError, urllib.error.URLError, ValueError) as error:
        raise ConfigError(f"cannot read the JWK Set {source}: {error}") from error
    if not isinstance(value, dict) or not isinstance(value.get("keys"), list):
        raise ConfigError(f"{source} is not a JWK Set")
    return value


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        token = Path(args.file).expanduser().read_text(encoding="utf-8").strip() if args.file != "-" else sys.stdin.read().strip()
    except (OSError, UnicodeDecodeError) as error:
        print(f"error (receipt): cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    jwks = load_jwks(args.jwks, args.config)
    try:
        claims = jws.verify(token, jwks)
    except jws.ReceiptError as error:
        print(f"INVALID receipt: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"valid": True, "kid": jws.header_of(token)["kid"], "claims": claims}, indent=2, ensure_ascii=False))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    receipts = subparsers.add_parser("receipts", help="manage the keys that sign verification receipts")
    receipts_sub = receipts.add_subparsers(dest="receipts_command", required=True)
    rotate = receipts_sub.add_parser("rotate-key", help="add a new signing key; older keys stay in /.well-known/jwks.json")
    rotate.set_defaults(func=cmd_rotate)
    verify = subparsers.add_parser("verify-receipt", help="verify a receipt (compact JWS) offline and print its claims")
    verify.add_argument("file", help="file holding the receipt, or - for standard input")
    verify.add_argument("--jwks", help="saved JWK Set file or its URL (default: this service's own keys)")
    verify.set_defaults(func=cmd_verify)
