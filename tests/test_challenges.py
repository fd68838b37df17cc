import secrets
from collections import Counter
from itertools import pairwise

import pytest

from server.liveness.challenges import Challenge, ChallengeListError, parse_challenges, random_challenges
from server.sessions import Status, TransitionError, check_transition


def test_random_sequences_have_no_immediate_repeat_and_use_every_challenge():
    seen = Counter()
    for _ in range(2000):
        sequence = random_challenges(3, secrets.SystemRandom())
        assert len(sequence) == 3 and all(a != b for a, b in pairwise(sequence))
        assert any(c.is_head_pose for c in sequence)
        seen.update(sequence)
    assert set(seen) == set(Challenge)


def test_parse():
    assert parse_challenges("turn_left, blink") == [Challenge.TURN_LEFT, Challenge.BLINK]
    for bad in ("", "jump", ["turn_left", "wave"]):
        with pytest.raises(ChallengeListError):
            parse_challenges(bad)
    with pytest.raises(ChallengeListError):
        random_challenges(0)


def test_session_transitions():
    check_transition(Status.LIVE, Status.ID_UPLOADED)  # a failed attempt, retry allowed
    for final in (Status.APPROVED, Status.EXPIRED, Status.FAILED):
        with pytest.raises(TransitionError):
            check_transition(final, Status.LIVE)
    with pytest.raises(TransitionError):
        check_transition(Status.CREATED, Status.APPROVED)
