"""The timetable of a recorded check, and whether a clip followed it. Pure.

Without a live connection the server cannot answer the customer's movements with the next prompt, so
it fixes the prompts' times in advance: the page shows "look straight" for a lead-in, then each challenge
for one slot, while it records. The engine, replaying the clip, asks no challenge before its time, and a
clip made for another timetable (another session's, an old one) shows its movements at the wrong times.
"""

from __future__ import annotations

from dataclasses import dataclass

from .engine import ChallengeRecord

LEAD_IN_S = 3.0  # "look straight at the camera": the engine's neutral start
SLOT_S = 5.0  # each challenge: react, perform, come back to neutral
TAIL_S = 1.0  # after the last slot, so its movement is not cut off
ASK_LATE_S = 1.5  # the engine must have asked within this of the prompt (the face was neutral then)
LENGTH_SLACK_S = (1.0, 2.0)  # a clip may be this much shorter / longer than the timetable


@dataclass(frozen=True)
class RecordingSchedule:
    count: int
    lead_in_s: float = LEAD_IN_S
    slot_s: float = SLOT_S

    @property
    def prompts_at(self) -> list[float]:
        """Clip seconds at which the page shows challenge i."""
        return [self.lead_in_s + i * self.slot_s for i in range(self.count)]

    @property
    def duration_s(self) -> float:
        return self.lead_in_s + self.count * self.slot_s + TAIL_S

    def length_ok(self, seconds: float) -> bool:
        short, long = LENGTH_SLACK_S
        return self.duration_s - short <= seconds <= self.duration_s + long

    def to_dict(self) -> dict:
        return {"lead_in_s": self.lead_in_s, "slot_s": self.slot_s, "prompts_at_s": self.prompts_at, "duration_s": self.duration_s}


def off_schedule(records: tuple[ChallengeRecord, ...] | list[ChallengeRecord], schedule: RecordingSchedule) -> str | None:
    """What in the clip did not follow the timetable (None: everything did): every challenge the engine
    asked was asked close to its prompt (the face was neutral when the prompt showed), and every one
    done was done within its slot."""
    for index, (record, prompt_at) in enumerate(zip(records, schedule.prompts_at, strict=False)):
        if record.asked_at is None:
            continue
        if record.asked_at > prompt_at + ASK_LATE_S:
            return f"challenge {index + 1} ({record.type.value}) began {record.asked_at - prompt_at:.1f} s after its prompt"
        if record.completed_at is not None and record.completed_at > prompt_at + schedule.slot_s:
            return f"challenge {index + 1} ({record.type.value}) was done after its slot"
    return None
