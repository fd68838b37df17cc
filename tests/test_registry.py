"""The live registry: one live check per session, reserved before the first await; only the registered
attempt counts."""

from __future__ import annotations

from types import SimpleNamespace

from server.flow.registry import LiveRegistry


def attempt(session_id: str) -> SimpleNamespace:
    """An attempt as the registry sees it: a session id (its connection and analysis are not its business)."""
    return SimpleNamespace(session_id=session_id)


def test_reserve_is_exclusive():
    live = LiveRegistry()
    assert live.reserve("ses_a") is True
    assert live.reserve("ses_a") is False
    assert live.reserve("ses_b") is True
    assert "ses_a" in live and len(live) == 2 and live
    assert live.get("ses_a") is None  # reserved, not yet set up
    assert live.attempts() == []


def test_a_registered_attempt_is_current_until_released():
    live = LiveRegistry()
    live.reserve("ses_a")
    first = attempt("ses_a")
    live.register(first)
    assert live.get("ses_a") is first and live.is_current(first)
    assert live.attempts() == [first]
    assert live.reserve("ses_a") is False


def test_release_only_by_the_owner():
    live = LiveRegistry()
    first, second = attempt("ses_a"), attempt("ses_a")
    live.reserve("ses_a")
    live.register(first)
    live.release("ses_a", first)
    live.reserve("ses_a")
    live.register(second)
    # The first attempt's late clean-up must not free the place the second one holds.
    live.release("ses_a", first)
    assert live.is_current(second) and not live.is_current(first)
    live.release("ses_a", second)
    assert "ses_a" not in live and not live and len(live) == 0
    assert not live.is_current(second)


def test_release_without_an_attempt_frees_a_reservation():
    live = LiveRegistry()
    live.reserve("ses_a")
    live.release("ses_a")
    assert "ses_a" not in live
    live.release("ses_never")  # nothing to free: no error
    assert live.reserve("ses_a") is True
