"""Candidate generation: what each source proposes, and what is never proposed."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from serving.candidates import CandidateGenerator, ItemLists, _top
from stream.events import Event, ItemAttributes
from tests.conftest import with_section


def generate(cfg, processor, user_id, exclude=()):
    user = processor.state.users.get(user_id)
    return CandidateGenerator(cfg.serving).generate(processor.state, processor.knn, processor.mf, user, exclude)


def a_user_with_history(processor):
    return max(processor.state.seen, key=lambda u: len(processor.state.seen[u]))


def test_seen_items_and_exclusions_are_never_candidates(cfg, processor):
    user = a_user_with_history(processor)
    user_id = processor.state.users.keys[user]
    first = generate(cfg, processor, user_id)
    banned, asked_away = processor.state.items.keys[first.items[0]], processor.state.items.keys[first.items[1]]
    c = generate(with_section(cfg, "serving", exclude_items=[banned]), processor, user_id, exclude=(asked_away,))
    ids = {processor.state.items.keys[i] for i in c.items}
    assert not ids & {processor.state.items.keys[i] for i in processor.state.seen_items(user)}
    assert banned not in ids and asked_away not in ids
    assert set(c.generated) == {"covis", "mf", "trending", "content", "shown"}


def test_with_seen_items_allowed_a_users_own_items_can_be_candidates(cfg, small_stream):
    """serving.exclude_seen = false (music, groceries): the served rule keeps seen items."""
    from stream.processor import PartitionProcessor

    processor = PartitionProcessor(with_section(cfg, "serving", exclude_seen=False))
    for event in small_stream:
        processor.process(event)
    user = a_user_with_history(processor)
    c = generate(cfg, processor, processor.state.users.keys[user])
    assert set(c.items.tolist()) & set(processor.state.seen_items(user))


def test_a_user_never_seen_gets_the_trending_items(cfg, processor):
    c = generate(cfg, processor, "someone-new")
    assert set(c.generated) == {"trending"} and len(c.items) == c.generated["trending"] > 0
    assert not c.knn.any()


def test_co_visitation_scores_are_item_knns_scores(cfg, processor):
    user = a_user_with_history(processor)
    c = generate(cfg, processor, processor.state.users.keys[user])
    catalogue = processor.knn.score_catalogue(user) - processor.popularity.score_catalogue(user) * 1e-9
    np.testing.assert_allclose(c.knn, catalogue[c.items], atol=1e-12)
    assert c.knn.max() > 0


def test_a_new_item_reaches_users_of_its_category_before_anyone_clicks_it(cfg, processor):
    user = a_user_with_history(processor)
    favourite = max(processor.state.user_categories[user], key=processor.state.user_categories[user].get)
    category = processor.state.categories.keys[favourite]
    processor.process(
        Event(
            event_id="new-item-shown",
            ts=processor.state.max_ts_ms,
            user_id="someone-else",
            item_id="brand-new",
            type="impression",
            item=ItemAttributes(category=category),
        )
    )
    c = generate(cfg, processor, processor.state.users.keys[user])
    assert processor.state.items.get("brand-new") in c.items.tolist()


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, st.integers(1, 5000), elements=st.floats(-10, 10) | st.sampled_from([0.0, 1.0])),
    st.integers(1, 60),
)
def test_top_returns_exactly_the_n_largest(scores, n):
    got = _top(scores, n)
    assert len(got) == min(n, len(scores)) and len(set(got.tolist())) == len(got)
    if n < len(scores):  # everything chosen is at least as large as everything left out
        rest = np.setdiff1d(np.arange(len(scores)), got)
        assert scores[got].min() >= scores[rest].max()


def test_the_users_own_items_do_not_use_up_the_co_visitation_budget(cfg, processor):
    user = a_user_with_history(processor)
    only_covis = with_section(
        cfg,
        "serving",
        covis_candidates=5,
        mf_candidates=0,
        trending_candidates=0,
        content_candidates=0,
        shown_candidates=0,
    )
    c = generate(only_covis, processor, processor.state.users.keys[user])
    unseen_neighbours = set(processor.knn.neighbour_scores(user)[0].tolist()) - set(processor.state.seen_items(user))
    assert len(unseen_neighbours) > 5 and len(c.items) == 5
    assert set(c.items.tolist()) <= unseen_neighbours


def test_item_lists_built_from_a_partitions_first_events_do_not_outlive_its_growth(cfg, small_stream):
    """Within one refresh interval (an hour here) the lists are reused, unless the state has since
    doubled its updates: lists built from the first events (nothing clicked yet, so nothing
    trending) would otherwise serve while thousands of events arrive."""
    from stream.processor import PartitionProcessor

    cfg = with_section(cfg, "serving", item_lists_refresh_s=3600.0)
    processor = PartitionProcessor(cfg)
    generator = CandidateGenerator(cfg.serving)
    first_click = next(n for n, e in enumerate(small_stream) if e.type == "click")
    for event in small_stream[:first_click]:
        processor.process(event)
    early = generator.item_lists(processor.state, processor.mf)
    assert len(early.trending) == 0  # built before any click
    processor.process(small_stream[first_click])
    assert generator.item_lists(processor.state, processor.mf).version < processor.state.version  # reused
    for event in small_stream[first_click + 1 :]:
        processor.process(event)
    lists = generator.item_lists(processor.state, processor.mf)
    assert lists.version == processor.state.version and len(lists.trending) > 0


def test_the_shown_source_proposes_what_the_user_was_shown_most(cfg):
    from stream.processor import PartitionProcessor
    from stream.sources.exposure import ExposureConfig, exposure_events

    proc = PartitionProcessor(cfg)
    for e in exposure_events(ExposureConfig(seed=3, n_users=100, n_items=150, n_sessions=800)):
        proc.process(e)
    st = proc.state
    user = max(st.exposure.shown, key=lambda u: len(st.exposure.shown[u]))
    only_shown = with_section(
        cfg,
        "serving",
        covis_candidates=0,
        mf_candidates=0,
        trending_candidates=0,
        content_candidates=0,
        shown_candidates=5,
    )
    c = generate(only_shown, proc, st.users.keys[user])
    shown = {i: n for i, n in st.exposure.shown[user].items() if i not in st.excluded_items(user)}
    assert len(shown) > 5 and len(c.items) == 5
    assert min(shown[i] for i in c.items.tolist()) >= sorted(shown.values(), reverse=True)[4]


def test_the_mf_source_proposes_the_users_nearest_clicked_items_only(cfg):
    """An item nobody clicked has no positive evidence in the factorisation: however its row scores
    (here: planted to score highest), it is not an ``mf`` candidate; among clicked, unseen items the
    source takes the n best by b_i + p_u . q_i."""
    from stream.processor import PartitionProcessor
    from stream.sources.exposure import ExposureConfig, exposure_events

    proc = PartitionProcessor(cfg)
    for e in exposure_events(ExposureConfig(seed=3, n_users=100, n_items=150, n_sessions=800)):
        proc.process(e)
    st, mf = proc.state, proc.mf
    clicks = st.item_counters["click"].get_many(np.arange(st.n_items), st.max_ts_ms / 1000.0)[-1]
    never_clicked = np.flatnonzero(clicks[: len(mf.Q)] == 0)
    user = a_user_with_history(proc)
    assert len(never_clicked) and user < len(mf.P)
    mf.Q[never_clicked[0]] = 10 * mf.P[user]
    mf.b[never_clicked[0]] = 10.0
    n = 10
    only_mf = with_section(
        cfg,
        "serving",
        mf_candidates=n,
        covis_candidates=0,
        trending_candidates=0,
        content_candidates=0,
        shown_candidates=0,
    )
    proposed = generate(only_mf, proc, st.users.keys[user]).items
    allowed = np.setdiff1d(np.flatnonzero(clicks[: len(mf.Q)] > 0), st.excluded_items(user))
    exact = mf.b[allowed] + mf.Q[allowed] @ mf.P[user]
    assert never_clicked[0] not in proposed and len(proposed) == n
    assert set(proposed.tolist()) <= set(allowed.tolist())
    nth_best = np.sort(exact)[-n]
    assert (mf.b[proposed] + mf.Q[proposed] @ mf.P[user] >= nth_best - 1e-5).all()


def test_the_mf_search_maps_exclusions_onto_the_clicked_items_and_never_returns_one():
    lists = ItemLists()
    lists.mf_items = np.array([2, 5, 7, 9])
    lists.item_factors = np.array([[1.0], [4.0], [3.0], [2.0]], dtype=np.float32)
    lists.item_bias = np.zeros(4, dtype=np.float32)
    user = np.array([1.0])
    assert set(lists.nearest_by_mf(user, np.array([], dtype=np.int64), 2).tolist()) == {5, 7}
    # 5 is excluded, 3 and 400 are not clicked items; asking for more than remain returns what remains
    nearest = lists.nearest_by_mf(user, np.array([3, 5, 400]), 10)
    assert sorted(nearest.tolist()) == [2, 7, 9]


def test_the_mf_search_covers_the_most_clicked_items_when_more_have_clicks_than_it_may_search(cfg, processor):
    st, mf = processor.state, processor.mf
    clicks = st.item_counters["click"].get_many(np.arange(st.n_items), st.max_ts_ms / 1000.0)[-1][: len(mf.Q)]
    clicked = np.flatnonzero(clicks > 0)
    cap = len(clicked) // 3
    assert cap >= 5 and len(np.unique(clicks[clicked])) > 2  # a cap that cuts, on counts that differ
    lists = CandidateGenerator(with_section(cfg, "serving", mf_search_items=cap).serving).item_lists(st, mf)
    assert len(lists.mf_items) == cap and (np.diff(lists.mf_items) > 0).all()
    assert clicks[lists.mf_items].min() >= clicks[np.setdiff1d(clicked, lists.mf_items)].max()
    np.testing.assert_array_equal(lists.item_factors, mf.Q[lists.mf_items].astype(np.float32))
    uncapped = CandidateGenerator(cfg.serving).item_lists(st, mf)
    np.testing.assert_array_equal(uncapped.mf_items, clicked)
