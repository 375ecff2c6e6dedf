"""The candidate list is data-driven; unknown strategies are one sentence."""
import pytest

from tfaug.enrich import candidates
from tfaug.errors import TfaugError


def test_default_candidates_controls_first_then_generative():
    out = candidates.default_candidates(imbalanced=False)
    assert out[:2] == ["baseline", "classic"] and out[-2:] == ["cdcgan", "cdcgan+classic"]
    assert not set(out) & set(candidates.LONG_TAIL)


def test_long_tail_controls_join_by_name_when_known_and_imbalanced(monkeypatch):
    assert candidates.default_candidates(imbalanced=True)[2:5] == ["reweight", "logit-adjust", "balanced"]
    assert "reweight" not in candidates.default_candidates(imbalanced=False)
    real_known = candidates.known  # a block the strategy code does not know is left out
    monkeypatch.setattr(candidates, "known", lambda t: t != "logit-adjust" and real_known(t))
    assert candidates.default_candidates(imbalanced=True)[2:4] == ["reweight", "balanced"]


def test_given_list_adds_classic_and_rejects_unknown_blocks():
    assert candidates.candidate_list(["cdcgan", "baseline"], False) == ["classic", "cdcgan", "baseline"]
    with pytest.raises(TfaugError, match="unknown strategy block 'magic'"):
        candidates.candidate_list(["magic"], False)
    with pytest.raises(TfaugError, match="needs a teacher classifier"):
        candidates.candidate_list(["cdcgan+soft"], False)
    assert candidates.candidate_list(["cdcgan+weight:0.5+sepbn"], False) == ["classic", "cdcgan+weight:0.5+sepbn"]
