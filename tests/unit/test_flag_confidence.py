"""One function gives a flag its confidence and its level, and they always agree."""

from __future__ import annotations

import itertools

from pipeline.flag_confidence import (
    HIGH_CONFIDENCE_MIN,
    UNCONFIRMED_MAX,
    UNKNOWN_HISTORY_MAX,
    FlagEvidence,
    confidence_level,
    flag_confidence,
)


def test_flag_confidence__level_is_high_exactly_from_the_threshold_up():
    for confirmed, n_bare, persistence, history, abrupt in itertools.product(
        (False, True), (1, 2, 3, 4, 6, 9), (0.7, 0.8, 0.9, 1.0), (False, True), (False, True)
    ):
        evidence = FlagEvidence(confirmed, n_bare, persistence, history, abrupt)
        confidence, level = flag_confidence(evidence)
        assert 0 <= confidence <= 1
        assert level == ("high" if confidence >= HIGH_CONFIDENCE_MIN else "low"), evidence
        assert level == confidence_level(confidence)
        if not confirmed:
            assert confidence <= UNCONFIRMED_MAX and level == "low"
        if not history or not abrupt:
            assert confidence <= UNKNOWN_HISTORY_MAX


def test_flag_confidence__confirmed_without_history_is_not_high_at_a_coin_toss():
    # The case: a confirmed flag on pixels without seasonal history was "high"
    # with the number 0.50. Now the number says what the label says.
    confidence, level = flag_confidence(FlagEvidence(True, 8, 1.0, history=False))
    assert confidence == UNKNOWN_HISTORY_MAX
    assert level == confidence_level(confidence)
    assert confidence_level(0.5) == "low"


def test_flag_confidence__more_evidence_never_lowers_the_number():
    weak = flag_confidence(FlagEvidence(True, 2, 0.7, True))[0]
    strong = flag_confidence(FlagEvidence(True, 8, 1.0, True))[0]
    single = flag_confidence(FlagEvidence(False, 1, 1.0, True))[0]
    assert single <= weak <= strong
    assert flag_confidence(FlagEvidence(True, 8, 1.0, True))[1] == "high"
