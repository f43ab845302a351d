"""Slate figures on visits small enough to compute by hand, and intervals that resample users."""

import numpy as np
import pytest

from stream.evaluation.slate import LogLossVsConstant, SlateScore, visit_auc, visit_ndcg

D2, D3 = 1 / np.log2(3), 1 / np.log2(4)  # the discounts of the second and third places


def _slate(visits: list[tuple[int, list[float], list[bool]]], k: int = 10) -> SlateScore:
    score = SlateScore(k)
    for user, scores, clicked in visits:
        score.add_visit(user, np.array(scores), np.array(clicked))
    return score


def test_a_tie_between_a_clicked_and_an_unclicked_item_counts_half():
    # The clicked 0.5 loses to 0.9, ties 0.5, beats 0.1: (0 + 0.5 + 1) / 3.
    assert visit_auc(np.array([0.9, 0.5, 0.5, 0.1]), np.array([False, True, False, False])) == 0.5
    assert visit_auc(np.array([0.2, 0.2, 0.2]), np.array([True, False, True])) == 0.5


def test_gauc_weights_visits_by_impressions_and_skips_the_unjudged():
    score = _slate(
        [
            (1, [0.9, 0.5, 0.5, 0.1], [False, True, False, False]),  # AUC 1/2 on 4 impressions
            (2, [0.2, 0.8], [False, True]),  # AUC 1 on 2
            (1, [0.3, 0.7, 0.6], [False, False, False]),  # no click: skipped
            (3, [0.4, 0.1], [True, True]),
        ]
    )  # no non-click: skipped
    summary = score.summary(resamples=99)
    assert summary["gauc"]["estimate"] == round((4 * 0.5 + 2 * 1.0) / 6, 4)
    assert (summary["visits"], summary["gauc_visits"], summary["skipped"]) == (4, 2, 2)


def test_ndcg_discounts_the_clicked_places_against_the_ideal_for_that_many_clicks():
    scores, clicked = np.array([0.9, 0.8, 0.7, 0.6]), np.array([False, True, False, True])
    assert visit_ndcg(scores, clicked, k=10) == pytest.approx((D2 + 1 / np.log2(5)) / (1 + D2))
    assert visit_ndcg(scores, clicked, k=3) == pytest.approx(D2 / (1 + D2))  # the fourth place is past k
    assert visit_ndcg(scores, np.array([True, True, False, False]), k=2) == 1.0
    assert np.isnan(visit_ndcg(scores, np.zeros(4, bool), k=10))


def test_ndcg_gives_tied_items_the_mean_discount_of_their_places():
    assert visit_ndcg(np.array([0.5, 0.5, 0.1]), np.array([True, False, False]), k=10) == pytest.approx((1 + D2) / 2)
    assert visit_ndcg(np.array([0.1, 0.5, 0.5, 0.5]), np.array([False, False, False, True]), k=2) == pytest.approx(
        (1 + D2 + 0) / 3
    )


def test_ndcg_is_the_mean_over_visits_with_a_click():
    score = _slate(
        [
            (1, [0.9, 0.1, 0.5], [False, False, True]),  # second place: D2
            (2, [0.9, 0.1], [True, False]),  # first: 1
            (2, [0.9, 0.1], [False, False]),
        ],
        k=5,
    )  # no click: not averaged
    summary = score.summary(resamples=99)
    assert summary["ndcg@5"]["estimate"] == round((D2 + 1) / 2, 4) and summary["ndcg_visits"] == 2


def test_the_interval_resamples_users_not_visits():
    # Eight users, sixty visits each: the ranker orders half of them perfectly and half backwards.
    rng = np.random.default_rng(5)
    by_user, by_visit = SlateScore(), SlateScore()
    for visit in range(480):
        user, clicked = visit % 8, rng.permutation([True, False, False, False])
        scores = np.where(clicked, 1.0, 0.0) * (1 if user % 2 else -1) + rng.random(4) * 0.1
        by_user.add_visit(user, scores, clicked)
        by_visit.add_visit(visit, scores, clicked)
    wide, narrow = by_user.intervals(resamples=999)["gauc"], by_visit.intervals(resamples=999)["gauc"]
    assert wide.estimate == narrow.estimate and wide.users == 8
    assert wide.high - wide.low > 3 * (narrow.high - narrow.low)


def test_the_constant_predictor_knows_only_the_visits_before():
    loss = LogLossVsConstant(prior=0.5)
    loss.add_visit("a", np.array([0.8, 0.1, 0.1]), np.array([True, False, False]))  # constant 0.5
    assert loss.constant_ctr == (1 + 0.5) / (3 + 1)
    loss.add_visit("b", np.array([0.5, 0.5]), np.array([False, True]))  # constant 0.375
    summary = loss.summary(digits=6, resamples=99)
    constant = (3 * np.log(2) - np.log(0.625) - np.log(0.375)) / 5
    model = -(np.log(0.8) + 2 * np.log(0.9) + 2 * np.log(0.5)) / 5
    assert summary["constant_logloss"]["estimate"] == pytest.approx(constant, abs=1e-6)
    assert summary["model_logloss"]["estimate"] == pytest.approx(model, abs=1e-6)
    assert summary["model_minus_constant"]["estimate"] == pytest.approx(model - constant, abs=1e-6)
    assert (summary["impressions"], summary["visits"], summary["clicks"]) == (5, 2, 2)


def test_a_model_that_knows_which_items_get_clicked_beats_the_constant_ctr():
    rng = np.random.default_rng(6)
    loss = LogLossVsConstant()
    for visit in range(400):
        p = rng.choice([0.02, 0.4], size=5)
        loss.add_visit(visit % 40, p, rng.random(5) < p)
    lead = loss.intervals(resamples=999)["model_minus_constant"]
    assert lead.high < 0 and lead.users == 40


def test_a_certain_wrong_prediction_costs_a_finite_loss():
    loss = LogLossVsConstant()
    loss.add_visit(1, np.array([1.0]), np.array([False]))
    assert loss.intervals(resamples=99)["model_logloss"].estimate == pytest.approx(-np.log(1e-7))


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="scores, clicked must be one \\(n_shown,\\) array each"):
        SlateScore().add_visit(1, np.ones(3), np.ones(2, bool))
