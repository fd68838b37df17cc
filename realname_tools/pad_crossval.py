"""Leave-one-person-out calibration of the PAD thresholds, and what each cue buys under it.

Pure logic over clip scores. For each person, thresholds are fitted on every OTHER person's clips and
then decide that person's clips (genuine clips and the attacks that show their face alike), so no
verdict is made with thresholds that saw the face it judges. Pooled over the folds this estimates what
the fitted rule does on people it has not seen; the thresholds shipped are the same rule fitted on all.

The rule keeps margins rather than fitting tightly: in log-odds, the review threshold sits halfway
between the highest attack clip and the lowest genuine clip, the attack threshold halfway between the
highest attack and the review threshold. Unseen attacks score higher and unseen genuine faces lower than
the ones fitted on, so each side keeps room to drift. When the two overlap, no attack may pass: the
review threshold goes just above the highest attack, the attack threshold just below the lowest
genuine clip (or at the review threshold, whichever is lower), and the overlap goes to review.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from server.models.pad import combine_live
from server.spoof.pad import PadFramePolicy, PadThresholds, PadVerdict, expit, logit

from .pad_attacks import DIM_ATTACK_RECIPES

Z95 = 1.959964


@dataclass(frozen=True)
class Scored:
    file: str
    label: str  # attack or genuine
    attack_type: str
    person: str
    score: float | None  # the check's aggregated live score; None: no usable frame
    deformation: float | None = None  # flatness.py: how far the face departed from one homography
    luma: float | None = None  # median face luma of the scored frames (before the exposure rule), recorded only
    noise: float | None = None  # median face noise of the scored frames after the exposure rule (models/pad.py)
    recipe: str = ""  # how a generated clip was made (pad_attacks.py); empty for a filmed one
    detail: float | None = None  # median fine detail over noise of the scored faces (models/pad.py detail_level)


RULE = ("in log-odds, review threshold halfway between the highest attack clip and the lowest genuine clip, attack threshold a "
        "quarter of the way and below every genuine clip; when they overlap, review just above the highest attack and attack just "
        "below the lowest genuine clip. Shipped (SHIPPED_RULE): flat_below halfway (geometric) between the most deformed print and "
        "the least deformed genuine clip, or just below that genuine clip when they overlap; the score thresholds placed by the "
        "attacks flatness does not hold and the genuine clips that are not noisy (face noise after the exposure rule <= noisy_above, "
        "fixed beforehand from genuine clips only); a noisy face's own review threshold (noisy_review) by the same rule between those "
        "attacks (of any noise or room) and the noisy genuine clips, never below review; the clean thresholds then placed by the attacks "
        "filmed in ordinary light (not a dim-room recipe), whatever their measured noise. noisy_above is refitted in each fold by the same "
        "principle (halfway in log between the noisiest genuine clip in ordinary light and the least noisy genuine dim-room copy of the "
        "fitting persons); it is also the light gate's limit, which decides first whether a held-out clip's check would start")


# Fixed before fitting, from genuine clips only (no attack looked at): halfway in log between the noisiest
# genuine clip in ordinary light (shared clips and their defocused, low-resolution and compressed copies)
# and the least noisy genuine copy in a dim room (`noise_limit`, docs/anti-spoofing.md). The shipped rule
# refits it in each fold by the same principle (`MarginRule.noise_fitted`); this value is the fallback.
NOISY_ABOVE = 2.19  # 1.86 (the talking TV clip) and 2.57 (the webcam man in the dim room): sqrt(1.86 * 2.57)
DIM_ROOM_RECIPES = frozenset({"low_light", *DIM_ATTACK_RECIPES})  # pad_attacks.py: the clips made in its dim room


def noise_limit(clean: list[float], dim_room: list[float]) -> float:
    """Halfway in log (geometric mean) between the noisiest clean genuine clip and the least noisy dim-room one."""
    if not clean or not dim_room:
        raise ValueError("the noise limit needs clean and dim-room genuine clips")
    return round(math.sqrt(max(clean) * min(dim_room)), 2)


@dataclass(frozen=True)
class MarginRule:
    review_at: float = 0.5  # fraction of the log-odds gap above the highest attack
    attack_at: float = 0.25
    step: float = 0.05  # log-odds: "just above/below" when the classes overlap
    flatness: bool = False  # fit `flat_below` (flatness.py) and judge scores only where it does not hold
    noisy_above: float = 0.0  # a noisy face is never rejected on its score: its clips do not place the thresholds
    noisy_review: bool = False  # a noisy face's own review threshold: the noisy genuine clips against every attack; clean ones from clean attacks
    noisy_never_passes: bool = False  # (compared only) a noisy face always goes to review
    # Which attacks place the clean thresholds: "room", those filmed in ordinary light whatever their noise (a
    # generated screen's moire measures as noise, a real screen's does not); "noise", the attacks that are not noisy.
    clean_attacks: str = "room"
    noisy_floor: bool = True  # a noisy face never passes more easily than a clean one (noisy_review >= review)
    detail: bool = False  # fit `detail_below`: a face with less fine detail over its noise than every known genuine one is at best review
    # Fit `noisy_above` in each fold by its principle (`noise_limit`, genuine clips only) instead of the fixed value:
    # it is also the light gate's limit (liveness/light.py), which decides the held-out clips.
    noise_fitted: bool = False

    def fit(self, train: list[Scored]) -> PadThresholds:
        if self.noise_fitted:
            clean = [s.noise for s in train if s.label == "genuine" and s.noise is not None and not dim_room(s)]
            dim = [s.noise for s in train if s.label == "genuine" and s.noise is not None and dim_room(s)]
            limit = noise_limit(clean, dim) if clean and dim else self.noisy_above  # too few to fit: the value fixed beforehand
            return replace(self, noisy_above=limit, noise_fitted=False).fit(train)
        flat_below = self.flat_below(train) if self.flatness else 0.0
        held = [s for s in train if s.label == "attack" and s.deformation is not None and s.deformation < flat_below]
        every_attack = ([logit(s.score) for s in train if s.label == "attack" and s.score is not None and s not in held]
                        or [logit(s.score) for s in train if s.label == "attack" and s.score is not None])  # flatness holds them all
        # With a noisy face's own threshold, the clean thresholds are placed by clean attacks: noise that hides a
        # print's texture says nothing of a clean one.
        attacks = ([logit(s.score) for s in train if s.label == "attack" and s.score is not None and s not in held and not self.noisy_attack(s)]
                   if self.noisy_review or self.noisy_never_passes else []) or every_attack
        genuine = ([logit(s.score) for s in train if s.label == "genuine" and s.score is not None and not self.noisy(s)]
                   or [logit(s.score) for s in train if s.label == "genuine" and s.score is not None])  # all of them noisy
        if not attacks or not genuine:
            raise ValueError("fitting PAD thresholds needs scored attack and genuine clips")
        a, g = max(attacks), min(genuine)
        # The attack threshold also stays below every genuine clip, noisy ones included: a clean face that
        # scores as low as a noisy one goes to review, it is not rejected.
        floor = expit(min(logit(s.score) for s in train if s.label == "genuine" and s.score is not None) - self.step)
        persons = len({s.person for s in train})
        source = f"leave-one-person-out margin rule on {len(train)} clips of {persons} persons"
        overlap = a >= g
        review = round(expit(a + self.step) if overlap else expit(a + self.review_at * (g - a)), 4)
        attack = round(min(review, floor) if overlap else min(floor, expit(a + self.attack_at * (g - a))), 4)
        noisy_review = 1.0 if self.noisy_never_passes else self.noisy_review_threshold(train, every_attack)
        if noisy_review and self.noisy_floor:
            noisy_review = max(noisy_review, review)
        return PadThresholds(attack=attack, review=review, source=source + (" (classes overlap)" if overlap else ""), flat_below=flat_below,
                             noisy_above=self.noisy_above, noisy_review=noisy_review, detail_below=self.detail_below(train) if self.detail else 0.0)

    def detail_below(self, train: list[Scored]) -> float:
        """Just below the least detailed genuine clip: no known genuine clip is held. Attacks lie on both sides
        (a print filmed again has lost detail, a screen's moire adds some), so no attack places it."""
        genuine = [s.detail for s in train if s.label == "genuine" and s.detail is not None]
        return round(min(genuine) * math.exp(-self.step), 3) if genuine else 0.0

    def noisy_review_threshold(self, train: list[Scored], attacks: list[float]) -> float:
        """The same margin rule between every attack the score must hold (log-odds `attacks`, noisy or
        clean: a noisy face is never let pass below a known attack) and the noisy genuine clips; 0 (the
        review threshold) when off or no noisy genuine clip is known. Above the review threshold when
        noisy attacks score higher than clean ones (the noise hides their texture), below it when only
        noisy genuine faces score lower."""
        noisy = [logit(s.score) for s in train if s.label == "genuine" and s.score is not None and self.noisy(s)]
        if not self.noisy_review or not noisy or not attacks:
            return 0.0
        a, g = max(attacks), min(noisy)
        return round(expit(a + self.review_at * (g - a) if a < g else a + self.step), 4)

    def noisy(self, s: Scored) -> bool:
        return s.noise is not None and self.noisy_above > 0 and s.noise > self.noisy_above

    def noisy_attack(self, s: Scored) -> bool:
        """Whether an attack is left out of the clean thresholds (it places the noisy face's threshold only)."""
        return dim_room(s) if self.clean_attacks == "room" else self.noisy(s)

    def flat_below(self, train: list[Scored]) -> float:
        """Halfway (geometric) between the most deformed print and the least deformed genuine clip; when
        they overlap, just below the least deformed genuine clip (no known genuine clip is held)."""
        prints = [s.deformation for s in train if s.label == "attack" and s.attack_type == "print" and s.deformation is not None]
        genuine = [s.deformation for s in train if s.label == "genuine" and s.deformation is not None]
        if not prints or not genuine:
            return 0.0
        a, g = max(prints), min(genuine)
        if a < g:
            return round(math.sqrt(a * g), 4)
        return round(g * math.exp(-self.step), 4)


BEFORE_GATE_RULE = MarginRule(flatness=True, noisy_above=NOISY_ABOVE, noisy_review=True, detail=True)  # shipped before the light gate
SHIPPED_RULE = replace(BEFORE_GATE_RULE, noise_fitted=True)  # with the light gate: noisy_above refitted in each fold
BEFORE_DETAIL_RULE = MarginRule(flatness=True, noisy_above=NOISY_ABOVE, noisy_review=True)  # shipped before the detail cue
PREVIOUS_RULE = MarginRule(flatness=True, noisy_above=NOISY_ABOVE)  # a noisy face never rejected on its score, no threshold of its own


# A held-out clip the light gate (liveness/light.py) never opened for: the check would not have started.
# Not a PAD verdict: an attack stopped there is not accepted, a genuine clip there is neither rejected nor reviewed.
ASKED_FOR_LIGHT = "asked_for_light"


@dataclass(frozen=True)
class Fold:
    person: str
    trained_on: frozenset[str]  # the persons whose clips fitted this fold's thresholds
    thresholds: PadThresholds
    verdicts: tuple[tuple[Scored, str], ...]  # a PadVerdict, or ASKED_FOR_LIGHT


def cross_validate(items: list[Scored], fit: Callable[[list[Scored]], PadThresholds],
                   judge: Callable[[Scored, PadThresholds], str] | None = None, fit_items: list[Scored] | None = None) -> list[Fold]:
    """Each person's clips decided by thresholds fitted without them; `judge` (default: the PAD rule on the
    clip's figures) may put the light gate first. `fit_items`: the same clips received another way (the files,
    for clips judged as a stream): each fold is fitted on those instead."""
    folds = []
    for person in sorted({s.person for s in items}):
        train = [s for s in (items if fit_items is None else fit_items) if s.person != person]
        thresholds = fit(train)
        verdicts = tuple((s, judge(s, thresholds) if judge is not None else thresholds.decide(s.score, s.deformation, s.noise, s.detail))
                         for s in items if s.person == person)
        folds.append(Fold(person, frozenset(s.person for s in train), thresholds, verdicts))
    return folds


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95 % Wilson score interval of a proportion k/n (sound for small n and for k = 0)."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def rate(k: int, n: int) -> dict:
    return {"count": k, "of": n, "rate": round(k / n, 4) if n else None, "ci95": wilson(k, n)}


def summarise_folds(folds: list[Fold]) -> dict:
    """Pooled and per-person error rates (ISO/IEC 30107-3 terms, review counted apart) and margins.

    APCER: attacks accepted (verdict pass). Attacks sent to review are not accepted; they are counted.
    BPCER: genuine clips rejected as attacks. Review rate: genuine clips sent to a person (review, or
    no usable frame). Margins in log-odds: how far the worst genuine clip sits above its fold's attack
    and review thresholds, and the worst attack below its fold's review threshold (negative: crossed).
    """
    pairs = [(f, s, v) for f in folds for s, v in f.verdicts]
    attacks = [(f, s, v) for f, s, v in pairs if s.label == "attack"]
    genuine = [(f, s, v) for f, s, v in pairs if s.label == "genuine"]
    by_type: dict[str, dict] = {}
    for kind in sorted({s.attack_type or "unspecified" for _, s, _ in attacks}):
        of_kind = [v for _, s, v in attacks if (s.attack_type or "unspecified") == kind]
        by_type[kind] = rate(sum(v == PadVerdict.PASS for v in of_kind), len(of_kind))
    g_scores = [s.score for _, s, _ in genuine if s.score is not None]
    a_scores = [s.score for _, s, _ in attacks if s.score is not None]

    def lo(values, digits=3):
        return round(min(values), digits) if values else None

    def hi(values, digits=4):
        return round(max(values), digits) if values else None

    def review_for(f: Fold, s: Scored) -> float:  # the review threshold this clip was held to (a noisy face's own)
        return f.thresholds.review_for(s.noise)

    def noisy(f: Fold, s: Scored) -> bool:
        return f.thresholds.noisy(s.noise)

    def flat(f: Fold, s: Scored) -> bool:
        return s.deformation is not None and s.deformation < f.thresholds.flat_below

    past_gate = [(f, s, v) for f, s, v in genuine if v != ASKED_FOR_LIGHT]
    return {
        "folds": len(folds),
        "apcer": rate(sum(v == PadVerdict.PASS for _, _, v in attacks), len(attacks)),
        "apcer_by_type": by_type,
        "attacks_to_review": sum(v in (PadVerdict.REVIEW, PadVerdict.UNSCORED) for _, _, v in attacks),
        "bpcer": rate(sum(v == PadVerdict.ATTACK for _, _, v in genuine), len(genuine)),
        "genuine_review": rate(sum(v in (PadVerdict.REVIEW, PadVerdict.UNSCORED) for _, _, v in genuine), len(genuine)),
        # The light gate: clips it never opened for (the check would not have started), and the review rate of
        # the genuine clips it let through; friction for a genuine customer either way.
        "genuine_asked_for_light": rate(sum(v == ASKED_FOR_LIGHT for _, _, v in genuine), len(genuine)),
        "attacks_asked_for_light": rate(sum(v == ASKED_FOR_LIGHT for _, _, v in attacks), len(attacks)),
        "genuine_review_past_gate": rate(sum(v in (PadVerdict.REVIEW, PadVerdict.UNSCORED) for _, _, v in past_gate), len(past_gate)),
        "genuine_review_or_light": rate(sum(v in (PadVerdict.REVIEW, PadVerdict.UNSCORED, ASKED_FOR_LIGHT) for _, _, v in genuine), len(genuine)),
        "margins": {
            "lowest_genuine_clip": lo(g_scores),
            "highest_attack_clip": round(max(a_scores), 4) if a_scores else None,
            "separation_logit": round(logit(min(g_scores)) - logit(max(a_scores)), 3) if g_scores and a_scores else None,
            "genuine_above_attack_threshold_logit": lo([logit(s.score) - logit(f.thresholds.attack) for f, s, _ in genuine if s.score is not None]),
            "genuine_above_review_threshold_logit": lo([logit(s.score) - logit(review_for(f, s)) for f, s, _ in genuine if s.score is not None]),
            "attack_below_review_threshold_logit": lo([logit(review_for(f, s)) - logit(s.score) for f, s, _ in attacks if s.score is not None]),
            # what the fused rule lives on: the score where flatness does not hold, flatness where the score is fooled
            "highest_attack_not_flat": hi([s.score for f, s, _ in attacks if s.score is not None and not flat(f, s)]),
            "lowest_genuine_not_noisy": lo([s.score for f, s, _ in genuine if s.score is not None and not noisy(f, s)]),
            "lowest_noisy_genuine": lo([s.score for f, s, _ in genuine if s.score is not None and noisy(f, s)]),
            "highest_noisy_attack": hi([s.score for f, s, _ in attacks if s.score is not None and noisy(f, s)]),
            # a noisy genuine clip over its fold's noisy review threshold (negative: sent to review), log-odds
            "noisy_genuine_above_noisy_review_logit": lo([logit(s.score) - logit(review_for(f, s)) for f, s, _ in genuine
                                                          if s.score is not None and noisy(f, s)]),
            "noise": noise_groups([s for _, s, _ in pairs]),
            "most_deformed_print": hi([s.deformation for _, s, _ in attacks if s.attack_type == "print" and s.deformation is not None], 4),
            "most_deformed_print_scored_live": hi([s.deformation for _, s, _ in attacks if s.attack_type == "print" and s.deformation is not None
                                                   and s.score is not None and s.score >= 0.5], 4),
            "least_deformed_genuine": lo([s.deformation for _, s, _ in genuine if s.deformation is not None], 4),
            "least_detailed_genuine": lo([s.detail for _, s, _ in genuine if s.detail is not None], 3),
            # attacks the score and flatness would have passed, held by the detail cue alone
            "attacks_held_by_detail": sorted(f"{s.file} ({s.detail:.3f} < {f.thresholds.detail_below})" for f, s, v in attacks
                                             if v == PadVerdict.REVIEW and s.detail is not None
                                             and f.thresholds.decide(s.score, s.deformation, s.noise) == PadVerdict.PASS),
        },
        "per_person": [person_row(f) for f in folds],
    }


def noise_groups(items: list[Scored]) -> dict:
    """The face noise (clips' medians) of genuine clips in ordinary light, genuine dim-room copies, and attacks."""
    groups = {"genuine_ordinary_light": [s.noise for s in items if s.label == "genuine" and not dim_room(s)],
              "genuine_dim_room": [s.noise for s in items if s.label == "genuine" and dim_room(s)],
              "attacks": [s.noise for s in items if s.label == "attack"]}
    return {name: {"clips": len(known), "min": round(min(known), 2), "max": round(max(known), 2)}
            for name, values in groups.items() if (known := [v for v in values if v is not None])}


def dim_room(s: Scored) -> bool:
    return s.recipe in DIM_ROOM_RECIPES


def person_row(fold: Fold) -> dict:
    g = [(s, v) for s, v in fold.verdicts if s.label == "genuine"]
    a = [(s, v) for s, v in fold.verdicts if s.label == "attack"]
    g_scores = [s.score for s, _ in g if s.score is not None]
    a_scores = [s.score for s, _ in a if s.score is not None]
    return {
        "person": fold.person,
        "thresholds": {"attack": fold.thresholds.attack, "review": fold.thresholds.review, "flat_below": fold.thresholds.flat_below,
                       "noisy_review": fold.thresholds.noisy_review, "noisy_above": fold.thresholds.noisy_above},
        "genuine": len(g),
        "genuine_rejected": sum(v == PadVerdict.ATTACK for _, v in g),
        "genuine_review": sum(v in (PadVerdict.REVIEW, PadVerdict.UNSCORED) for _, v in g),
        "genuine_asked_for_light": sum(v == ASKED_FOR_LIGHT for _, v in g),
        "attacks": len(a),
        "attacks_accepted": sum(v == PadVerdict.PASS for _, v in a),
        "attacks_to_review": sum(v in (PadVerdict.REVIEW, PadVerdict.UNSCORED) for _, v in a),
        "attacks_asked_for_light": sum(v == ASKED_FOR_LIGHT for _, v in a),
        "lowest_genuine": round(min(g_scores), 4) if g_scores else None,
        "highest_attack": round(max(a_scores), 4) if a_scores else None,
        "clips": [{"file": s.file, "label": s.label, "score": None if s.score is None else round(s.score, 4), "verdict": str(v)}
                  for s, v in fold.verdicts],
    }


def _pct(r: dict) -> str:
    ci = r["ci95"]
    return "-" if r["of"] == 0 else f"{r['count']}/{r['of']} = {r['rate']:.1%} (95% CI {ci[0]:.1%}-{ci[1]:.1%})"


def render_folds(summary: dict, per_person: bool = True) -> str:
    lines = []
    if per_person:
        lines.append(f"{'person (scored with thresholds fitted without them)':<44} {'attack':>6} {'review':>6} {'nsyrev':>6} {'noisy':>5} {'gen':>4} {'rej':>4} {'rev':>4} "
                     f"{'lgt':>4} {'att':>4} {'acc':>4} {'rev':>4} {'lgt':>4} {'low gen':>8} {'high att':>8}")
        for row in summary["per_person"]:
            lines.append(
                f"{row['person'][:44]:<44} {row['thresholds']['attack']:>6.3f} {row['thresholds']['review']:>6.3f} "
                f"{row['thresholds']['noisy_review'] or row['thresholds']['review']:>6.3f} {row['thresholds']['noisy_above']:>5.2f} {row['genuine']:>4} "
                f"{row['genuine_rejected']:>4} {row['genuine_review']:>4} {row['genuine_asked_for_light']:>4} {row['attacks']:>4} "
                f"{row['attacks_accepted']:>4} {row['attacks_to_review']:>4} {row['attacks_asked_for_light']:>4} "
                f"{_num(row['lowest_genuine']):>8} {_num(row['highest_attack']):>8}"
            )
        lines.append("")
    lines.append(f"pooled over {summary['folds']} leave-one-person-out folds:")
    lines.append(f"  APCER (attacks accepted): {_pct(summary['apcer'])}; {summary['attacks_to_review']} attacks sent to review")
    for kind, r in summary["apcer_by_type"].items():
        lines.append(f"    {kind}: {_pct(r)}")
    lines.append(f"  BPCER (genuine rejected): {_pct(summary['bpcer'])}")
    lines.append(f"  genuine sent to review:   {_pct(summary['genuine_review'])}")
    lines.append(f"  light gate: genuine asked for more light {_pct(summary['genuine_asked_for_light'])}; attacks {_pct(summary['attacks_asked_for_light'])}")
    lines.append(f"  genuine sent to review among those past the gate: {_pct(summary['genuine_review_past_gate'])}; "
                 f"review or asked for light: {_pct(summary['genuine_review_or_light'])}")
    m = summary["margins"]
    lines.append(f"  margins: lowest genuine clip {m['lowest_genuine_clip']}, highest attack clip {m['highest_attack_clip']} "
                 f"(separation {m['separation_logit']} log-odds); worst genuine above its fold's attack threshold "
                 f"{m['genuine_above_attack_threshold_logit']}, above its review threshold {m['genuine_above_review_threshold_logit']}; "
                 f"worst attack below its review threshold {m['attack_below_review_threshold_logit']} (log-odds)")
    lines.append(f"  fused rule: highest attack that flatness does not hold {m['highest_attack_not_flat']}, lowest genuine clip that is not noisy "
                 f"{m['lowest_genuine_not_noisy']}; deformation of the most deformed print {m['most_deformed_print']} (of a print scored live, "
                 f"{m['most_deformed_print_scored_live']}), of the least deformed genuine clip {m['least_deformed_genuine']}; noisy faces: lowest "
                 f"genuine {m['lowest_noisy_genuine']}, highest attack {m['highest_noisy_attack']}, worst noisy genuine above its fold's noisy "
                 f"review threshold {m['noisy_genuine_above_noisy_review_logit']} (log-odds)")
    lines.append("  face noise after the exposure rule (grey levels, clips' medians): " + "; ".join(
        f"{group} {g['min']}-{g['max']} (n={g['clips']})" for group, g in m["noise"].items()))
    lines.append(f"  detail over noise: least detailed genuine clip {m['least_detailed_genuine']}; attacks held by it alone (the score and "
                 f"flatness passed them; detail < its fold's detail_below): {', '.join(m['attacks_held_by_detail']) or 'none'}")
    return "\n".join(lines)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


# -- the cues compared: each a frame policy, an ensemble rule and an aggregate -------------------------


def live_mean(live: tuple[float, ...]) -> float:
    """Minivision's ensemble: the mean of both networks' live probabilities."""
    return sum(live) / len(live)


def live_v1se(live: tuple[float, ...]) -> float:
    return live[1]


def live_logit_mean(live: tuple[float, ...]) -> float:
    return expit(sum(logit(p) for p in live) / len(live))


@dataclass(frozen=True)
class Cue:
    name: str
    policy: PadFramePolicy
    combine: Callable[[tuple[float, ...]], float]
    method: str
    raw: bool = False  # score the pixels as they came (no exposure rule)
    rule: MarginRule = MarginRule()  # the decision fitted in each fold
    gate: bool = False  # the light gate of each fold's noisy_above first (liveness/light.py)


def cue_ladder() -> list[Cue]:
    """The configuration as shipped before cross-validation, then one change at a time, so the table
    shows what each bought (a row starting with "+" adds to the row above it)."""
    base = PadFramePolicy(max_frames=8, min_gap_s=0.3, max_yaw_deg=10.0, max_pitch_deg=10.0, min_sharpness=12.0, min_face_px=64.0)
    more = replace(base, max_frames=16, min_gap_s=0.2)
    gate = replace(more, min_brightness=40.0, max_brightness=225.0)
    return [
        Cue("before: 8 frames, median, mean of networks, raw pixels", base, live_mean, "median", raw=True),
        Cue("exposure gate alone (face luma 40-225)", replace(base, min_brightness=40.0, max_brightness=225.0), live_mean, "median", raw=True),
        Cue("16 frames alone", more, live_mean, "median", raw=True),
        Cue("log-odds trimmed mean alone", base, live_mean, "logit_trimmed_mean", raw=True),
        Cue("exposure normalisation alone (dim face brightened)", base, live_mean, "median"),
        Cue("+ 16 frames", more, live_mean, "median"),
        Cue("+ log-odds trimmed mean", more, live_mean, "logit_trimmed_mean"),
        Cue("+ exposure gate", gate, live_mean, "logit_trimmed_mean"),
        Cue("norm, 16 frames, trimmed mean (scores)", more, live_mean, "trimmed_mean"),
        Cue("norm, 16 frames, log-odds t.mean, networks in log-odds", more, live_logit_mean, "logit_trimmed_mean"),
        Cue("norm, 16 frames, median, MiniFASNetV2 (2.7) alone", more, combine_live, "median"),
        Cue("norm, 16 frames, median, MiniFASNetV1SE (4.0) alone", more, live_v1se, "median"),
        Cue("V2 + sharpness >= 25", replace(more, min_sharpness=25.0), combine_live, "median"),
        Cue("V2 + pose gate 6 deg", replace(more, max_yaw_deg=6.0, max_pitch_deg=6.0), combine_live, "median"),
        Cue("V2 + pose gate 15 deg", replace(more, max_yaw_deg=15.0, max_pitch_deg=15.0), combine_live, "median"),
        Cue("V2 + faces >= 80 px", replace(more, min_face_px=80.0), combine_live, "median"),
        Cue("V2 + exposure gate", replace(more, min_brightness=40.0, max_brightness=225.0), combine_live, "median"),
        Cue("V2 + log-odds trimmed mean", more, combine_live, "logit_trimmed_mean"),
        Cue("V2 + flatness (a flat face at best review)", more, combine_live, "median", rule=MarginRule(flatness=True)),
        Cue("V2 + noisy face never rejected on its score", more, combine_live, "median", rule=MarginRule(noisy_above=NOISY_ABOVE)),
        Cue("V2 + flatness + noisy face never rejected", more, combine_live, "median", rule=PREVIOUS_RULE),
        Cue("+ noisy face's own review threshold", more, combine_live, "median", rule=BEFORE_DETAIL_RULE),
        Cue("+ detail over noise (less than every genuine: review)", more, combine_live, "median", rule=BEFORE_GATE_RULE),
        Cue("+ noisy_above refitted in each fold (no gate)", more, combine_live, "median", rule=SHIPPED_RULE),
        Cue("+ light gate: a noisy face asked for light [shipped]", more, combine_live, "median", rule=SHIPPED_RULE, gate=True),
        Cue("light gate, fixed noisy_above 2.19", more, combine_live, "median", rule=BEFORE_GATE_RULE, gate=True),
        Cue("V2 + flatness + noisy face always to review", more, combine_live, "median",
            rule=MarginRule(flatness=True, noisy_above=NOISY_ABOVE, noisy_never_passes=True)),
        Cue("shipped, but clean thresholds by clean attacks, no floor", more, combine_live, "median",
            rule=MarginRule(flatness=True, noisy_above=NOISY_ABOVE, noisy_review=True, clean_attacks="noise", noisy_floor=False)),
        Cue("mean of networks, shipped rule", more, live_mean, "median", rule=SHIPPED_RULE),
        Cue("V2, log-odds trimmed mean, shipped rule", more, combine_live, "logit_trimmed_mean", rule=SHIPPED_RULE),
    ]


def ablation_row(name: str, summary: dict) -> dict:
    m = summary["margins"]
    return {
        "cue": name,
        "attacks_accepted": summary["apcer"]["count"],
        "attacks": summary["apcer"]["of"],
        "genuine_rejected": summary["bpcer"]["count"],
        "genuine_review": summary["genuine_review"]["count"],
        "genuine": summary["genuine_review"]["of"],
        "genuine_asked_for_light": summary["genuine_asked_for_light"]["count"],
        "attacks_asked_for_light": summary["attacks_asked_for_light"]["count"],
        "lowest_genuine_clip": m["lowest_genuine_clip"],
        "highest_attack_clip": m["highest_attack_clip"],
        "separation_logit": m["separation_logit"],
        "worst_genuine_over_review_logit": m["genuine_above_review_threshold_logit"],
        "worst_attack_under_review_logit": m["attack_below_review_threshold_logit"],
    }


def render_ablation(rows: list[dict]) -> str:
    lines = [f"{'cue (leave-one-person-out)':<58} {'acc':>7} {'rej':>7} {'review':>7} {'g lgt':>5} {'a lgt':>5} {'low gen':>7} {'hi att':>7} {'sep':>6} {'g>rev':>6} {'a<rev':>6}"]
    for r in rows:
        lines.append(
            f"{r['cue'][:58]:<58} {r['attacks_accepted']:>3}/{r['attacks']:<3} {r['genuine_rejected']:>3}/{r['genuine']:<3} "
            f"{r['genuine_review']:>3}/{r['genuine']:<3} {r['genuine_asked_for_light']:>5} {r['attacks_asked_for_light']:>5} {_num(r['lowest_genuine_clip']):>7} {_num(r['highest_attack_clip']):>7} "
            f"{_num(r['separation_logit']):>6} {_num(r['worst_genuine_over_review_logit']):>6} {_num(r['worst_attack_under_review_logit']):>6}"
        )
    return "\n".join(lines)
