"""Fixtures shared by tests/ and e2e/: real models loaded once per run, a real app on a real SQLite file
in a temp folder, a browser-like HTTP client."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator

import aiohttp
import pytest

os.environ.setdefault("GLOG_minloglevel", "2")

from server.api.auth import create_api_key  # noqa: E402
from server.app import Models, create_app, load_models  # noqa: E402
from server.config import Settings  # noqa: E402
from server.http.services import SERVICES  # noqa: E402
from server.rtc.ice import use_loopback_candidates  # noqa: E402
from server.storage.crypto import ensure_private_dir  # noqa: E402
from tests.support.coturn import Coturn, run_coturn  # noqa: E402
from tests.support.media import PAD_MODELS, pad_models_present  # noqa: E402
from tests.support.postgres import Cluster, start_cluster  # noqa: E402
from tests.support.puppets import MeshPuppets  # noqa: E402

# Tests talk WebRTC to themselves on 127.0.0.1 only (CI runs them in a network namespace with just lo).
use_loopback_candidates()


@pytest.fixture(scope="session")
def models() -> Models:
    """The service's models, passive anti-spoofing included when ../shared/models/pad is there."""
    return load_models(Settings(pad_model_dir=str(PAD_MODELS) if pad_models_present() else ""))


@pytest.fixture(scope="session")
def mesh_puppets(tmp_path_factory) -> MeshPuppets:
    """mesh_puppets(photo, challenges) -> a mesh-warped puppet's clip, made once a run and shared."""
    return MeshPuppets(tmp_path_factory.mktemp("mesh-puppets"))


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster for the run (skips when its binaries are missing)."""
    cluster: Cluster = start_cluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def database_url() -> str:
    """SQLite in the data folder; a module runs on both engines by overriding this with
    `params=BACKENDS` and `database_for` from tests/support/postgres.py."""
    return ""


# Every test's data folder holds this gallery key (DATA_DIR/gallery.key, as on a first start), so that
# the gallery's rotation, a 512x512 QR that takes seconds on a busy machine, is derived once a run.
GALLERY_KEY = base64.b64encode(hashlib.sha256(b"realname test gallery key").digest()).decode()


@pytest.fixture
def settings(request, tmp_path, database_url) -> Settings:
    """Documents are read only in tests marked `reads_documents` (OCR is most of a second per photo)."""
    key_file = ensure_private_dir(tmp_path / "data") / "gallery.key"
    key_file.write_text(GALLERY_KEY + "\n")
    key_file.chmod(0o600)
    return Settings(
        data_dir=str(tmp_path / "data"),
        database_url=database_url,
        ice_loopback=True,
        webhook_allow_private=True,
        webhook_retry_base_s=0.2,
        no_frames_timeout_s=2.0,
        connect_timeout_s=8.0,
        read_documents=request.node.get_closest_marker("reads_documents") is not None,
    )


@pytest.fixture
def make_app(models):
    def make(settings: Settings):
        return create_app(settings, models=models)

    return make


@pytest.fixture
async def server(aiohttp_server, make_app, settings):
    """The real app on a real TCP port (WebRTC peers and browsers need one)."""
    return await aiohttp_server(make_app(settings))


@pytest.fixture
async def client(aiohttp_client, server):
    return await aiohttp_client(server)


@pytest.fixture
def services(server):
    return server.app[SERVICES]


@pytest.fixture
def sandbox_key(services) -> str:
    key, _secret = create_api_key(services.store, "Test Shop", sandbox=True)
    return key


@pytest.fixture
def live_key(services) -> str:
    key, _secret = create_api_key(services.store, "Live Shop", sandbox=False)
    return key


@pytest.fixture
async def http():
    """A browser-like HTTP client: keeps cookies for 127.0.0.1."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


@pytest.fixture
def coturn(tmp_path_factory) -> Iterator[Coturn]:
    """Debian's coturn on loopback with a fresh shared secret, for this test only."""
    yield from run_coturn(tmp_path_factory.mktemp("coturn"))
