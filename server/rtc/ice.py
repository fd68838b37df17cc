"""ICE configuration: STUN/TURN servers from settings, or loopback-only for tests and single-host setups."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiortc import RTCConfiguration, RTCIceServer

from .turn import SERVER_SUBJECT, turn_ice_servers

if TYPE_CHECKING:
    from ..config import Settings


def rtc_configuration(ice_servers: list[dict]) -> RTCConfiguration:
    """An explicit (possibly empty) server list: aiortc would otherwise use a public STUN server."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers
    ]
    return RTCConfiguration(iceServers=servers)


def static_credential_urls(ice_servers: list[dict]) -> list[str]:
    """The URLs of configured ICE servers that carry a fixed username or credential: every customer's
    page is handed them, so anyone who opens a link can relay through that TURN server while they last."""
    urls: list[str] = []
    for server in ice_servers:
        if server.get("username") or server.get("credential"):
            found = server.get("urls")
            urls.extend([found] if isinstance(found, str) else [str(u) for u in found or []])
    return urls


def page_ice_servers(settings: Settings, session_id: str, now: float) -> list[dict]:
    """What the customer's browser is given: the configured servers, and TURN with credentials for
    this session alone (the TURN server's logs then name the session)."""
    turn = turn_ice_servers(settings.turn_urls, settings.turn_secret, session_id, now, settings.turn_credential_ttl_s)
    return list(settings.ice_servers) + turn


def server_rtc_configuration(settings: Settings, now: float) -> RTCConfiguration:
    """The service's own peer connection: the configured servers, and TURN_SERVER_URL when set (aiortc
    takes the first STUN and the first TURN server it is given and ignores the rest)."""
    urls = [settings.turn_server_url] if settings.turn_server_url else []
    turn = turn_ice_servers(urls, settings.turn_secret, SERVER_SUBJECT, now, settings.turn_credential_ttl_s)
    return rtc_configuration(list(settings.ice_servers) + turn)


def use_loopback_candidates() -> None:
    """Make aioice offer 127.0.0.1, which it leaves out by default.

    Process-wide, so only for a process that talks to peers on the same host: the test suite, or a
    deployment that sets REALNAME_ICE_LOOPBACK (for example behind a TURN server on the same machine).
    """
    import aioice.ice

    def loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback_addresses


def uses_relay(pc) -> bool | None:
    """Whether the connected candidate pair goes through a TURN server on either side (the page's
    relay candidate, or the service's own); None before a pair is chosen.

    aiortc has no getStats for the selected pair, so this reads aioice's nominated pair.
    """
    for transceiver in pc.getTransceivers():
        transport = transceiver.receiver.transport
        connection = getattr(getattr(transport, "transport", None), "_connection", None)
        nominated = getattr(connection, "_nominated", None) or {}
        for pair in nominated.values():
            return "relay" in (pair.local_candidate.type, pair.remote_candidate.type)
    return None
