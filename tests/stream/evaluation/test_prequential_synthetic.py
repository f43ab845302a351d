"""Prequential checks against the synthetic ground truth: every learner beats popularity and the
learners recover from the drift (the detectors that see it: tests/stream/test_drift.py)."""

import numpy as np
import pytest

from stream.config import load_config
from stream.processor import PartitionProcessor
from stream.sources.synthetic import SyntheticConfig, SyntheticWorld, synthetic_events

PERSONALISED = ("item_knn", "isgd_mf", "click_model")


@pytest.fixture(scope="module")
def run():
    world_cfg = SyntheticConfig(n_users=800, n_items=400, n_sessions=12_000, seed=5)
    world = SyntheticWorld(world_cfg)
    events = list(synthetic_events(world_cfg, world))
    drift_at = next(n for n, e in enumerate(events) if e.ts >= world.drift_ts_ms)
    proc = PartitionProcessor(load_config(overrides=["worker.prequential_every=1"], env={}))
    for event in events:
        proc.process(event)
    return proc, drift_at, len(events)


def windows(proc, name):
    """(stream position at window end, recall@10 over that window of 1000 scored clicks)."""
    return np.array(proc.scores[name].series)


@pytest.mark.parametrize("name", PERSONALISED)
def test_each_learner_beats_popularity(run, name):
    proc, _, _ = run
    assert proc.scores[name].recall > proc.scores["popularity"].recall * 1.5
    assert proc.scores[name].ndcg_mean > proc.scores["popularity"].ndcg_mean * 1.5
    if name in proc.pairwise:  # the every-click pairwise test (the click model's is its log-loss)
        assert proc.pairwise[name].value > proc.pairwise["popularity"].value


@pytest.mark.parametrize("name", ["isgd_mf", "click_model"])
def test_learners_recover_after_the_drift(run, name):
    proc, drift_at, _ = run
    series = windows(proc, name)
    post = series[series[:, 0] > drift_at]
    dip = post[:2, 1].min()  # the windows right after the drift
    recovered = post[-3:, 1].mean()
    assert recovered > dip * 1.2
    popularity_after = windows(proc, "popularity")[-3:, 1].mean()
    assert recovered > popularity_after * 1.5
