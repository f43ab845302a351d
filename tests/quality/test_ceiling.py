"""The learnable ceiling: a posterior over users' tastes that learns from their visits lands between
popularity and the oracle, and gains on the prior alone."""

import pytest

from stream.sources.exposure import ExposureConfig
from streamrec.quality.ceiling import TastePosterior, ceiling

SMALL = ExposureConfig(seed=5, n_users=300, n_items=200, n_sessions=3000)


@pytest.fixture(scope="module")
def result():
    return ceiling(SMALL, samples=300)


@pytest.fixture(scope="module")
def ablated():
    return ceiling(SMALL, samples=300, ablation=True)


def recall(result, name):
    return result["rankers"][name]["recall@10"]


def test_the_posterior_lies_between_popularity_and_the_oracle(result):
    assert recall(result, "popularity") + 0.03 < recall(result, "posterior") < recall(result, "oracle")
    assert 0.0 < result["gap_closed"] < 1.0


def test_learning_from_visits_is_what_lifts_it(result, monkeypatch):
    monkeypatch.setattr(TastePosterior, "learn", lambda self, v: None)  # the prior alone, never updated
    prior_only = ceiling(SMALL, samples=300)
    assert recall(prior_only, "posterior") + 0.03 < recall(result, "posterior")


def test_the_ablation_keeps_the_posterior_and_each_evidence_lifts_the_prior(result, ablated):
    assert ablated["rankers"]["posterior"] == result["rankers"]["posterior"]  # the same draws, the same ranks
    prior = recall(ablated, "posterior, no user evidence")
    for evidence in ("posterior, clicks only", "posterior, slates only"):
        assert prior + 0.02 < recall(ablated, evidence) <= recall(ablated, "posterior") + 0.01
    assert set(ablated["gaps_closed"]) == {
        "posterior",
        "posterior, clicks only",
        "posterior, slates only",
        "posterior, no user evidence",
        "posterior, items known by category",
    }


def test_knowing_items_only_by_their_category_costs_the_posterior(result, ablated):
    coarse = recall(ablated, "posterior, items known by category")
    assert recall(ablated, "popularity") < coarse < recall(result, "posterior") - 0.01
