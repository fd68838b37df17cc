"""Debian's coturn (`turnserver`) on loopback, started and stopped by a test: a real TURN server with the
TURN REST API's shared secret, on ports the test picks."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
REALM = "realname.test"


@dataclass(frozen=True)
class Coturn:
    port: int
    secret: str
    log: Path

    @property
    def udp_url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    @property
    def tcp_url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=tcp"


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (the TURN listener takes both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_coturn(folder: Path) -> Iterator[Coturn]:
    if not Path(TURNSERVER).is_file():
        pytest.skip("turnserver not found: install Debian's coturn package (scripts/test does)")
    port, secret = free_port(), secrets.token_hex(16)
    relay_low = free_port()
    log = folder / "turnserver.log"
    # --allow-loopback-peers: the relayed peer (the service) is on 127.0.0.1 too. Tests only: in
    # production it would let anyone with a credential reach the TURN host's own loopback services.
    command = [
        TURNSERVER, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
        f"--min-port={relay_low}", f"--max-port={min(65535, relay_low + 200)}",
        "--use-auth-secret", f"--static-auth-secret={secret}", f"--realm={REALM}",
        "--allow-loopback-peers", "--no-cli", "--no-tls", "--no-dtls", "--no-stdout-log", "--simple-log",
        f"--log-file={log}", f"--pidfile={folder / 'turnserver.pid'}", f"--db={folder / 'turndb'}",
        "--no-multicast-peers", "--verbose",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"turnserver did not start (see {log})")
            time.sleep(0.05)
        yield Coturn(port, secret, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
