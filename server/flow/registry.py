"""The live checks this process runs, one per session at most: reserved before the first await, so two
offers racing for one session (or for the last free place) cannot both get in."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .attempts import LiveAttempt


class LiveRegistry:
    def __init__(self) -> None:
        self._attempts: dict[str, LiveAttempt | None] = {}  # None: reserved, connection not yet set up

    def reserve(self, session_id: str) -> bool:
        """Synchronous on purpose: check and insert with no await between them."""
        if session_id in self._attempts:
            return False
        self._attempts[session_id] = None
        return True

    def register(self, attempt: LiveAttempt) -> None:
        self._attempts[attempt.session_id] = attempt

    def get(self, session_id: str) -> LiveAttempt | None:
        return self._attempts.get(session_id)

    def is_current(self, attempt: LiveAttempt) -> bool:
        """Only the session's registered attempt may decide it, send it a result or count as a failure."""
        return self._attempts.get(attempt.session_id) is attempt

    def release(self, session_id: str, attempt: LiveAttempt | None = None) -> None:
        """Free the session's place; with `attempt`, only if it is still that attempt's."""
        if attempt is None or self._attempts.get(session_id) is attempt:
            self._attempts.pop(session_id, None)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._attempts

    def __len__(self) -> int:
        return len(self._attempts)

    def __bool__(self) -> bool:
        return bool(self._attempts)

    def attempts(self) -> list[LiveAttempt]:
        return [a for a in self._attempts.values() if a is not None]
