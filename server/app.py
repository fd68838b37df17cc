"""The app factory: one process serves the hosted pages, the merchant API and the WebRTC streams."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import jinja2
from aiohttp import web

from .api import views as api_views
from .config import Settings
from .flow.attempts import LiveAttempts
from .flow.lifecycle import Lifecycle
from .flow.links import Links
from .flow.recorded import RecordedChecks
from .flow.registry import LiveRegistry
from .http.services import SERVICES, Services
from .liveness.analyzer import PadModels, pad_models_for_service
from .matching.calibration import calibration_for
from .matching.decoding import ImageDecoder
from .matching.matcher import FaceMatcher
from .models.commands import pad_folder
from .models.loader import landmarker_file, load_face_models
from .ratelimit import RateLimiter
from .retention import run_forever
from .rtc.ice import use_loopback_candidates
from .storage.crypto import Cipher, ensure_private_dir, load_evidence_key, load_or_create_key
from .storage.store import Store
from .web import handoff, pages, recorded
from .web.assets import static_dir, templates_dir
from .web.security import RedactingAccessLogger, conceal_http_internals, errors, hide_server_software, page_rate_limit, security_headers
from .webhooks import Outbox

log = logging.getLogger("server")


@dataclass
class Models:
    matcher: FaceMatcher
    landmarker_file: Path
    pad: PadModels | None = None  # passive anti-spoofing, when configured


def load_models(settings: Settings) -> Models:
    """Checksummed, offline model files; nothing is downloaded."""
    matcher = FaceMatcher(
        load_face_models(settings.face_model_dir),
        calibration_for(settings.face_model_dir, settings.calibration_file),
        settings.match_far,
        settings.review_far,
    )
    pad = pad_models_for_service(_pad_folder(settings), settings.pad_required, settings.pad_calibration_file, detector=matcher.models.detector)
    return Models(matcher=matcher, landmarker_file=landmarker_file(settings.landmarker_model, settings.models_dir), pad=pad)


def _pad_folder(settings: Settings) -> str:
    """The configured PAD folder, else the one `models import-pad` / `fetch-pad` fill by default, if filled."""
    if settings.pad_model_dir:
        return settings.pad_model_dir
    default = pad_folder("", settings.models_dir)
    return str(default) if (default / "MiniFASNetV2.onnx").is_file() else ""


def create_app(settings: Settings, models: Models | None = None) -> web.Application:
    models = models or load_models(settings)
    if settings.ice_loopback:
        use_loopback_candidates()
    data = ensure_private_dir(settings.data_path)
    secret = load_or_create_key(data / "secret.key")
    evidence_key = load_evidence_key(settings.evidence_key, settings.evidence_key_file, data)
    store = Store(settings.database_path, Cipher(evidence_key))
    # Live frame analysis has workers of its own that photo uploads can never take.
    executor = ThreadPoolExecutor(max_workers=settings.analysis_threads or os.cpu_count() or 2, thread_name_prefix="analysis")
    uploads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="uploads", initializer=_lower_priority)
    outbox = Outbox(
        store,
        timeout_s=settings.webhook_timeout_s,
        max_age_s=settings.webhook_max_age_s,
        retry_base_s=settings.webhook_retry_base_s,
        allow_private=settings.webhook_allow_private,
        per_merchant=settings.webhook_per_merchant,
        max_in_flight=settings.webhook_max_in_flight,
    )
    live = LiveRegistry()
    decoder = ImageDecoder.from_settings(settings)
    lifecycle = Lifecycle(settings, store, models.matcher, decoder, uploads, live, outbox)
    links = Links(store, lifecycle)
    attempts = LiveAttempts(settings, store, lifecycle, models.matcher, models.landmarker_file, executor, live, models.pad)
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    app = web.Application(
        middlewares=[security_headers, errors, page_rate_limit],
        client_max_size=settings.max_upload_bytes + 256 * 1024,
    )
    app[SERVICES] = Services(
        settings=settings,
        store=store,
        lifecycle=lifecycle,
        links=links,
        attempts=attempts,
        recorded=RecordedChecks(attempts),
        outbox=outbox,
        templates=templates,
        secret=secret,
        api_limiter=RateLimiter(settings.api_rate_per_minute),
        page_limiter=RateLimiter(settings.page_rate_per_minute),
        bad_key_limiter=RateLimiter(per_minute=30, burst=10),
    )
    conceal_http_internals()
    app.on_response_prepare.append(hide_server_software)
    app.add_routes(pages.routes)
    app.add_routes(handoff.routes)
    app.add_routes(recorded.routes)
    app.add_routes(api_views.routes)
    app.router.add_static("/static", static_dir(), append_version=False)

    background: list[asyncio.Task] = []

    async def start(app: web.Application) -> None:
        recovered = lifecycle.recover_interrupted()
        if recovered:
            log.warning("%d live checks were interrupted by a restart", recovered)
        outbox.start()
        background.append(asyncio.create_task(run_forever(settings, store, lifecycle), name="retention"))

    async def stop(app: web.Application) -> None:
        await attempts.shutdown()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await outbox.stop()
        executor.shutdown(wait=True)
        uploads.shutdown(wait=True)
        await decoder.close()
        store.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    return app


def _lower_priority() -> None:
    """Upload work runs at a lower CPU priority than live analysis (Linux: per-thread niceness)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def run(settings: Settings) -> None:
    logging.getLogger().setLevel(settings.log_level.upper())
    app = create_app(settings)
    log.info("Realname listening on %s", settings.base_url)
    print(f"Realname is running at {settings.base_url} (data in {settings.data_path.resolve()})", flush=True)
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log_class=RedactingAccessLogger,
        print=None,
        shutdown_timeout=10,
    )
