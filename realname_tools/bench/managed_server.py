"""A server of the bench's own: `python -m server serve` on a temporary data folder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .options import PROJECT, BenchError

# -- a server of our own --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ManagedServer:
    """`python -m server serve` on a temporary data folder, with settings that keep bench sessions live."""

    def __init__(self, sessions: int, extra_env: dict[str, str] | None = None) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="realname-bench-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "REALNAME_DATA_DIR": str(self.folder / "data"),
            "REALNAME_HOST": "127.0.0.1",
            "REALNAME_PORT": str(self.port),
            "REALNAME_PUBLIC_URL": "",
            "REALNAME_ICE_LOOPBACK": "1",
            "REALNAME_ICE_SERVERS": "[]",
            "REALNAME_WEBHOOK_ALLOW_PRIVATE": "1",
            "REALNAME_MAX_LIVE_SESSIONS": str(max(64, 4 * sessions)),
            # The measured sessions are analysed at the rate their step needs, as every live check is (their
            # challenge is never performed: they wait for it); the rates are measured by --step-rates.
            # Sessions must stay live for the whole measurement, however long it is.
            "REALNAME_CHALLENGE_TIMEOUT_S": "36000",
            "REALNAME_START_TIMEOUT_S": "36000",
            "REALNAME_CONNECT_TIMEOUT_S": "60",
            "REALNAME_NO_FRAMES_TIMEOUT_S": "10",
            # Every bench customer comes from 127.0.0.1 and each ends with 'bye' (a failed attempt).
            "REALNAME_API_RATE_PER_MINUTE": "1000000",
            "REALNAME_PAGE_RATE_PER_MINUTE": "1000000",
            "REALNAME_FAILURES_PER_WINDOW": "1000000",
            "REALNAME_LOG_LEVEL": "WARNING",
            "GLOG_minloglevel": "2",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **(extra_env or {}),
        }
        self.log_path = self.folder / "server.log"
        self.process: subprocess.Popen | None = None
        self.api_key: str | None = None

    def _command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "server", *args]

    async def start(self, timeout_s: float = 180.0) -> None:
        for command in (("merchants", "create", "bench", "--json"), ("keys", "create", "--merchant", "bench", "--sandbox", "--json")):
            created = await asyncio.to_thread(subprocess.run, self._command(*command), env=self.env, cwd=PROJECT, capture_output=True, text=True, timeout=120)
            if created.returncode != 0:
                raise BenchError(f"could not create an API key: {created.stderr.strip() or created.stdout.strip()}")
        self.api_key = json.loads(created.stdout.strip().splitlines()[-1])["api_key"]
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self._command("serve"), env=self.env, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        await wait_healthy(self.url, timeout_s, self.process, self.log_path)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        shutil.rmtree(self.folder, ignore_errors=True)


async def wait_healthy(url: str, timeout_s: float, process: subprocess.Popen | None = None, log_path: Path | None = None) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
                raise BenchError(f"the server exited with code {process.returncode}:\n{tail}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(url.rstrip("/") + "/healthz", timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.25)
    raise BenchError(f"{url} did not become healthy within {timeout_s:.0f} s")


async def server_for(options, sessions: int, progress) -> tuple[ManagedServer | None, str, str, int | None]:
    """The server to measure: the one at --url, or one started here. (server we started, url, key, pid)."""
    if options.url:
        if not options.api_key:
            raise BenchError("--url needs --api-key (a sandbox key of that server)")
        await wait_healthy(options.url.rstrip("/"), 10)
        return None, options.url.rstrip("/"), options.api_key, options.server_pid
    server = ManagedServer(sessions, options.server_env)
    progress(options, f"starting a server on {server.url}")
    try:
        await server.start()
    except BaseException:
        await server.stop()
        raise
    assert server.api_key is not None
    return server, server.url, server.api_key, server.pid


async def server_capacity(http, base_url: str, status_token: str | None) -> dict[str, Any] | None:
    """The server's own capacity reading (from this host, or with its status token)."""
    headers = {"Authorization": f"Bearer {status_token}"} if status_token else {}
    try:
        async with http.get(base_url + "/healthz/details", headers=headers) as response:
            return (await response.json()).get("capacity")
    except Exception:  # an older server without it
        return None
