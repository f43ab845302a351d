"""The synthetic world's oracle: its exposure approximation against the generator's own slate
draws, and its place as the ceiling of a replay."""

import numpy as np
import pytest

from stream.config import Config
from stream.sources.synthetic import SyntheticConfig, _draw_slate, item_key, user_key
from stream.sources.synthetic_oracle import SyntheticOracle, successive_inclusion
from streamrec.quality.bench import evaluate
from streamrec.quality.datasets import synthetic


def test_successive_inclusion_matches_gumbel_top_k_draws():
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 1.5, 60)
    weights = np.exp(logits) / np.exp(logits).sum()
    draws = 20_000
    counts = np.zeros(len(logits))
    for _ in range(draws):
        counts[np.argpartition(-(logits + rng.gumbel(size=len(logits))), 5)[:5]] += 1
    pi = successive_inclusion(weights, 5)
    assert pi.sum() == pytest.approx(5.0)
    assert np.abs(pi - counts / draws).max() < 0.03


def test_successive_inclusion_of_as_many_items_as_there_are_is_certain():
    assert successive_inclusion(np.array([0.5, 0.0, 0.2]), 5).tolist() == [1.0, 0.0, 1.0]
    assert successive_inclusion(np.zeros(3), 2).tolist() == [0.0, 0.0, 0.0]


def test_items_not_arrived_or_unknown_are_never_scored():
    cfg = SyntheticConfig(seed=3, n_users=100, n_items=80, n_sessions=400)
    oracle = SyntheticOracle(cfg)
    late = int(np.argmax(oracle.world.item_arrival))
    ts = int(oracle.session_ts[0])
    scores = oracle.next_click_scores(user_key(0), [item_key(late), "not-an-item", item_key(0)], ts)
    assert scores[0] == -np.inf and scores[1] == -np.inf
    arrived = np.flatnonzero(oracle.world.item_arrival == 0)
    assert np.isfinite(oracle.next_click_scores(user_key(0), [item_key(i) for i in arrived], ts)).all()


def test_exposure_matches_the_generators_own_slates():
    cfg = SyntheticConfig(seed=3, n_users=100, n_items=80, n_sessions=400)
    oracle, rng = SyntheticOracle(cfg), np.random.default_rng(1)
    session, user = 250, 7
    available = (oracle.world.item_arrival <= session) & (oracle.first_click_ts[user] >= oracle.session_ts[session])
    draws = 5_000
    shown = np.zeros(cfg.n_items)
    for _ in range(draws):
        shown[_draw_slate(rng, oracle.world, user, available, session, cfg.slate_size)] += 1
    assert np.abs(oracle.exposure(user, session) - shown / draws).max() < 0.03


@pytest.fixture(scope="module")
def replayed():
    return evaluate(synthetic(1, quick=True), Config(), serving=False)


def test_the_oracle_is_the_ceiling_of_the_replay(replayed):
    rankers = replayed["prequential"]["rankers"]
    oracle = rankers.pop("oracle")["recall@10"]
    # Quick world, seed 1: oracle 0.75 against item_knn 0.43, the best learner.
    assert oracle >= max(f["recall@10"] for f in rankers.values()) + 0.15


def test_the_oracle_orders_each_slate_better_than_any_learner(replayed):
    gauc = {name: s["gauc"]["estimate"] for name, s in replayed["slate"].items()}
    assert gauc["oracle"] > max(v for name, v in gauc.items() if name != "oracle") + 0.05
