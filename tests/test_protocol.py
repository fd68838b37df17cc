"""The live page's data channel: what the server sends and what it accepts from the page."""

from __future__ import annotations

import json

import pytest

from server.liveness.challenges import Challenge
from server.liveness.engine import Hint, Phase, Prompt, Verdict
from server.rtc import protocol


def test_bye_is_read():
    assert protocol.message_type('{"type": "bye"}') == "bye"
    assert protocol.message_type(protocol.encode({"type": "bye"})) == "bye"


@pytest.mark.parametrize(
    "message",
    [
        b'{"type": "bye"}',  # a binary message
        "not json",
        "",
        '{"type": "bye"' + " " * protocol.MAX_MESSAGE_BYTES + "}",  # oversized
        "[" * 100_000 + "]" * 100_000,  # deeply nested (cut off by the size limit)
        "[" * 500 + "]" * 500,  # deeply nested within the size limit
        '["bye"]',
        '"bye"',
        '{"type": 1}',
        '{"type": null}',
        '{"kind": "bye"}',
        None,
        42,
    ],
)
def test_anything_malformed_has_no_type(message):
    assert protocol.message_type(message) is None


def test_prompt_and_result_messages():
    # Only the verdict's prompt reaches the page.
    verdict = Verdict(Prompt(phase=Phase.CHALLENGE, challenge=Challenge.TURN_LEFT, step=1, total=3, hint=Hint.TOO_FAR))
    message = protocol.prompt_message(verdict)
    assert message == {"type": "prompt", "phase": "challenge", "challenge": "turn_left", "step": 1, "total": 3, "hint": "too_far"}
    # Before the first challenge, with nothing to correct.
    start = protocol.prompt_message(Verdict(Prompt(phase=Phase.START, challenge=None, step=0, total=3, hint=None)))
    assert (start["challenge"], start["hint"]) == (None, None)
    assert json.loads(protocol.encode(message)) == message
    assert protocol.result_message("approved") == {"type": "result", "status": "approved"}
    assert " " not in protocol.encode(protocol.result_message("approved"))  # compact on the wire


def test_the_rate_message_asks_the_page_for_a_frame_rate():
    assert protocol.rate_message(12.0) == {"type": "rate", "fps": 12.0}
    assert json.loads(protocol.encode(protocol.rate_message(12.0))) == {"type": "rate", "fps": 12.0}
