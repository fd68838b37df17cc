"""The live page's data channel: what the server sends (prompt, rate, result) and what it reads (bye).

- `{"type": "prompt", "phase", "challenge", "step", "total", "hint"}`: what to show the customer.
- `{"type": "rate", "fps": N}`: send at most N frames a second from now on (the page sets its sender's
  `maxFramerate`; N is at most what the page was told to send at first, `captureFps`). Sent when the
  check's step changes to one sent at another rate (server/liveness/rates.py `StepRates.sent_fps`).
- `{"type": "result", "status"}`: the check is over; the page goes to its result.
- From the page, `{"type": "bye"}`: the customer left.

Page URLs are not part of it: the page knows where its result is from its own config block.
"""

from __future__ import annotations

import json
from typing import Any

from ..liveness.engine import Verdict

MAX_MESSAGE_BYTES = 1024  # the page only ever sends {"type": "bye"}; anything larger is ignored unread


def prompt_message(verdict: Verdict) -> dict[str, Any]:
    prompt = verdict.prompt
    return {
        "type": "prompt",
        "phase": prompt.phase.value,
        "challenge": prompt.challenge.value if prompt.challenge else None,
        "step": prompt.step,
        "total": prompt.total,
        "hint": prompt.hint.value if prompt.hint else None,
    }


def rate_message(fps: float) -> dict[str, Any]:
    return {"type": "rate", "fps": fps}


def result_message(status: str) -> dict[str, Any]:
    return {"type": "result", "status": status}


def encode(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def message_type(message: object) -> str | None:
    """The `type` of a message from the page, or None for anything malformed, oversized or deeply nested."""
    if isinstance(message, bytes) or not isinstance(message, str) or len(message) > MAX_MESSAGE_BYTES:
        return None
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        return None
    kind = data.get("type") if isinstance(data, dict) else None
    return kind if isinstance(kind, str) else None
