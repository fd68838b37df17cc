"""The actions a customer can be asked to perform, and the server's random choice of them."""

from __future__ import annotations

import secrets
from enum import StrEnum


class Challenge(StrEnum):
    BLINK = "blink"
    TURN_LEFT = "turn_left"  # the person's own left
    TURN_RIGHT = "turn_right"
    LOOK_UP = "look_up"
    LOOK_DOWN = "look_down"
    SMILE = "smile"
    OPEN_MOUTH = "open_mouth"

    @property
    def is_head_pose(self) -> bool:
        return self in HEAD_POSE

    @property
    def opposite(self) -> Challenge | None:
        return OPPOSITES.get(self)


HEAD_POSE = frozenset({Challenge.TURN_LEFT, Challenge.TURN_RIGHT, Challenge.LOOK_UP, Challenge.LOOK_DOWN})
OPPOSITES = {
    Challenge.TURN_LEFT: Challenge.TURN_RIGHT,
    Challenge.TURN_RIGHT: Challenge.TURN_LEFT,
    Challenge.LOOK_UP: Challenge.LOOK_DOWN,
    Challenge.LOOK_DOWN: Challenge.LOOK_UP,
}


class ChallengeListError(ValueError):
    pass


def parse_challenges(names: str | list[str]) -> list[Challenge]:
    """'turn_left,blink' or ['turn_left', 'blink'] -> challenges; a clear error for an unknown name."""
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    items = [n for n in items if n]
    if not items:
        raise ChallengeListError("at least one challenge is needed")
    out = []
    for name in items:
        try:
            out.append(Challenge(name))
        except ValueError:
            known = ", ".join(c.value for c in Challenge)
            raise ChallengeListError(f"unknown challenge {name!r}; known: {known}") from None
    return out


def random_challenges(count: int, rng: secrets.SystemRandom | None = None) -> list[Challenge]:
    """A random sequence with no immediate repeat, and at least one head-pose action when count > 1
    (head turns are harder to fake with a photo than expressions)."""
    if not 1 <= count <= 5:
        raise ChallengeListError("challenge count must be between 1 and 5")
    rng = rng or secrets.SystemRandom()
    pool = list(Challenge)
    while True:
        sequence: list[Challenge] = []
        for _ in range(count):
            choices = [c for c in pool if not sequence or c != sequence[-1]]
            sequence.append(rng.choice(choices))
        if count == 1 or any(c.is_head_pose for c in sequence):
            return sequence
