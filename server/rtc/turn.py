"""Short-lived TURN credentials (the TURN REST API scheme coturn implements with `--use-auth-secret`).

The service and the TURN server share one secret; neither stores per-customer passwords. A credential is
`username = "<unix expiry>:<subject>"` and `password = base64(HMAC-SHA1(secret, username))`: the TURN
server recomputes the password and refuses a username whose expiry has passed. Pure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

SERVER_SUBJECT = "realname-server"  # the service's own peer connection, when it relays too
TURN_SCHEMES = ("turn:", "turns:")


@dataclass(frozen=True)
class TurnCredential:
    username: str
    credential: str
    expires_at: int


def turn_credential(secret: str, subject: str, now: float, ttl_s: float) -> TurnCredential:
    expires_at = int(now + ttl_s)
    username = f"{expires_at}:{subject}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode("ascii"), expires_at)


def turn_ice_servers(urls: list[str], secret: str, subject: str, now: float, ttl_s: float) -> list[dict]:
    """RTCIceServer dictionaries (as a browser's RTCPeerConnection takes them) for these TURN URLs; none
    without URLs or a secret."""
    if not urls or not secret:
        return []
    credential = turn_credential(secret, subject, now, ttl_s)
    return [{"urls": list(urls), "username": credential.username, "credential": credential.credential}]


def is_turn_url(url: object) -> bool:
    return isinstance(url, str) and url.startswith(TURN_SCHEMES) and len(url) > len("turn:")
