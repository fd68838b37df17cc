"""Kill the server (SIGKILL) while it delivers a webhook; after a restart the event is delivered, once more
if need be (at least once, same idempotency id), and no session is left stuck."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
from aiohttp import web

from server.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature
from tests.support.instances import environment, free_port
from tests.support.media import ROOT
from tests.support.postgres import BACKENDS, database_for


@pytest.fixture(params=BACKENDS)
def database_url(request):
    """The crash and the restart on SQLite and on PostgreSQL."""
    return database_for(request)


async def start_server(env: dict[str, str], port: int) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-m", "server"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    async with aiohttp.ClientSession() as http:
        for _ in range(150):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    process.kill()
    raise RuntimeError("server did not start")


async def test_pending_webhook_survives_a_crash(tmp_path, database_url):
    received: list[tuple[dict, bytes]] = []
    first_arrived = asyncio.Event()
    release = asyncio.Event()

    async def receiver(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        if len(received) == 1:
            first_arrived.set()
            await asyncio.wait_for(release.wait(), 60)  # hold the first delivery open: the server dies mid-delivery
        return web.Response(text="ok")

    hook_app = web.Application()
    hook_app.router.add_post("/hook", receiver)
    runner = web.AppRunner(hook_app)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()

    port = free_port()
    env = environment(tmp_path / "data", port, database_url)
    subprocess.run([sys.executable, "-m", "server", "merchants", "create", "restart-test"], cwd=ROOT, env=env, capture_output=True, check=True)
    created = subprocess.run(
        [sys.executable, "-m", "server", "keys", "create", "--merchant", "restart-test", "--sandbox", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )
    keys = json.loads(created.stdout)
    headers = {"Authorization": f"Bearer {keys['api_key']}"}
    base = f"http://127.0.0.1:{port}"
    server = await start_server(env, port)
    try:
        async with aiohttp.ClientSession() as http:
            body = {"reference_id": "order-1", "callback_url": f"http://127.0.0.1:{hook_port}/hook"}
            async with http.post(f"{base}/api/v1/sessions", json=body, headers=headers) as response:
                session = await response.json()
            async with http.delete(f"{base}/api/v1/sessions/{session['id']}", headers=headers) as response:
                assert response.status == 200
            await asyncio.wait_for(first_arrived.wait(), timeout=15)
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)

            server = await start_server(env, port)
            deadline = time.monotonic() + 20
            while len(received) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert len(received) >= 2, "the pending event was not delivered after the restart"
            first, second = received[0], received[1]
            assert first[0][EVENT_ID_HEADER] == second[0][EVENT_ID_HEADER]
            assert first[1] == second[1]
            assert verify_signature(keys["webhook_secret"].encode(), second[0][SIGNATURE_HEADER], second[1])
            assert json.loads(second[1])["type"] == "session.redacted"

            delivered = None
            for _ in range(50):
                async with http.get(f"{base}/api/v1/sessions/{session['id']}", headers=headers) as response:
                    detail = await response.json()
                delivered = detail["webhooks"][0]["delivered_at"]
                if delivered:
                    break
                await asyncio.sleep(0.1)
            assert delivered, detail["webhooks"]
            assert detail["status"] == "failed" and detail["redacted"] is True
    finally:
        release.set()
        server.kill()
        server.wait(timeout=10)
        await runner.cleanup()
