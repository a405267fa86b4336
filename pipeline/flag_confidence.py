"""A flag's confidence and its level, from one function (``flag_confidence``).

``confidence`` is meant to be read as a probability: among flags of confidence p,
about p are real digs. ``level`` is a label of that number and nothing else:
``high`` when ``confidence >= HIGH_CONFIDENCE_MIN``, ``low`` otherwise. Both come
from ``flag_confidence`` and are written as they are to ``flags.geojson``; the flag
CSV of ``minewatch flags export`` and the report read them from there, so they agree
everywhere.

How the number is made
    The evidence score (``evidence_score``, 0.35..1) adds up what the pixels say: a
    single look 0.35; a later clear look that agrees (confirmation) +0.25; more
    agreeing looks up to +0.25; persistence above the minimum up to +0.15. The
    score is then put on a probability scale by ``CALIBRATION``: for each kind of
    evidence, the share of real digs among the flags of that kind on generated
    scenes used for tuning (training seeds 5000-5003, never the evaluation seeds),
    smoothed towards a coin toss ((real + 1) / (flags + 2)) so that a handful of
    flags cannot claim certainty. A flag is real when it overlaps a true dig of the
    scene (``scripts/evaluate.py``). The README's reliability table checks it on
    fresh seeds.

Two kinds of evidence are held back whatever their share real measured:
    * an unconfirmed flag (one look) stays below ``HIGH_CONFIDENCE_MIN``: one clear
      look can be a mis-masked cloud edge, haze or a ploughed field, and a county
      team should not be sent out on it; it is ``low`` until a second look agrees;
    * a flag whose pixels have no seasonal history (no look in the same season a
      year before), or whose change hid behind a long cloudy gap (abrupt or gradual
      cannot be told), is capped at ``UNKNOWN_HISTORY_MAX``: the harvest and
      die-back tests that make the other flags trustworthy could not be applied.
"""

from __future__ import annotations

from dataclasses import dataclass

# A flag is ``high`` when at least this share of flags like it proved real: seven in
# ten, clearly better than a coin toss, so that a county team sent out on ``high``
# flags finds a dig most times.
HIGH_CONFIDENCE_MIN = 0.7

# Confidence of a flag seen on a single look stays below the ``high`` line.
UNCONFIRMED_MAX = 0.6

# Confidence of a flag whose seasonal history is missing or whose onset hid behind a
# long cloudy gap (see the module docstring).
UNKNOWN_HISTORY_MAX = 0.75

# Share real per kind of evidence, measured on the tuning seeds 5000-5003 (45 flags,
# all confirmed), smoothed as (real + 1) / (flags + 2): (evidence score from,
# confidence). A flag takes the confidence of the highest row its score reaches.
# * below 0.6, a single look: no such flag was left at the end of a tuning run, so
#   a coin toss (and ``UNCONFIRMED_MAX`` keeps it below ``high`` in any case);
# * 0.6-0.85, confirmed but few agreeing looks: 0 of 1 real, too few to stand alone,
#   so the share of all confirmed flags (41 of 45, 0.89), rounded down: 0.85;
# * 0.85 and more, confirmed by several looks and persistent: 34 of 37, 0.90.
# Flags without seasonal history or behind a long cloudy gap were 7 of 7 real on the
# tuning seeds; ``UNKNOWN_HISTORY_MAX`` caps them anyway (module docstring).
CALIBRATION: tuple[tuple[float, float], ...] = (
    (0.0, 0.5),
    (0.6, 0.85),
    (0.85, 0.9),
)


@dataclass(frozen=True)
class FlagEvidence:
    """What a flag's pixels say, summarised over the flag."""

    confirmed: bool
    """A later clear look agreed with the first one."""
    n_bare: float
    """Median number of clear looks that showed the pixels bare since the onset."""
    persistence: float
    """Share of the clear looks since the onset that showed bare ground."""
    history: bool
    """Most pixels had a look in the same season a year before (a harvest can be told)."""
    abrupt_known: bool = True
    """No long cloudy gap before the onset: the change was seen to be abrupt."""


def evidence_score(evidence: FlagEvidence) -> float:
    """0.35..1: how much the pixels say (see the module docstring); not yet a probability."""
    value = 0.35 + 0.25 * evidence.confirmed
    value += 0.25 * min(1.0, max(0.0, (evidence.n_bare - 2) / 4))
    value += 0.15 * min(1.0, max(0.0, (evidence.persistence - 0.7) / 0.3))
    return float(value)


def flag_confidence(evidence: FlagEvidence) -> tuple[float, str]:
    """The flag's ``confidence`` (0..1, calibrated) and its ``level`` (``low``/``high``)."""
    score = evidence_score(evidence)
    confidence = max(p for start, p in CALIBRATION if score >= start)
    if not evidence.confirmed:
        confidence = min(confidence, UNCONFIRMED_MAX)
    if not evidence.history or not evidence.abrupt_known:
        confidence = min(confidence, UNKNOWN_HISTORY_MAX)
    confidence = round(float(confidence), 2)
    return confidence, confidence_level(confidence)


def confidence_level(confidence: float) -> str:
    """``high`` when ``confidence >= HIGH_CONFIDENCE_MIN``, else ``low``: the only place."""
    return "high" if confidence >= HIGH_CONFIDENCE_MIN else "low"
