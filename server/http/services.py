"""What the views need, built once by the app factory and reached through `request.app[SERVICES]`."""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
from aiohttp import web

from ..config import Settings
from ..flow.attempts import LiveAttempts
from ..flow.lifecycle import Lifecycle
from ..flow.links import Links
from ..flow.recorded import RecordedChecks
from ..operators.signin import SignIn
from ..ratelimit import Limiter
from ..storage.operators import OperatorStore
from ..storage.store import Store
from ..webhooks import Outbox


@dataclass
class Services:
    settings: Settings
    store: Store
    lifecycle: Lifecycle
    links: Links
    attempts: LiveAttempts
    recorded: RecordedChecks
    outbox: Outbox
    templates: jinja2.Environment
    secret: bytes  # signs CSRF tokens
    api_limiter: Limiter
    page_limiter: Limiter
    bad_key_limiter: Limiter  # requests with a wrong API key, per client address
    operators: OperatorStore
    signin: SignIn  # the operator console's sign-in, with its lockouts


SERVICES = web.AppKey("services", Services)
