"""The click model on an impression log: calibrated per impression (better than the constant
click-through rate), and a catalogue ranking that multiplies in how likely each item is to be seen."""

import math

import numpy as np
import pytest

from stream.config import load_config
from stream.processor import PartitionProcessor
from stream.sources.exposure import ExposureConfig, exposure_events


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


@pytest.fixture(scope="module")
def run():
    """A development-sized slice of the exposure world, every impression predicted before it is applied."""
    proc = PartitionProcessor(load_config(env={}))
    predicted: dict[tuple[str, str], list[float]] = {}  # (request, item) -> [model P, constant P, clicked]
    clicks = impressions = 0
    for e in exposure_events(ExposureConfig(seed=2, n_sessions=6000)):
        st = proc.state
        user, item = st.users.get(e.user_id), st.items.get(e.item_id)
        key = (e.context.request_id, e.item_id)
        if e.type == "impression" and user is not None and item is not None:
            features = proc.click_model.features(user, item, e.ts / 1000, e.context.position)
            p = proc.click_model.predict_proba_one(features)
            predicted[key] = [p, (clicks + 0.5) / (impressions + 1), 0.0]
        if e.type == "impression":
            impressions += 1
        elif e.type == "click" and key in predicted and not predicted[key][2]:
            predicted[key][2] = 1.0
            clicks += 1
        proc.process(e)
    return proc, np.array(list(predicted.values()))


def test_per_impression_log_loss_beats_the_constant_click_through_rate(run):
    _, rows = run
    model, constant = log_loss(rows[:, 0], rows[:, 2]), log_loss(rows[:, 1], rows[:, 2])
    assert len(rows) > 40_000
    assert model < constant - 0.01, (model, constant)
    assert abs(rows[:, 0].mean() - rows[:, 2].mean()) < 0.02  # calibrated in the mean too


def test_the_catalogue_score_is_log_seen_plus_log_click_probability(run):
    proc, _ = run
    model, st = proc.click_model, proc.state
    user = max(st.exposure.shown, key=lambda u: len(st.exposure.shown[u]))
    scores = model.score_catalogue(user)
    candidates = np.flatnonzero(np.isfinite(scores))
    assert len(candidates) > 50
    for item in candidates[:20].tolist():
        expected = model.exposure.seen_one(user, item) + math.log(model.click_probability(user, item))
        assert scores[item] == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert model.score_one(user, item) == pytest.approx(expected, rel=1e-9, abs=1e-9)
