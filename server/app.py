"""The app factory: one process serves the hosted pages, the merchant API and the WebRTC streams."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import jinja2
from aiohttp import web

from .api import docs as api_docs
from .api import views as api_views
from .cluster import SharedFailureLimiter, SharedRateLimiter, check_shared_secrets, follow_notices, instance_id, keep_alive
from .config import ConfigError, Settings
from .documents.ocr import ocr_model_files
from .documents.reader import DocumentReader
from .flow.attempts import LiveAttempts
from .flow.cluster_line import ClusterLine
from .flow.cputime import analysis_workers, background_thread
from .flow.lifecycle import Lifecycle
from .flow.links import Links
from .flow.recorded import RecordedChecks
from .flow.registry import LiveRegistry
from .gallery.service import Gallery
from .http.services import SERVICES, Services
from .liveness.analyzer import PadModels, pad_models_for_service
from .matching.calibration import calibration_for
from .matching.decoding import ImageDecoder
from .matching.matcher import FaceMatcher
from .models.commands import pad_folder
from .models.inventory import ModelIdentity, identify, summary
from .models.loader import landmarker_file, load_face_models
from .models.pad import PAD_FILES
from .operators.signin import Policy, SignIn
from .ratelimit import Limiter, RateLimiter
from .receipts.issuer import ReceiptIssuer
from .receipts.keys import ReceiptKeys
from .retention import run_forever
from .rtc.ice import static_credential_urls, use_loopback_candidates
from .storage.crypto import Cipher, decode_key, ensure_private_dir, load_evidence_key, load_gallery_key, load_or_create_key
from .storage.operators import OperatorStore
from .storage.shared import SharedState
from .storage.store import Store
from .storage.waiting_line import SharedLine
from .web import console_dashboard, console_pages, handoff, line_offer, pages, recorded, widget
from .web.assets import static_dir, templates_dir
from .web.security import RedactingAccessLogger, conceal_http_internals, errors, hide_server_software, page_rate_limit, security_headers
from .webhooks import Outbox

log = logging.getLogger("server")


@dataclass
class Models:
    matcher: FaceMatcher
    landmarker_file: Path
    pad: PadModels | None = None  # passive anti-spoofing, when configured
    documents: DocumentReader | None = None  # OCR of the ID document, when READ_DOCUMENTS is on
    inventory: tuple[ModelIdentity, ...] = ()  # every model file loaded, by SHA-256 (start-up line, receipts)


def load_models(settings: Settings) -> Models:
    """Checksummed, offline model files; nothing is downloaded."""
    matcher = FaceMatcher(
        load_face_models(settings.face_model_dir),
        calibration_for(settings.face_model_dir, settings.calibration_file),
        settings.match_far,
        settings.review_far,
    )
    pad = pad_models_for_service(_pad_folder(settings), settings.pad_required, settings.pad_calibration_file, detector=matcher.models.detector)
    documents = None
    if settings.read_documents:
        documents = DocumentReader(settings.models_dir, thread_initializer=background_thread)
        documents.engine()  # a missing or altered OCR model stops the start, as the face models do
    landmarker = landmarker_file(settings.landmarker_model, settings.models_dir)
    inventory = [
        identify("landmarker", landmarker),
        identify("detector", matcher.models.detector.model_file),
        identify("embedder", matcher.models.embedder.model_file),
    ]
    if pad is not None:
        inventory += [identify("pad", Path(_pad_folder(settings)) / spec.name, spec.sha256) for spec in PAD_FILES]
    if documents is not None:
        inventory += [identify("ocr", path) for path in ocr_model_files(settings.models_dir)]
    return Models(matcher=matcher, landmarker_file=landmarker, pad=pad, documents=documents, inventory=tuple(inventory))


def _pad_folder(settings: Settings) -> str:
    """The configured PAD folder, else the one `models import-pad` / `fetch-pad` fill by default, if filled."""
    if settings.pad_model_dir:
        return settings.pad_model_dir
    default = pad_folder("", settings.models_dir)
    return str(default) if (default / "MiniFASNetV2.onnx").is_file() else ""


def create_app(settings: Settings, models: Models | None = None, warm: bool = False) -> web.Application:
    """warm: load and time the live models at start, in the background (`/healthz` says `ready`); without
    it (tests) the first live check does."""
    models = models or load_models(settings)
    if static := static_credential_urls(settings.ice_servers):
        log.warning(
            "REALNAME_ICE_SERVERS hands fixed TURN credentials for %s to every customer's page, where anyone can read and reuse them: "
            "prefer REALNAME_TURN_URLS with REALNAME_TURN_SECRET (credentials for one session, expiring)",
            ", ".join(static),
        )
    if settings.ice_loopback:
        use_loopback_candidates()
    data = ensure_private_dir(settings.data_path)
    secret = decode_key(settings.cookie_secret) if settings.cookie_secret else load_or_create_key(data / "secret.key")
    evidence_key = load_evidence_key(settings.evidence_key, settings.evidence_key_file, data)
    store = Store(settings.database_location, Cipher(evidence_key))
    try:
        gallery_key = load_gallery_key(settings.gallery_key, settings.gallery_key_file, data)
        gallery = Gallery(settings, store, gallery_key, models.matcher.calibration, models.matcher.review_threshold)
    except ConfigError:
        store.close()
        raise
    operators = OperatorStore(store)
    shared = SharedState(store, instance_id(settings), settings.instance_heartbeat_s) if store.shared else None
    if shared is not None:
        try:
            check_shared_secrets(shared, secret)
        except ConfigError:
            store.close()
            raise
    # Live frame analysis has workers of its own that photo uploads can never take.
    executor = ThreadPoolExecutor(max_workers=analysis_workers(settings), thread_name_prefix="analysis")
    uploads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="uploads", initializer=background_thread)
    # Recorded checks' clips, one at a time, at a low priority: never the live analysis threads.
    recordings = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorded", initializer=background_thread)
    outbox = Outbox(
        store,
        timeout_s=settings.webhook_timeout_s,
        max_age_s=settings.webhook_max_age_s,
        retry_base_s=settings.webhook_retry_base_s,
        allow_private=settings.webhook_allow_private,
        per_merchant=settings.webhook_per_merchant,
        max_in_flight=settings.webhook_max_in_flight,
        shared=shared,
    )
    live = LiveRegistry()
    decoder = ImageDecoder.from_settings(settings)
    receipt_keys = ReceiptKeys.from_settings(settings.receipt_keys, settings.receipt_keys_file, data)
    receipts = ReceiptIssuer(receipt_keys, store, models.inventory, settings.base_url, settings.approve_without_anti_spoofing)
    lifecycle = Lifecycle(
        settings, store, models.matcher, decoder, uploads, live, outbox, shared, models.documents if settings.read_documents else None, receipts
    )
    lifecycle.gallery = gallery
    links = Links(store, lifecycle)
    attempts = LiveAttempts(settings, store, lifecycle, models.matcher, models.landmarker_file, executor, live, models.pad)
    if shared is not None:  # a customer paused on one instance is paused on all
        attempts.failures = SharedFailureLimiter(shared, settings.failures_per_window, settings.failure_window_s, settings.failure_pause_s)  # type: ignore[assignment]
        attempts.address_failures = SharedFailureLimiter(shared, attempts.address_failures.limit, settings.failure_window_s, settings.failure_pause_s)  # type: ignore[assignment]
        attempts.cluster = ClusterLine(SharedLine(shared, settings.instance_url or f"http://127.0.0.1:{settings.port}"), secret)  # one waiting line
    recorded_checks = RecordedChecks(attempts, recordings)
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
        recorded=recorded_checks,
        outbox=outbox,
        templates=templates,
        secret=secret,
        api_limiter=_limiter(shared, "api", settings.api_rate_per_minute),
        page_limiter=_limiter(shared, "page", settings.page_rate_per_minute),
        bad_key_limiter=_limiter(shared, "bad_key", per_minute=30, burst=10),
        operators=operators,
        signin=SignIn(store, operators, Policy(settings.console_max_failures, settings.console_lockout_s, settings.console_session_ttl_s)),
    )
    conceal_http_internals()
    app.on_response_prepare.append(hide_server_software)
    app.add_routes(pages.routes)
    app.add_routes(handoff.routes)
    app.add_routes(recorded.routes)
    app.add_routes(line_offer.routes)
    app.add_routes(api_views.routes)
    app.add_routes(console_pages.routes)
    app.add_routes(console_dashboard.routes)
    app.add_routes(api_docs.routes)
    app.add_routes(widget.routes)
    app.router.add_static("/static", static_dir(), append_version=False)

    background: list[asyncio.Task] = []

    async def start(app: web.Application) -> None:
        if shared is not None:
            shared.heartbeat()  # before recovering: this instance's checks are its own to end
            shared.release_own_claims()
        recovered = lifecycle.recover_interrupted()
        if recovered:
            log.warning("%d live checks were interrupted by a restart", recovered)
        outbox.start()
        if warm:
            background.append(asyncio.create_task(attempts.warm_up(), name="warm-up"))
        background.append(asyncio.create_task(run_forever(settings, store, lifecycle), name="retention"))
        if shared is not None:
            background.append(asyncio.create_task(keep_alive(shared, lifecycle, attempts.publish), name="heartbeat"))
            background.append(asyncio.create_task(follow_notices(settings.database_url, shared, live, attempts.wake), name="notices"))

    async def stop(app: web.Application) -> None:
        await attempts.shutdown()
        recorded_checks.shutdown()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await outbox.stop()
        executor.shutdown(wait=True)
        uploads.shutdown(wait=True)
        recordings.shutdown(wait=True, cancel_futures=True)
        await decoder.close()
        store.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    return app


def _limiter(shared: SharedState | None, name: str, per_minute: int, burst: int | None = None) -> Limiter:
    """In memory for one instance; in the database when several share it."""
    if shared is None:
        return RateLimiter(per_minute, burst)
    return SharedRateLimiter(shared, name, per_minute, burst)


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The serving loop. Every RTP packet of every live check passes through it; uvloop does the sockets,
    timers and callbacks in C, and the event loop's thread then spends less per packet (docs/benchmarks.md)."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def single_threaded_opencv() -> None:
    """OpenCV calls run on the calling thread. The service's parallelism is its live checks, each on an
    analysis worker; OpenCV's own pool split every small call (a grey conversion, a 96 px resize) across
    threads whose waking and waiting took 1.6 % of the CPU with 9 checks (docs/benchmarks.md)."""
    import cv2

    cv2.setNumThreads(1)


def run(settings: Settings) -> None:
    logging.getLogger().setLevel(settings.log_level.upper())
    single_threaded_opencv()
    models = load_models(settings)
    app = create_app(settings, models, warm=True)
    print(summary(models.inventory), flush=True)
    log.info("Realname listening on %s", settings.base_url)
    print(f"Realname is running at {settings.base_url} (data in {settings.data_path.resolve()})", flush=True)
    web.run_app(
        app,
        loop=new_event_loop(settings.event_loop),
        host=settings.host,
        port=settings.port,
        access_log_class=RedactingAccessLogger,
        print=None,
        shutdown_timeout=10,
    )
