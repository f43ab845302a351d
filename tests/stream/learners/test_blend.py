"""The online blend: learned listwise from clicks, test-then-learn; a starting point, not a tuning."""

import numpy as np
import pytest

from stream.learners.blend import SIGNALS, OnlineBlend, standardise


def request(rng: np.random.Generator, m: int = 50) -> tuple[dict[str, np.ndarray], int]:
    """One request's candidate signals and the clicked position: the click follows item_knn, the
    popularity signal is noise and the factorisation is item_knn seen through heavy noise."""
    knn = rng.normal(size=m)
    signals = {"item_knn": knn, "isgd_mf": knn + rng.normal(scale=3.0, size=m), "popularity": rng.normal(size=m)}
    clicked = int(np.argmax(knn + rng.gumbel(scale=0.5, size=m)))
    return signals, clicked


def hit_rate(blend: OnlineBlend, rng: np.random.Generator, n: int = 400, k: int = 5) -> float:
    hits = 0
    for _ in range(n):
        signals, clicked = request(rng)
        scores = blend.score(signals)
        hits += int((scores > scores[clicked]).sum() < k)
    return hits / n


def test_a_score_is_the_weighted_sum_of_z_scores():
    blend = OnlineBlend({"item_knn": 2.0, "popularity": 0.5}, learning_rate=0.0)
    signals = {"item_knn": np.array([1.0, 2.0, 4.0]), "popularity": np.array([3.0, 3.0, 0.0])}
    expected = 2.0 * standardise(signals["item_knn"]) + 0.5 * standardise(signals["popularity"])
    np.testing.assert_allclose(blend.score(signals), expected)


def test_learning_moves_weight_to_the_signal_the_clicks_follow_and_ranks_better():
    rng = np.random.default_rng(0)
    blend = OnlineBlend({"item_knn": 1.0, "isgd_mf": 1.0, "popularity": 1.0}, learning_rate=0.05)
    before = hit_rate(blend, np.random.default_rng(1))
    for _ in range(3000):
        signals, clicked = request(rng)
        blend.learn_one(signals, clicked)
    w = blend.weights
    assert w["item_knn"] > 1.5 and w["item_knn"] > 3 * abs(w["popularity"]) and w["item_knn"] > 2 * w["isgd_mf"]
    assert hit_rate(blend, np.random.default_rng(1)) > before + 0.1
    assert blend.clicks_learned == 3000


def test_where_it_starts_does_not_decide_where_it_ends():
    ends = []
    for start in (0.0, 1.0, 3.0):
        blend = OnlineBlend(dict.fromkeys(("item_knn", "isgd_mf", "popularity"), start), learning_rate=0.05)
        rng = np.random.default_rng(0)
        for _ in range(4000):
            blend.learn_one(*request(rng))
        ends.append(np.array([blend.weights[n] for n in ("item_knn", "isgd_mf", "popularity")]))
    for end in ends[1:]:
        np.testing.assert_allclose(end, ends[0], atol=0.35)


def test_a_click_outside_the_candidates_or_a_zero_rate_teaches_nothing():
    rng = np.random.default_rng(0)
    signals, clicked = request(rng)
    learning = OnlineBlend({"item_knn": 1.0}, learning_rate=0.1)
    learning.learn_one(signals, None)
    fixed = OnlineBlend({"item_knn": 1.0}, learning_rate=0.0)
    fixed.learn_one(signals, clicked)
    start = OnlineBlend({"item_knn": 1.0}, learning_rate=0.0).weights
    assert learning.weights == fixed.weights == start
    assert learning.clicks_learned == fixed.clicks_learned == 0


def test_a_signal_missing_from_a_request_keeps_its_weight():
    """No model loaded: the request has no student score, and the student's weight waits for one."""
    blend = OnlineBlend({"student": 0.7, "item_knn": 1.0, "isgd_mf": 1.0, "popularity": 1.0}, learning_rate=0.1)
    blend.learn_one(*request(np.random.default_rng(0)))
    assert blend.weights["student"] == 0.7 and blend.weights["item_knn"] != 1.0


def test_signals_too_large_to_standardise_skip_the_step():
    blend = OnlineBlend({"item_knn": 1.0, "popularity": 1.0}, learning_rate=0.1)
    with np.errstate(all="ignore"):
        blend.learn_one({"item_knn": np.array([1e308, 1e307, 1e308]), "popularity": np.array([1.0, 2.0, 3.0])}, 0)
    assert all(np.isfinite(w) for w in blend.weights.values())


def test_weights_are_replaced_whole_so_a_reader_keeps_a_consistent_set():
    blend = OnlineBlend({"item_knn": 1.0}, learning_rate=0.1)
    held = blend.weights
    blend.learn_one(*request(np.random.default_rng(0)))
    assert held == {name: (1.0 if name == "item_knn" else 0.0) for name in SIGNALS}
    assert blend.weights is not held


def test_its_state_round_trips():
    blend = OnlineBlend({"item_knn": 1.0, "popularity": 0.3}, learning_rate=0.1)
    for _ in range(20):
        blend.learn_one(*request(np.random.default_rng(_)))
    restored = OnlineBlend({}, learning_rate=0.1)
    restored.load_state(blend.to_state())
    assert restored.weights == blend.weights and restored.clicks_learned == 20


def test_an_unknown_signal_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown blend signals \\['clicks'\\]"):
        OnlineBlend({"clicks": 1.0}, learning_rate=0.1)


def test_a_share_of_clicks_is_learned_from_chosen_by_event_id_alone():
    blend = OnlineBlend({"item_knn": 1.0}, learning_rate=0.1, sample_rate=0.25)
    ids = [f"event-{n}" for n in range(20_000)]
    chosen = [i for i in ids if blend.samples(i)]
    assert 0.23 < len(chosen) / len(ids) < 0.27
    again = OnlineBlend({"popularity": 2.0}, learning_rate=0.5, sample_rate=0.25)  # another partition, a replay
    assert [i for i in ids if again.samples(i)] == chosen
    assert all(OnlineBlend({}, learning_rate=0.1, sample_rate=1.0).samples(i) for i in ids[:1000])
    assert not any(OnlineBlend({}, learning_rate=0.0, sample_rate=1.0).samples(i) for i in ids[:1000])  # fixed
