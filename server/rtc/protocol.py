"""The live page's data channel: what the server sends (prompt, result) and what it reads (bye).

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
