"""The waiting line of several instances on one database: each ask is decided on the cluster's line
(server/storage/waiting_line.py) with the one instance's bookkeeping (admission.py), and a customer
admitted on another instance has their offer forwarded there, signed, so the check runs where the place is.

The page keeps talking to the instance it reaches (a reverse proxy keeps a browser on one); its WebRTC
answer comes from the instance holding the place, whose media address it then streams to, as it does
to any instance. Forwarded offers carry an HMAC of the body under a key derived from the cookie secret
(every instance has the same), with a timestamp: nobody else can make an instance skip the line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
from typing import Any

from ..errors import FlowError
from ..storage.waiting_line import SharedLine
from .admission import SOON_RETRY_S, Admission, Admit, Place

log = logging.getLogger(__name__)
OFFER_PATH = "/internal/line/offer"  # kept from the outside by the reverse proxy (deploy/haproxy.cfg)
SIGNATURE_HEADER = "X-Realname-Line"
SIGNED_FOR_S = 30.0
FORWARD_TIMEOUT_S = 30.0


class ClusterLine:
    def __init__(self, line: SharedLine, secret: bytes) -> None:
        self.line = line
        self._key = hmac.new(secret, b"realname waiting line", hashlib.sha256).digest()
        self._urls: dict[str, str] = {}

    def ask(self, admission: Admission, session_id: str, live: int, fps: float, bound: int, keys: tuple[str, ...]) -> Admit:
        """One ask on the cluster's line: admitted here, admitted on another instance (a place held there
        for the customer), or a place in the line."""
        now = self.line.shared.now()
        with self.line.locked():
            admission.line = [Place(**place) for place in self.line.load()]
            others = self.line.elsewhere(now)
            self._urls = {other.instance: other.url for other in others}
            busy = live + self.line.held_here(now)
            admit = admission.ask(session_id, busy, now, fps, bound, self.line.hashed(keys), {o.instance: o.free for o in others})
            self.line.save([dataclasses.asdict(place) for place in admission.line])
            if admit.instance is not None:
                self.line.hold(session_id, admit.instance, now)
            self.line.publish(admission.room(fps, bound), live + int(admit.admitted and admit.instance is None), now)
        return admit

    def publish(self, admission: Admission, live: int, fps: float, bound: int, freed: bool = False) -> None:
        """This instance's room and live checks (a check ended, the climb opened a place, a heartbeat);
        `freed` and a place is free: the other instances are told at once."""
        now = self.line.shared.now()
        try:
            room = admission.room(fps, bound)
            self.line.publish(room, live, now)
            self.line.forget_lapsed(now)
            if freed and live < room:
                self.line.shared.tell_place_free()
        except Exception:  # the database away: the next ask or beat publishes again
            log.warning("could not publish this instance's free places to the shared line")

    def leave(self, session_id: str) -> None:
        self.line.leave(session_id)

    def take_held(self, session_id: str) -> bool:
        return self.line.take_held(session_id, self.line.shared.now())

    def end_elsewhere(self, session_id: str, reason: str) -> None:
        """A bye that reached this instance for a check running on another."""
        shared = self.line.shared
        owner = shared.owner_of(session_id)
        if owner and owner != shared.instance_id:
            shared.ask_owner_to_end(owner, session_id, reason)

    def view(self) -> dict[str, Any]:
        """The cluster's line, for /healthz/details."""
        now = self.line.shared.now()
        line = [Place(**place) for place in self.line.load()]
        return {
            "waiting": len(line),
            "waiting_present": sum(p.present(now) for p in line),
            "free_elsewhere": sum(other.free for other in self.line.elsewhere(now)),
        }

    # -- forwarding an offer to the instance that holds the place ----------------------------------

    def sign(self, payload: bytes, now: float | None = None) -> str:
        stamp = str(int(self.line.shared.now() if now is None else now))
        return f"{stamp}.{hmac.new(self._key, stamp.encode() + b'.' + payload, hashlib.sha256).hexdigest()}"

    def signed(self, signature: str, payload: bytes) -> bool:
        stamp, _, _ = signature.partition(".")
        if not stamp.isdigit() or abs(self.line.shared.now() - int(stamp)) > SIGNED_FOR_S:
            return False
        return hmac.compare_digest(signature, self.sign(payload, int(stamp)))

    async def forward(self, instance: str, offer: dict[str, Any]) -> dict[str, str]:
        """The answer of the instance holding this customer's place; FlowError when it gives none."""
        import aiohttp

        payload = json.dumps(offer).encode()
        url = self._urls.get(instance, "") + OFFER_PATH
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)) as http:
                headers = {SIGNATURE_HEADER: self.sign(payload), "Content-Type": "application/json"}
                async with http.post(url, data=payload, headers=headers) as response:
                    answer = await response.json(content_type=None)
                    status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError):
            answer, status = {}, 502
        if status == 200 and isinstance(answer, dict) and "sdp" in answer:
            return {"sdp": answer["sdp"], "type": answer["type"]}
        self.line.release_held(offer["session_id"])
        error = answer.get("error") if isinstance(answer, dict) else None
        if isinstance(error, dict) and error.get("code") != "busy":
            extra = {k: v for k, v in error.items() if k not in ("code", "message")}
            raise FlowError(str(error.get("code")), str(error.get("message")), status, **extra)
        log.warning("instance %s did not take the place held there (status %s)", instance, status)
        queue = {"position": 1, "wait_s": round(SOON_RETRY_S), "retry_after_s": SOON_RETRY_S}
        raise FlowError("busy", "the service is busy; your place in line is kept", 503, queue=queue)
