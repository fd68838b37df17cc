"""`python -m server operators ...`: operator accounts of a merchant for the console. A password is read
from a prompt, a file or standard input (`--password-file -`), never from the command line, where other
users of the machine could read it."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from functools import partial

from ..config import load_settings
from ..console import fail, print_json
from ..storage.backoffs import Backoffs
from ..storage.operators import OperatorStore
from ..storage.store import DuplicateError, Store
from . import totp
from .passwords import PasswordError, check_new_password, hash_password
from .signin import Role, account_key


def read_password(path: str | None) -> str:
    if path == "-":
        return sys.stdin.readline().rstrip("\r\n")
    if path:
        with open(path, encoding="utf-8") as stream:
            return stream.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise PasswordError("the two passwords differ")
    return first


def cmd_operators(open_store: Callable[..., Store], args: argparse.Namespace) -> int:
    store = open_store(load_settings(args.config))
    try:
        return _run(store, OperatorStore(store), args)
    finally:
        store.close()


def _run(store: Store, operators: OperatorStore, args: argparse.Namespace) -> int:
    command = args.operators_command
    if command == "list":
        if args.merchant is not None and store.merchant_by_name(args.merchant) is None:
            return fail("not_found", f"no merchant named {args.merchant!r}", args.json)
        rows = [
            {"merchant": o.merchant, "name": o.name, "role": o.role, "totp": o.has_totp, "disabled": bool(o.disabled_at)}
            for o in operators.all()
            if args.merchant is None or o.merchant == args.merchant
        ]
        if args.json:
            print_json(rows)
        for row in [] if args.json else rows:
            print(f"{row['merchant']:<20} {row['name']:<20} {row['role']:<9} totp={'on' if row['totp'] else 'off'}{' disabled' if row['disabled'] else ''}")
        return 0
    merchant = store.merchant_by_name(args.merchant)
    if merchant is None:
        return fail("not_found", f"no merchant named {args.merchant!r}", args.json)
    if command == "create":
        try:
            password = read_password(args.password_file)
            check_new_password(password)
        except (PasswordError, OSError) as error:
            return fail("bad_password", str(error), args.json)
        try:
            operator = operators.create(merchant.id, args.name, args.role, hash_password(password))
        except DuplicateError as error:
            return fail("exists", str(error), args.json)
        store.audit("cli", "operator.created", detail={"operator": operator.actor, "role": operator.role})
        if args.json:
            print_json({"merchant": merchant.name, "name": operator.name, "role": operator.role})
        else:
            print(f"Created {operator.role} {operator.name!r} of {merchant.name!r}; they sign in at /console/signin.")
        return 0
    operator = operators.by_name(merchant.id, args.name)
    if operator is None:
        return fail("not_found", f"{merchant.name!r} has no operator named {args.name!r}", args.json)
    if command == "totp-enable":
        secret = totp.new_secret()
        operators.set_totp(operator.id, secret)
        store.audit("cli", "operator.totp_enabled", detail={"operator": operator.actor})
        uri = totp.provisioning_uri(secret, f"{merchant.name}/{operator.name}")
        print_json({"otpauth_uri": uri}) if args.json else print(f"Add this to the authenticator app (shown once):\n  {uri}")
    elif command == "totp-disable":
        operators.set_totp(operator.id, None)
        store.audit("cli", "operator.totp_disabled", detail={"operator": operator.actor})
        print(f"TOTP is off for {operator.name!r}.")
    elif command == "set-password":
        try:
            password = read_password(args.password_file)
            check_new_password(password)
        except (PasswordError, OSError) as error:
            return fail("bad_password", str(error), args.json)
        operators.set_password(operator.id, hash_password(password))
        operators.end_sessions_of(operator.id)
        store.audit("cli", "operator.password_set", detail={"operator": operator.actor})
        print(f"New password set for {operator.name!r}; their open console sessions are signed out.")
    elif command == "unlock":
        operators.record_success(operator.id)
        Backoffs(store).clear(account_key(operator.merchant, operator.name))  # its delay from every network
        store.audit("cli", "operator.unlocked", detail={"operator": operator.actor})
        print(f"{operator.name!r} may sign in again.")
    else:  # disable / enable
        operators.set_disabled(operator.id, command == "disable")
        store.audit("cli", f"operator.{command}d", detail={"operator": operator.actor})
        print(f"{operator.name!r} is {command}d.")
    return 0


def add_parser(subparsers: argparse._SubParsersAction, open_store: Callable[..., Store]) -> None:
    parser = subparsers.add_parser("operators", help="operator accounts of a merchant for the console (review queue, sessions, dashboard)")
    sub = parser.add_subparsers(dest="operators_command", required=True)
    create = sub.add_parser("create", help="create an operator (the password is asked for, or read with --password-file)")
    create.add_argument("--role", choices=[r.value for r in Role], default=Role.REVIEWER.value, help="reviewer: review and look; admin: also redact")
    for name, text in (
        ("totp-enable", "turn on TOTP and print the otpauth:// URI for an authenticator app"),
        ("totp-disable", "turn TOTP off"),
        ("set-password", "set a new password (signs the operator out everywhere)"),
        ("unlock", "lift the delay on an account after wrong passwords"),
        ("disable", "stop the operator from signing in (signs them out)"),
        ("enable", "let a disabled operator sign in again"),
    ):
        command = sub.add_parser(name, help=text)
        if name in ("set-password",):
            command.add_argument("--password-file", help="read the password from the file's first line ('-': standard input)")
        command.add_argument("--merchant", required=True, help="the merchant account's name")
        command.add_argument("--name", required=True, help="the operator's user name")
        command.add_argument("--json", action="store_true")
    create.add_argument("--merchant", required=True, help="the merchant account's name")
    create.add_argument("--name", required=True, help="the operator's user name, unique within the merchant")
    create.add_argument("--password-file", help="read the password from the file's first line ('-': standard input)")
    create.add_argument("--json", action="store_true")
    listing = sub.add_parser("list", help="list operators (never their passwords)")
    listing.add_argument("--merchant", help="only this merchant account's operators")
    listing.add_argument("--json", action="store_true")
    parser.set_defaults(func=partial(cmd_operators, open_store))
