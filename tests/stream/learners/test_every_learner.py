"""The contract every online learner passes (river's shared-estimator-check style)."""

import numpy as np
import pytest

from stream.learners.base import rank_of, top_k
from stream.processor import LEARNERS, PartitionProcessor


def trained(cfg, stream, n=None) -> PartitionProcessor:
    proc = PartitionProcessor(cfg)
    for event in stream[:n]:
        proc.process(event)
    return proc


@pytest.fixture(scope="module")
def proc(small_stream):
    from stream.config import load_config

    return trained(load_config(env={}), small_stream)


@pytest.mark.parametrize("name", LEARNERS)
def test_recommends_k_distinct_unseen_items(proc, name):
    learner = proc.rankers[name]
    for user in range(0, len(proc.state.users), 37):
        recs = learner.recommend(user, 10)
        assert len(recs) == len(set(recs.tolist())) <= 10
        assert not set(recs.tolist()) & set(proc.state.seen_items(user))
        assert all(0 <= i < proc.state.n_items for i in recs.tolist())


@pytest.mark.parametrize("name", LEARNERS)
def test_catalogue_scores_have_one_entry_per_item(proc, name):
    scores = proc.rankers[name].score_catalogue(0)
    assert scores.shape == (proc.state.n_items,)
    assert not np.isnan(scores).any()


@pytest.mark.parametrize("name", LEARNERS)
def test_state_round_trip_keeps_scores_identical(proc, cfg, name):
    back = PartitionProcessor.from_state(cfg, proc.to_state())
    for user in (0, 5, 17):
        assert np.array_equal(back.rankers[name].score_catalogue(user), proc.rankers[name].score_catalogue(user))


@pytest.mark.parametrize("name", LEARNERS)
def test_new_user_gets_recommendations(proc, name):
    from stream.events import Event

    x = proc.state.resolve(
        Event(event_id="new", ts=proc.state.max_ts_ms, user_id="brand-new", item_id="i1", type="impression")
    )
    assert len(proc.rankers[name].recommend(x.user, 5)) == 5


def test_rank_of_is_the_place_top_k_gives_the_item_under_the_same_exclusions():
    rng = np.random.default_rng(0)
    excluded_items = 0
    for _ in range(500):
        n = int(rng.integers(1, 30))
        scores = rng.integers(0, 4, n).astype(float)
        exclude = rng.choice(n, int(rng.integers(0, n)), replace=False).tolist()
        item = int(rng.integers(0, n))
        order = top_k(scores, n, exclude).tolist()
        assert rank_of(scores, item, exclude) == (order.index(item) if item in order else None)
        excluded_items += item in exclude
    assert excluded_items > 100  # the served rule's misses were exercised, not only the ranks


def test_an_excluded_item_is_a_miss_not_ranked_as_if_it_were_allowed():
    """A re-click of a seen item: recommend() never returns it, so the test may not rank it."""
    scores = np.array([3.0, 2.0, 1.0])
    assert rank_of(scores, 0, exclude=[0]) is None
    assert rank_of(scores, 2, exclude=[0]) == 1


def test_rank_of_unrankable_item_is_none():
    assert rank_of(np.array([1.0, -np.inf]), 1, []) is None
    assert rank_of(np.array([1.0, 2.0]), 2, []) is None  # beyond the catalogue


@pytest.mark.parametrize("name", LEARNERS)
def test_pointwise_scores_agree_with_catalogue_scores(proc, name):
    """RecBole's split: score_one (pointwise) and score_catalogue (full) rank alike."""
    learner = proc.rankers[name]
    for user in (0, 5, 17):
        catalogue = learner.score_catalogue(user)
        ranked = np.flatnonzero(np.isfinite(catalogue))[:50]
        pointwise = np.array([learner.score_one(user, int(i)) for i in ranked])
        if name == "click_model" and not proc.state.exposure.impressions:  # logits of P(click)
            pointwise = np.log(pointwise / (1 - pointwise))
        np.testing.assert_allclose(pointwise, catalogue[ranked], rtol=1e-6, atol=1e-9)


def test_mf_scores_serving_candidates_and_the_catalogue_as_b_plus_q_p(proc):
    mf = proc.mf
    unknown = len(mf.Q) + 3  # an item the factorisation has no row for yet
    items = np.array([5, 0, unknown, 17], dtype=np.intp)
    for user in (0, 17):
        expected = [mf.b[i] + mf.Q[i] @ mf.P[user] for i in (5, 0)] + [0.0, mf.b[17] + mf.Q[17] @ mf.P[user]]
        assert np.allclose(mf.score_items(user, items), expected)
        assert np.allclose(mf.score_catalogue(user)[[5, 0, 17]], np.array(expected)[[0, 1, 3]])
    assert np.allclose(mf.score_items(None, items), [mf.b[5], mf.b[0], 0.0, mf.b[17]])


def test_popularity_scores_serving_candidates_by_their_clicks_so_far(proc):
    pop = proc.popularity
    clicked = [i for i in range(len(pop.clicks)) if pop.clicks[i] > 0][:3]
    unknown = len(pop.clicks) + 2  # an item nobody has clicked yet
    items = np.array([*clicked, unknown], dtype=np.intp)
    assert pop.score_items(None, items).tolist() == [pop.clicks[i] for i in clicked] + [0.0]
    assert pop.score_items(0, items).tolist() == [*pop.score_catalogue(0)[clicked].tolist(), 0.0]


@pytest.mark.parametrize("name", LEARNERS)
def test_memoised_catalogue_scores_follow_the_state(cfg, small_stream, name):
    """Scoring a user's catalogue after every event (as the tests and candidates do) gives what a
    learner that never scored before gives: no memo outlives a change of state."""
    later = [e.user_id for e in small_stream[1500:1700] if e.user_id in {e.user_id for e in small_stream[:1500]}]
    user_id = max(set(later), key=later.count)  # the most active: their own events change the state
    asked, fresh = trained(cfg, small_stream, 1500), trained(cfg, small_stream, 1500)
    user = asked.state.users.get(user_id)
    assert user is not None
    for event in small_stream[1500:1700]:
        for proc in (asked, fresh):
            proc.process(event)
        asked.rankers[name].score_catalogue(user)
    fresh.rankers[name].score_catalogue(user + 1)  # a memo of another user, as a first ask finds none
    np.testing.assert_array_equal(asked.rankers[name].score_catalogue(user), fresh.rankers[name].score_catalogue(user))
