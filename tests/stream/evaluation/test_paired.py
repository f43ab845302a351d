"""A lead of one ranker over another counts only when its interval, resampling users, is above zero."""

import numpy as np
import pytest

from stream.evaluation.paired import paired_lead


def _clicks(users: int, per_user: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(users), per_user), rng.random(users * per_user) < 0.2


def test_identical_rankers_have_no_lead():
    users, hits = _clicks(100, 20, np.random.default_rng(1))
    lead = paired_lead(hits, hits, users)
    assert (lead.lead, lead.low, lead.high) == (0.0, 0.0, 0.0)
    assert not lead.significant and lead.clicks == 2000 and lead.users == 100


def test_a_ranker_that_also_hits_a_tenth_of_the_misses_leads_significantly():
    rng = np.random.default_rng(2)
    users, b = _clicks(200, 20, rng)
    a = b | (rng.random(len(b)) < 0.1)
    lead = paired_lead(a, b, users)
    assert lead.lead == pytest.approx((a.sum() - b.sum()) / len(b))
    assert lead.significant and lead.low < lead.lead < lead.high


def test_a_lead_that_comes_from_one_user_is_not_significant():
    # The same number of extra hits, but all from one heavy user: clicks are not independent draws.
    rng = np.random.default_rng(3)
    users, b = _clicks(50, 40, rng)
    a = b.copy()
    heavy = users == 7
    a[heavy] = True
    clustered = paired_lead(a, b, users)
    as_if_independent = paired_lead(a, b, np.arange(len(users)))
    assert clustered.lead == as_if_independent.lead > 0
    assert as_if_independent.significant and not clustered.significant


def test_the_interval_is_reproducible_for_a_seed():
    rng = np.random.default_rng(4)
    users, b = _clicks(80, 10, rng)
    a = b ^ (rng.random(len(b)) < 0.05)
    assert paired_lead(a, b, users, seed=5) == paired_lead(a, b, users, seed=5)


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="one \\(clicks,\\) array each"):
        paired_lead(np.ones(3, bool), np.ones(4, bool), np.arange(3))


def _pinned_clicks() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    users = rng.integers(0, 40, 600)
    b = rng.random(600) < 0.3
    return b | (rng.random(600) < 0.08), b, users


@pytest.mark.parametrize(
    ("kwargs", "low", "high"),
    [
        ({}, 0.03809444970040997, 0.06976744186046512),
        ({"confidence": 0.9, "resamples": 999, "seed": 3}, 0.03951890034364261, 0.06711524910764824),
    ],
)
def test_the_numbers_are_pinned(kwargs, low, high):
    # Recorded before the bootstrap moved into cluster_interval: the move must not change a figure.
    a, b, users = _pinned_clicks()
    lead = paired_lead(a, b, users, **kwargs)
    assert (lead.lead, lead.low, lead.high, lead.clicks, lead.users) == (0.05333333333333334, low, high, 600, 40)
    assert lead.confidence == kwargs.get("confidence", 0.95)


def test_one_user_has_no_interval():
    lead = paired_lead(np.ones(5, bool), np.zeros(5, bool), np.zeros(5))
    assert lead.lead == 1.0 and np.isnan(lead.low) and np.isnan(lead.high) and lead.users == 1
