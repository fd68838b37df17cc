"""`python -m server gallery ...`: a merchant's gallery settings, its state, and re-keying.

`configure` turns a merchant's gallery on or off (off removes its enrolled faces at once, keeping its
blocklist), with the action a hit takes and the per-document cap. `rekey` makes a new gallery key and
rotates every stored template to it in one transaction; run it with the service stopped (a running
service keeps the old rotation in memory)."""

from __future__ import annotations

import argparse
import base64
import os
import secrets
from collections.abc import Callable
from functools import partial
from pathlib import Path

from ..config import load_settings
from ..console import fail, print_json
from ..storage.crypto import ensure_private_dir, gallery_key_path, load_gallery_key
from ..storage.gallery import GalleryStore
from ..storage.store import Store
from .service import ACTIONS, check_key, rekey


def cmd_gallery(open_store: Callable[..., Store], args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    store = open_store(settings)
    try:
        records = GalleryStore(store)
        data = ensure_private_dir(settings.data_path)
        key = load_gallery_key(settings.gallery_key, settings.gallery_key_file, data)
        check_key(records, key)
        if args.gallery_command == "configure":
            merchant = store.merchant_by_name(args.merchant)
            if merchant is None:
                return fail("not_found", f"no merchant named {args.merchant!r}", args.json)
            enabled = {"on": True, "off": False, None: merchant.gallery}[args.state]
            action = args.action or merchant.gallery_action
            cap = merchant.document_cap if args.document_cap is None else args.document_cap
            if cap < 0:
                return fail("bad_cap", "--document-cap must be 0 (no cap) or more", args.json)
            removed = records.configure(merchant.id, enabled, action, cap)
            detail = {"merchant": merchant.name, "gallery": enabled, "action": action, "document_cap": cap, "removed": removed}
            store.audit("cli", "merchant.gallery", detail=detail)
            print_json(detail) if args.json else print(
                f"{merchant.name!r}: gallery {'on' if enabled else 'off'}, hits go to {action}, document cap {cap or 'none'}"
                + (f"; {removed} enrolled face(s) removed" if removed else "")
            )
        elif args.gallery_command == "status":
            rows = [
                {"merchant": m.name, "gallery": m.gallery, "action": m.gallery_action, "document_cap": m.document_cap, "entries": records.count(m.id)}
                for m in store.merchants()
            ]
            if args.json:
                print_json({"engine": records.engine, "merchants": rows})
            else:
                print(f"engine: {records.engine}")
                for row in rows:
                    print(f"{row['merchant']:<24} {'on' if row['gallery'] else 'off':<4} {row['action']:<7} cap {row['document_cap']:<3} {row['entries']} entries")
        else:
            return _rekey(store, records, settings, key, data, args.json)
    finally:
        store.close()
    return 0


def _rekey(store: Store, records: GalleryStore, settings, key: bytes, data: Path, as_json: bool) -> int:
    new_key = secrets.token_bytes(32)
    encoded = base64.b64encode(new_key).decode()
    path = None if settings.gallery_key else gallery_key_path(settings.gallery_key_file, data)
    if path is not None:  # the new key is on disk before the database changes, so it cannot be lost
        pending = path.with_name(path.name + ".new")
        fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(encoded + "\n")
    count = rekey(records, key, new_key)
    if path is not None:
        os.replace(pending, path)
    store.audit("cli", "gallery.rekeyed", detail={"templates": count})
    if as_json:
        print_json({"templates": count, "key_file": str(path) if path else None})
    elif path is not None:
        print(f"{count} template(s) rotated to a new key, now in {path}.")
    else:
        print(f"{count} template(s) rotated to a new key. Put it in REALNAME_GALLERY_KEY before the next start:\n{encoded}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction, open_store: Callable[..., Store]) -> None:
    parser = subparsers.add_parser("gallery", help="the merchants' face galleries (1:N duplicate checks): settings, state, re-keying")
    sub = parser.add_subparsers(dest="gallery_command", required=True)
    configure = sub.add_parser("configure", help="a merchant's gallery: on or off, what a hit does, the per-document cap")
    configure.add_argument("merchant", help="the merchant account's name")
    configure.add_argument("state", nargs="?", choices=["on", "off"], help="off removes the merchant's enrolled faces (its blocklist stays)")
    configure.add_argument("--action", choices=ACTIONS, help="what a gallery hit does to an approval (default: review)")
    configure.add_argument("--document-cap", type=int, dest="document_cap", help="approved sessions per document number (default 5; 0: no cap)")
    configure.add_argument("--json", action="store_true")
    status = sub.add_parser("status", help="each merchant's gallery settings and size")
    status.add_argument("--json", action="store_true")
    rekey_parser = sub.add_parser("rekey", help="a new gallery key; every template rotated to it (stop the service first)")
    rekey_parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=partial(cmd_gallery, open_store))
