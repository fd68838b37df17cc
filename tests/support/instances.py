"""Realname instances as real processes (`python -m server`) on free loopback ports, killed for real."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from tests.support.media import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(data_dir, port: int, database_url: str = "", **settings: str) -> dict[str, str]:
    """The process environment of an instance: its data folder and port, plus REALNAME_<NAME> settings."""
    env = dict(os.environ)
    env.update(
        REALNAME_DATA_DIR=str(data_dir),
        REALNAME_DATABASE_URL=database_url,
        REALNAME_PORT=str(port),
        REALNAME_WEBHOOK_ALLOW_PRIVATE="1",
        REALNAME_WEBHOOK_RETRY_BASE_S="0.5",
        REALNAME_WEBHOOK_TIMEOUT_S="30",
        REALNAME_ICE_LOOPBACK="1",
    )
    env.update({f"REALNAME_{name.upper()}": value for name, value in settings.items()})
    return env


def is_healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Instance:
    env: dict[str, str]
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(self.env["REALNAME_PORT"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Instance:
        """Blocks until /healthz answers (the models are loaded and start-up recovery has run)."""
        self.process = subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the instance exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if is_healthy(self.port):
                return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("the instance did not start")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as when a machine is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
