"""Operator passwords: scrypt with a salt per password and its parameters stored with the hash."""

from __future__ import annotations

import pytest

from server.operators.passwords import DUMMY_HASH, PasswordError, ScryptCost, check_new_password, hash_password, needs_rehash, verify_password

CHEAP = ScryptCost(n=2**12)


def test_a_password_verifies_and_another_does_not():
    stored = hash_password("correct horse battery staple", CHEAP)
    assert stored.startswith("scrypt$4096$8$1$")
    assert verify_password("correct horse battery staple", stored)
    assert not verify_password("correct horse battery stapler", stored)
    assert not verify_password("", stored)


def test_each_hash_has_its_own_salt():
    assert hash_password("same password here", CHEAP) != hash_password("same password here", CHEAP)


def test_the_default_cost_is_memory_hard_and_old_hashes_ask_for_a_rehash():
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("scrypt$32768$8$1$")  # 32 MiB per hash
    assert not needs_rehash(stored) and needs_rehash(hash_password("correct horse battery staple", CHEAP))


@pytest.mark.parametrize(
    "stored",
    ["", "bcrypt$1$2$3$AA$AA", "scrypt$x$8$1$AA$AA", "scrypt$4194304$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAA", "scrypt$4096$8$1$not base64!$AA", "scrypt$4096$8$1$AA"],
)
def test_a_damaged_or_hostile_hash_never_verifies(stored):
    assert not verify_password("anything", stored)  # n above the cap is refused before any work


def test_the_dummy_hash_never_verifies_but_costs_the_same():
    assert DUMMY_HASH.startswith("scrypt$32768$8$1$") and not verify_password("", DUMMY_HASH)


def test_new_passwords_need_a_sensible_length():
    with pytest.raises(PasswordError):
        check_new_password("short")
    with pytest.raises(PasswordError):
        check_new_password("x" * 2000)
    check_new_password("twelve chars")
