"""Realname instances as real processes (`python -m server`) on free loopback ports, killed for real."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from server.receipts.keys import keyring_text, new_key
from server.storage.crypto import Cipher
from server.storage.store import Store
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

    @property
    def log_path(self) -> Path:
        """Its log, beside its data folder: a file, not a pipe nobody reads (a full pipe would stall it)."""
        return Path(self.env["REALNAME_DATA_DIR"]).with_suffix(".log")

    def start(self, timeout: float = 60.0) -> Instance:
        """Blocks until /healthz answers (the models are loaded and start-up recovery has run)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the instance exited: {self.log_path.read_text(errors='replace')[-2000:]}")
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


class Cluster:
    """Instances `a` and `b` sharing a database, its evidence and gallery keys, the receipt keyring and
    the cookie secret."""

    def __init__(self, database_url: str, folder, **settings: str) -> None:
        self.database_url = database_url
        self.evidence_key = os.urandom(32)
        shared = dict(
            evidence_key=base64.b64encode(self.evidence_key).decode(),
            cookie_secret=base64.b64encode(os.urandom(32)).decode(),
            gallery_key=base64.b64encode(os.urandom(32)).decode(),
            receipt_keys=keyring_text([new_key()]),  # a receipt signed by one instance verifies with the other's JWKS
            instance_heartbeat_s="2",  # a busy test machine must not make a running instance look gone
            **settings,
        )
        self.store = Store(database_url, Cipher(self.evidence_key))  # the operator's view, e.g. the CLI
        self.a, self.b = (
            Instance(environment(folder / name, free_port(), database_url, instance_id=name, **shared)) for name in ("a", "b")
        )

    def start(self) -> Cluster:
        for instance in (self.a, self.b):
            instance.start()
        return self

    def stop(self) -> None:
        for instance in (self.a, self.b):
            instance.kill()
        self.store.close()


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if os.path.exists(p)), None)


@dataclass
class Proxy:
    """Debian's haproxy with the shipped deploy/haproxy.cfg in front of a cluster's two instances."""

    cluster: Cluster
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Proxy:
        binary = haproxy_binary()
        assert binary is not None
        env = dict(
            os.environ,
            REALNAME_PROXY_BIND=f"127.0.0.1:{self.port}",
            REALNAME_INSTANCE_A=f"127.0.0.1:{self.cluster.a.port}",
            REALNAME_INSTANCE_B=f"127.0.0.1:{self.cluster.b.port}",
        )
        self.process = subprocess.Popen([binary, "-db", "-f", str(ROOT / "deploy" / "haproxy.cfg")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if is_healthy(self.port):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("haproxy did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None
