"""ICE configuration: STUN/TURN servers from settings, or loopback-only for tests and single-host setups."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCIceServer


def rtc_configuration(ice_servers: list[dict]) -> RTCConfiguration:
    """An explicit (possibly empty) server list: aiortc would otherwise use a public STUN server."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice_servers
    ]
    return RTCConfiguration(iceServers=servers)


def use_loopback_candidates() -> None:
    """Make aioice offer 127.0.0.1, which it leaves out by default.

    Process-wide, so only for a process that talks to peers on the same host: the test suite, or a
    deployment that sets REALNAME_ICE_LOOPBACK (for example behind a TURN server on the same machine).
    """
    import aioice.ice

    def loopback_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    aioice.ice.get_host_addresses = loopback_addresses
