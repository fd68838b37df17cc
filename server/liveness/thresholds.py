"""Where a movement, an expression or a picture counts: the liveness engine's calibrated numbers."""

from __future__ import annotations

from dataclasses import dataclass

# Seconds from a prompt to the earliest movement that can answer it: the page must show the prompt and a
# person read it and begin (human reactions take roughly 0.2-1.5 s).
REACTION_FLOOR_S = 0.15


@dataclass(frozen=True)
class Thresholds:
    """Calibrated on the real clips in ../shared/media/videos (see tests/test_liveness_clips.py).

    A modest genuine turn there reaches 15-20 degrees, talking and natural head motion stay within about
    5 degrees of the person's own neutral pose; blinks close both eyes to a blendshape of about 0.7 from
    an open level of 0.1-0.3.
    """

    turn_deg: float = 12.0
    look_up_deg: float = 10.0
    look_down_deg: float = 10.0
    neutral_yaw_deg: float = 7.0  # back to neutral: within this of the baseline
    neutral_pitch_deg: float = 7.0
    frontal_yaw_deg: float = 12.0  # absolute pose accepted for the first neutral baseline
    frontal_pitch_deg: float = 25.0
    wrong_hold_s: float = 0.4  # a wrong head movement held this long fails the challenge
    wrong_other_factor: float = 1.5  # a head movement other than the opposite is wrong beyond this many thresholds
    neutral_steady_deg: float = 4.0  # the neutral pose must hold steady within this
    eyes_closed: float = 0.45  # min(eyeBlinkLeft, eyeBlinkRight) for "both eyes closed"
    eyes_closed_rise: float = 0.25  # ... and at least this much above the person's open-eye level
    ear_closed_ratio: float = 0.5  # or eye aspect ratio below this fraction of the open-eye level
    smile: float = 0.5
    smile_rise: float = 0.3
    jaw_open: float = 0.45
    jaw_open_rise: float = 0.3
    mouth_open_ratio: float = 0.3  # inner-lip gap over mouth width
    reaction_floor_s: float = REACTION_FLOOR_S  # a blink begun sooner after its prompt is not the answer
    hold_s: float = 0.15  # an action must be held this long...
    hold_frames: int = 2  # ...over at least this many analysed frames
    hold_release_factor: float = 0.9  # a head movement's hold, once begun, lasts while it is beyond this share of its threshold
    neutral_hold_s: float = 0.2
    neutral_hold_frames: int = 3
    max_frame_gap_s: float = 0.2  # a hold counts at most half of this before its first frame (engine.held)
    face_lost_s: float = 1.0
    over_rotation_grace_s: float = 4.0  # a face lost just after a strong turn the right way may come back
    multiple_faces_s: float = 0.5
    min_face_size: float = 0.18  # face width over the frame's shorter side
    max_face_size: float = 0.95
    min_face_px: float = 72.0
    min_brightness: float = 28.0  # low on purpose: darker skin in ordinary office light measures about 40
    max_brightness: float = 235.0
    min_sharpness: float = 12.0
    max_centre_offset: float = 0.3
    max_centre_jump: float = 0.3  # between frames of the same face, normalised to the frame...
    max_centre_jump_s: float = 0.1  # ...analysed up to this far apart (farther, up to max_frame_gap_s: in proportion)
    size_ratio_range: tuple[float, float] = (0.6, 1.67)
    continuity_window_s: float = 1.5
    onset_fraction: float = 0.5  # a movement has begun (reaction time) at this fraction of its threshold
