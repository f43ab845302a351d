"""The exposure-biased impression log: exact propensities, re-clicks, drift, and an oracle at the ceiling."""

from collections import defaultdict
from itertools import islice, pairwise

import msgspec
import numpy as np
import pytest

from stream.events import EventCodec
from stream.sources import DATASETS, open_source
from stream.sources.exposure import (
    ExposureConfig,
    ExposureOracle,
    ExposureWorld,
    draw_visit,
    exposure_events,
    inclusion_probabilities,
    systematic_sample,
)
from stream.sources.synthetic import item_key, user_key

WORLD = ExposureConfig(n_users=500, n_items=400, n_sessions=3000, seed=3)


@pytest.fixture(scope="module")
def world():
    return ExposureWorld(WORLD)


@pytest.fixture(scope="module")
def stream(world):
    return list(exposure_events(WORLD, world))


@pytest.fixture(scope="module")
def oracle(world):
    return ExposureOracle(world=world)


@pytest.fixture(scope="module")
def visits(stream):
    """request_id -> the visit's impressions, in stream order."""
    by_request = defaultdict(list)
    for e in stream:
        if e.type == "impression":
            by_request[e.context.request_id].append(e)
    return by_request


def z_scores(counts: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """(n,) standardised deviations of observed counts, over the entries with a usable variance."""
    usable = variance > 5
    return (counts[usable] - expected[usable]) / np.sqrt(variance[usable])


def assert_within_sampling_error(counts: np.ndarray, expected: np.ndarray, variance: np.ndarray) -> None:
    z = z_scores(counts, expected, variance)
    assert len(z) > 20
    assert np.abs(z).max() < 5.0, np.abs(z).max()
    assert np.mean(z**2) < 1.5, np.mean(z**2)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])


def served_hit(scores: np.ndarray, target: int, excluded: set[int], k: int = 10) -> bool:
    """Is target in the top k of the items the served rule leaves (ties count against it)?"""
    if target >= len(scores) or target in excluded:
        return False
    allowed = np.ones(len(scores), dtype=bool)
    allowed[list(excluded)] = False
    s = scores[target]
    ahead = np.count_nonzero(allowed & (scores > s)) + np.count_nonzero(allowed[:target] & (scores[:target] == s))
    return ahead < k


def test_same_seed_same_bytes_in_time_order(stream):
    again = list(exposure_events(WORLD))
    assert [EventCodec.encode(e) for e in again] == [EventCodec.encode(e) for e in stream]
    other = list(islice(exposure_events(msgspec.structs.replace(WORLD, seed=4)), 200))
    assert other != stream[:200]
    assert all(a.ts <= b.ts for a, b in pairwise(stream))
    assert len({e.event_id for e in stream}) == len(stream)


def test_slates_are_k_distinct_items_with_the_oracles_propensities(visits, oracle):
    assert len(visits) == WORLD.n_sessions
    for shown in visits.values():
        assert len({e.item_id for e in shown}) == WORLD.slate_size
        assert sorted(e.context.position for e in shown) == list(range(WORLD.slate_size))
        assert len({(e.user_id, e.ts) for e in shown}) == 1
        logged = [e.context.propensity for e in shown]
        truth = oracle.exposure(shown[0].user_id, [e.item_id for e in shown], shown[0].ts)
        np.testing.assert_allclose(logged, truth, rtol=1e-12)


def test_inclusion_probabilities_are_capped_and_sum_to_k():
    pi = inclusion_probabilities(np.array([100.0, 50.0, 4.0, 2.0, 2.0, 0.0]), 3)
    np.testing.assert_allclose(pi, [1.0, 1.0, 0.5, 0.25, 0.25, 0.0])
    np.testing.assert_allclose(inclusion_probabilities(np.array([1.0, 1.0, 0.0]), 3), [1.0, 1.0, 0.0])


def test_a_fixed_settings_inclusion_frequencies_match_its_propensities(world):
    pi = world.inclusion(user=7, visit=10)
    rng = np.random.default_rng(0)
    n = 20_000
    counts = np.zeros_like(pi)
    for _ in range(n):
        slate = systematic_sample(rng, pi)
        assert len(set(slate.tolist())) == WORLD.slate_size
        counts[slate] += 1
    assert pi.max() > 0.5, "a popular item must be near-certain for this check to bite"
    assert_within_sampling_error(counts, n * pi, n * pi * (1 - pi))


def test_the_logs_item_frequencies_match_the_logged_propensities(stream, world):
    # Every visit, every item: shown with probability pi, so its impressions are a sum of Bernoullis.
    pi = np.array([world.inclusion(u, v) for v, u in enumerate(world.visit_user.tolist())])
    counts = np.bincount([int(e.item_id[1:]) for e in stream if e.type == "impression"], minlength=WORLD.n_items)
    assert_within_sampling_error(counts, pi.sum(axis=0), (pi * (1 - pi)).sum(axis=0))


def test_a_share_of_clicks_are_reclicks(stream):
    seen, clicks, reclicks = set(), 0, 0
    for e in stream:
        if e.type == "click":
            clicks += 1
            reclicks += (e.user_id, e.item_id) in seen
            seen.add((e.user_id, e.item_id))
    assert 0.05 <= reclicks / clicks <= 0.20, reclicks / clicks


def test_the_logging_policy_favours_popular_items_and_follows_the_trend(stream, world):
    top = WORLD.n_items // 10
    for after, bias in ((False, world.latent.item_bias_before), (True, world.latent.item_bias_after)):
        popular = {item_key(i) for i in np.argsort(-bias)[:top].tolist()}
        shown = [e.item_id for e in stream if e.type == "impression" and (e.ts >= world.drift_ts_ms) == after]
        assert sum(i in popular for i in shown) / len(shown) > 0.35


def test_click_probabilities_are_calibrated_reclicks_included(visits, stream, oracle, world):
    clicked = {(e.context.request_id, e.item_id) for e in stream if e.type == "click"}
    groups = defaultdict(lambda: [0.0, 0.0, 0.0])  # observed, expected, variance
    for shown in visits.values():
        user, ts = shown[0].user_id, shown[0].ts
        items = [e.item_id for e in shown]
        p = oracle.click_probability(user, items, ts, [e.context.position for e in shown])
        again = oracle.first_click_ts[int(user[1:]), [int(i[1:]) for i in items]] < ts
        for item, pk, ak in zip(items, p.tolist(), again.tolist()):
            g = groups[(ts >= world.drift_ts_ms, ak)]
            g[0] += (shown[0].context.request_id, item) in clicked
            g[1] += pk
            g[2] += pk * (1 - pk)
    assert len(groups) == 4 and all(v > 20 for _, _, v in groups.values())
    for observed, expected, variance in groups.values():
        assert abs(observed - expected) < 4 * np.sqrt(variance), (observed, expected)


def test_the_oracles_scores_are_the_generators_click_frequencies(world, oracle):
    visit = WORLD.n_sessions - 50
    user, ts = int(world.visit_user[visit]), int(world.visit_ts[visit])
    history = oracle.first_click_ts[user] < ts
    assert history.sum() >= 3, "a user with re-clickable items makes the check cover re-clicks"
    scores = oracle.next_click_scores(user_key(user), [item_key(i) for i in range(WORLD.n_items)], ts)
    rng = np.random.default_rng(1)
    n = 6000
    counts = np.zeros(WORLD.n_items)
    for _ in range(n):
        v = draw_visit(rng, world, visit, user, history)
        counts[v.items[v.clicked]] += 1
    finite = np.isfinite(scores)
    assert_within_sampling_error(counts[finite], n * scores[finite], n * scores[finite] * (1 - scores[finite]))
    frequent = finite & (n * np.where(finite, scores, 0) > 30)
    assert rank_correlation(counts[frequent], scores[frequent]) > 0.8


def test_the_oracle_beats_popularity_on_next_click_recall(stream, oracle):
    index: dict[str, int] = {}
    popularity = np.zeros(WORLD.n_items)
    clicked: dict[str, set[int]] = defaultdict(set)
    hits = np.zeros(2)
    n = 0
    for e in stream:
        if e.type == "click":
            n += 1
            known, target, mine = list(index), index.get(e.item_id, len(index)), clicked[e.user_id]
            hits += [
                served_hit(popularity[: len(known)], target, mine),
                served_hit(oracle.next_click_scores(e.user_id, known, e.ts), target, mine),
            ]
        index.setdefault(e.item_id, len(index))
        if e.type == "click":
            popularity[index[e.item_id]] += 1
            clicked[e.user_id].add(index[e.item_id])
    popularity_recall, oracle_recall = hits / n
    assert oracle_recall > popularity_recall + 0.1, (popularity_recall, oracle_recall)


def test_the_oracle_moves_at_the_drift_and_knows_what_exists(world, oracle):
    ids = [item_key(i) for i in range(WORLD.n_items)]
    drift, just_before = world.drift_ts_ms, int(world.visit_ts[world.drift_visit - 1])
    for user in world.visit_user[world.drift_visit : world.drift_visit + 5].tolist():
        earlier = oracle.next_click_scores(user_key(user), ids, just_before - 1)
        before = oracle.next_click_scores(user_key(user), ids, drift - 1)
        after = oracle.next_click_scores(user_key(user), ids, drift)
        both = np.isfinite(before)
        assert rank_correlation(earlier[both], before[both]) > 0.95
        assert rank_correlation(before[both], after[both]) < 0.6
    at_start = oracle.next_click_scores("u0", [*ids, "nope"], int(world.visit_ts[0]))
    arrived = world.latent.item_arrival == 0
    assert np.isneginf(at_start[:-1][~arrived]).all() and np.isfinite(at_start[:-1][arrived]).all()
    assert np.isneginf(at_start[-1])
    with pytest.raises(KeyError, match="not in this world"):
        oracle.next_click_scores("stranger", ids, drift)


def test_events_carry_content_values_and_newcomers(stream):
    assert all(e.item.category.startswith("cat") and e.item.tags[0] == e.item.category for e in stream)
    conversions = [e for e in stream if e.type == "conversion"]
    assert conversions and all(e.value > 0 and e.context.propensity for e in conversions)
    half = len(stream) // 2
    for key in ("user_id", "item_id"):
        first_seen = {}
        for n, e in enumerate(stream):
            first_seen.setdefault(getattr(e, key), n)
        assert any(n > half for n in first_seen.values()), f"some {key}s must first appear late"


def test_exposure_is_a_registered_data_set():
    assert "exposure" in DATASETS
    assert list(islice(open_source("exposure", exposure=WORLD), 50)) == list(islice(exposure_events(WORLD), 50))
