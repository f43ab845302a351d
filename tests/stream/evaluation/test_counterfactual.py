"""SNIPS against a simulated logging policy whose propensities and click probabilities are known."""

from dataclasses import dataclass

import numpy as np
import pytest

from stream.evaluation.counterfactual import SnipsEstimate

ITEMS = 12
# The logging policy shows item i in a visit with probability PROPENSITY[i], independently of the
# rest; a shown item is clicked with probability CTR[i], and a click converts with CONVERSION.
# The items it shows least are clicked most: an estimate that ignores propensities is far off.
PROPENSITY = np.linspace(0.1, 0.9, ITEMS)
CTR = np.linspace(0.3, 0.02, ITEMS)
CONVERSION = 0.3
PRICE = np.linspace(5.0, 50.0, ITEMS)
TARGET = np.isin(np.arange(ITEMS), [0, 5, 11])  # the ranker's top 3, the same in every visit
TRUE_CTR = CTR[TARGET].mean()  # what the ranker's top 3 would be clicked per impression


@dataclass
class Log:
    user: np.ndarray  # (visits,)
    shown: np.ndarray  # (visits, items) bool
    clicked: np.ndarray  # (visits, items) bool
    converted: np.ndarray  # (visits, items) bool

    def feed(
        self,
        estimate: SnipsEstimate,
        in_top_k: np.ndarray,
        propensity: np.ndarray,
        users: np.ndarray | None = None,
        valued: bool = True,
    ) -> SnipsEstimate:
        for v, s in enumerate(self.shown):
            estimate.add_visit(
                (self.user if users is None else users)[v],
                in_top_k[s],
                propensity[s],
                self.clicked[v, s],
                self.converted[v, s],
                np.where(self.converted[v, s], PRICE[s], 0.0) if valued else None,
            )
        return estimate


def _logged(visits: int, users: int, seed: int, propensity: np.ndarray = PROPENSITY, ctr: np.ndarray = CTR) -> Log:
    rng = np.random.default_rng(seed)
    shown = rng.random((visits, ITEMS)) < propensity
    clicked = shown & (rng.random((visits, ITEMS)) < ctr)
    return Log(rng.integers(0, users, visits), shown, clicked, clicked & (rng.random((visits, ITEMS)) < CONVERSION))


@pytest.fixture(scope="module")
def log() -> Log:
    return _logged(visits=4000, users=400, seed=1)


def test_snips_recovers_the_target_policys_rates(log):
    summary = log.feed(SnipsEstimate(), TARGET, PROPENSITY).summary(digits=6, resamples=999)
    click, conversion, value = summary["click"]["ranker"], summary["conversion"]["ranker"], summary["value"]["ranker"]
    assert click["low"] < TRUE_CTR < click["high"] and click["estimate"] == pytest.approx(TRUE_CTR, abs=0.02)
    true_conversion = CONVERSION * TRUE_CTR
    assert conversion["low"] < true_conversion < conversion["high"]
    true_value = CONVERSION * (CTR * PRICE)[TARGET].mean()
    assert value["low"] < true_value < value["high"]


def test_the_logging_rate_is_the_mean_click_per_impression_and_the_lead_is_paired(log):
    summary = log.feed(SnipsEstimate(), TARGET, PROPENSITY).summary(digits=6, resamples=999)
    logging = (CTR * PROPENSITY).sum() / PROPENSITY.sum()
    assert summary["click"]["logging"]["estimate"] == round(log.clicked.sum() / log.shown.sum(), 6)
    assert summary["click"]["logging"]["low"] < logging < summary["click"]["logging"]["high"]
    lead, ranker = summary["click"]["lead"], summary["click"]["ranker"]
    assert lead["estimate"] == pytest.approx(ranker["estimate"] - summary["click"]["logging"]["estimate"], abs=2e-6)
    assert lead["low"] < TRUE_CTR - logging < lead["high"] and lead["low"] > 0


def test_ignoring_the_propensities_is_caught(log):
    # Without dividing by the propensity the often-shown, rarely-clicked item dominates.
    click = log.feed(SnipsEstimate(), TARGET, np.ones(ITEMS)).intervals(resamples=999)["ranker"]
    assert click.high < TRUE_CTR - 0.04


def test_a_ranker_that_shows_what_was_shown_earns_the_logging_rate():
    log = _logged(visits=500, users=50, seed=2, propensity=np.full(ITEMS, 0.4))
    intervals = log.feed(SnipsEstimate(), np.ones(ITEMS, bool), np.full(ITEMS, 0.4)).intervals(resamples=999)
    assert intervals["ranker"].estimate == pytest.approx(intervals["logging"].estimate, abs=1e-12)
    assert (intervals["lead"].low, intervals["lead"].high) == pytest.approx((0, 0), abs=1e-12)


def test_the_interval_covers_the_truth_in_most_replications():
    covered = [
        log.feed(SnipsEstimate(), TARGET, PROPENSITY, valued=False).intervals(resamples=499)["ranker"]
        for log in (_logged(visits=500, users=100, seed=100 + r) for r in range(40))
    ]
    hits = sum(iv.low < TRUE_CTR < iv.high for iv in covered)
    assert hits >= 34, f"a 95 % interval covered the truth in {hits} of 40 replications"


def test_the_interval_resamples_users_not_visits():
    # Ten users, each clicking at a rate of their own: their visits are far from independent draws.
    rng = np.random.default_rng(3)
    user_ctr = rng.choice([0.02, 0.5], size=10)
    user = np.repeat(np.arange(10), 100)
    log = _logged(visits=1000, users=10, seed=4, ctr=1.0)
    log.user = user
    log.clicked &= rng.random(log.shown.shape) < user_ctr[user, None]
    wide = log.feed(SnipsEstimate(), TARGET, PROPENSITY).intervals(resamples=999)["ranker"]
    narrow = log.feed(SnipsEstimate(), TARGET, PROPENSITY, users=np.arange(1000)).intervals(resamples=999)["ranker"]
    assert wide.estimate == pytest.approx(narrow.estimate) and wide.users == 10
    assert wide.high - wide.low > 2 * (narrow.high - narrow.low)


def test_effective_sample_size_and_overlap_by_hand():
    estimate = SnipsEstimate()
    estimate.add_visit("a", np.array([True, False, True]), np.array([0.5, 0.5, 0.25]), np.array([1, 0, 0]), np.zeros(3))
    estimate.add_visit("b", np.array([False, False]), np.array([0.5, 0.5]), np.array([0, 1]), np.zeros(2))
    summary = estimate.summary(resamples=99)
    assert summary["effective_sample_size"] == round((2 + 4) ** 2 / (2**2 + 4**2), 1)
    assert summary["overlap_share"] == 0.5
    assert (summary["visits"], summary["impressions"], summary["users"]) == (2, 5, 2)
    assert summary["click"]["ranker"]["estimate"] == round(2 / 6, 4) and summary["click"]["logging"]["estimate"] == 0.4
    assert "value" not in summary


def test_a_zero_propensity_is_refused():
    with pytest.raises(ValueError, match="propensities must lie in"):
        SnipsEstimate().add_visit(1, np.ones(2, bool), np.array([0.5, 0.0]), np.zeros(2), np.zeros(2))
