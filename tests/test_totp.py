"""TOTP against the RFC 6238 test vectors (SHA-1), the window, and the otpauth:// URI."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from server.operators import totp

RFC_SECRET = b"12345678901234567890"


@pytest.mark.parametrize(
    "now, code",
    [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")],
)
def test_rfc_6238_vectors(now, code):
    assert totp.code_at(RFC_SECRET, now, digits=8) == code


def test_hotp_rfc_4226_vectors():
    assert [totp.hotp(RFC_SECRET, i) for i in range(3)] == ["755224", "287082", "359152"]


def test_a_code_matches_its_step_and_its_neighbours_only():
    secret = totp.new_secret()
    now = 1_700_000_000.0
    step = totp.step_at(now)
    assert totp.matching_step(secret, totp.code_at(secret, now), now) == step
    assert totp.matching_step(secret, totp.code_at(secret, now - 30), now) == step - 1
    assert totp.matching_step(secret, totp.code_at(secret, now + 30), now) == step + 1
    assert totp.matching_step(secret, totp.code_at(secret, now - 90), now) is None
    assert totp.matching_step(secret, "12345", now) is None and totp.matching_step(secret, "abcdef", now) is None


def test_the_provisioning_uri():
    uri = totp.provisioning_uri(RFC_SECRET, "acme/alice")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp" and parts.path == "/Realname%3Aacme%2Falice"
    query = parse_qs(parts.query)
    assert query["secret"] == ["GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"] and query["digits"] == ["6"] and query["period"] == ["30"]
