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


def test_stacked_signals_are_standardised_row_by_row():
    rows = np.array([[1.0, 2.0, 4.0, 1.0], [5.0, 5.0, 5.0, 5.0], [0.5, -1.0, 0.0, 2.0]])
    z = standardise(rows)
    for row, got in zip(rows, z, strict=True):
        expected = (row - row.mean()) / row.std() if row.std() else np.zeros(4)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert standardise(np.zeros((3, 0))).shape == (3, 0)  # a request without candidates


SMALL = {
    "item_knn": np.array([1.0, 2.0, 4.0, 1.0]),
    "isgd_mf": np.array([0.5, -1.0, 0.0, 2.0]),
    "popularity": np.array([3.0, 3.0, 0.0, 6.0]),
}
SMALL_WEIGHTS = {"item_knn": 0.5, "isgd_mf": -1.0, "popularity": 2.0}


def log_likelihood(weights: np.ndarray, z: np.ndarray, clicked: int) -> float:
    s = z @ weights
    return float(s[clicked] - np.log(np.exp(s).sum()))


def test_one_step_is_the_documented_softmax_step_computed_by_hand():
    names = list(SMALL_WEIGHTS)
    z = np.column_stack([(SMALL[n] - SMALL[n].mean()) / SMALL[n].std() for n in names])
    w = np.array(list(SMALL_WEIGHTS.values()))
    p = np.exp(z @ w) / np.exp(z @ w).sum()
    expected = w + 0.1 * (z[2] - p @ z)
    blend = OnlineBlend({**SMALL_WEIGHTS, "student": 0.7}, learning_rate=0.1)
    blend.learn_one(SMALL, clicked=2)
    np.testing.assert_allclose([blend.weights[n] for n in names], expected, rtol=1e-12, atol=0)
    assert blend.weights["student"] == 0.7 and blend.clicks_learned == 1


def test_the_step_is_the_learning_rate_times_the_gradient_of_the_clicks_log_likelihood():
    """Central differences of log softmax(z . w)[clicked]: the step ascends the listwise loss."""
    names = list(SMALL_WEIGHTS)
    z = np.column_stack([standardise(SMALL[n]) for n in names])
    w = np.array(list(SMALL_WEIGHTS.values()))
    h = 1e-6
    gradient = [(log_likelihood(w + h * e, z, 1) - log_likelihood(w - h * e, z, 1)) / (2 * h) for e in np.eye(3)]
    blend = OnlineBlend(SMALL_WEIGHTS, learning_rate=0.01)
    blend.learn_one(SMALL, clicked=1)
    step = np.array([blend.weights[n] for n in names]) - w
    np.testing.assert_allclose(step / 0.01, gradient, rtol=0, atol=1e-7)
    assert log_likelihood(w + step, z, 1) > log_likelihood(w, z, 1)


def test_a_signal_ranking_the_click_first_gains_weight_and_one_ranking_it_last_loses():
    rng = np.random.default_rng(3)
    for _ in range(200):
        m = int(rng.integers(2, 30))
        knn, popularity = rng.normal(size=m), rng.normal(size=m)
        clicked = int(np.argmax(knn))
        popularity[clicked] = popularity.min() - rng.uniform(0.1, 1.0)
        start = {"item_knn": rng.normal(), "isgd_mf": rng.normal(), "popularity": rng.normal()}
        blend = OnlineBlend(start, learning_rate=0.1)
        blend.learn_one({"item_knn": knn, "isgd_mf": rng.normal(size=m), "popularity": popularity}, clicked)
        assert blend.weights["item_knn"] > start["item_knn"]
        assert blend.weights["popularity"] < start["popularity"]


def test_a_signals_scale_and_offset_change_neither_scores_nor_steps():
    """Signals on incomparable scales (logits, similarities, counts) weigh by their z-scores."""
    rescaled = {**SMALL, "popularity": 1000.0 * SMALL["popularity"] - 7.0, "isgd_mf": 0.01 * SMALL["isgd_mf"] + 3.0}
    a, b = OnlineBlend(SMALL_WEIGHTS, learning_rate=0.1), OnlineBlend(SMALL_WEIGHTS, learning_rate=0.1)
    np.testing.assert_allclose(a.score(SMALL), b.score(rescaled), rtol=1e-12, atol=1e-12)
    a.learn_one(SMALL, 3)
    b.learn_one(rescaled, 3)
    np.testing.assert_allclose(list(a.weights.values()), list(b.weights.values()), rtol=1e-12, atol=1e-12)


def test_a_constant_signal_contributes_nothing_and_keeps_its_weight():
    blend = OnlineBlend(SMALL_WEIGHTS, learning_rate=0.1)
    flat = {**SMALL, "popularity": np.full(4, 5.0)}
    without = {n: SMALL[n] for n in ("item_knn", "isgd_mf")}
    np.testing.assert_allclose(blend.score(flat), blend.score(without), rtol=0, atol=1e-15)
    blend.learn_one(flat, 0)
    assert blend.weights["popularity"] == 2.0 and blend.weights["item_knn"] != 0.5


def test_learning_moves_weight_to_the_signal_the_clicks_follow_and_ranks_better():
    """A Gumbel-max click on knn with scale 0.5 is a softmax over 2 x knn: the likelihood the blend
    climbs peaks near item_knn 2, the others 0 (seeds 0-9: item_knn 1.70-2.37, |isgd_mf| <= 0.46,
    |popularity| <= 0.22)."""
    rng = np.random.default_rng(0)
    blend = OnlineBlend({"item_knn": 1.0, "isgd_mf": 1.0, "popularity": 1.0}, learning_rate=0.05)
    before = hit_rate(blend, np.random.default_rng(1))
    for _ in range(3000):
        signals, clicked = request(rng)
        blend.learn_one(signals, clicked)
    w = blend.weights
    assert 1.5 < w["item_knn"] < 2.5 and abs(w["isgd_mf"]) < 0.6 and abs(w["popularity"]) < 0.4
    assert hit_rate(blend, np.random.default_rng(1)) > before + 0.1
    assert blend.clicks_learned == 3000


def test_where_it_starts_does_not_decide_where_it_ends():
    """The listwise log-likelihood is concave in the weights: on the same clicks, runs from
    different starts contract onto one path (3.0 apart at the start, 1e-9 after 1,000 clicks)."""
    ends = []
    for start in (0.0, 1.0, 3.0):
        blend = OnlineBlend(dict.fromkeys(("item_knn", "isgd_mf", "popularity"), start), learning_rate=0.05)
        rng = np.random.default_rng(0)
        for _ in range(1000):
            blend.learn_one(*request(rng))
        ends.append(np.array([blend.weights[n] for n in ("item_knn", "isgd_mf", "popularity")]))
    for end in ends[1:]:
        np.testing.assert_allclose(end, ends[0], rtol=0, atol=1e-6)


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
