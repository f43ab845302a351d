"""The worker's drift detectors: a worker with its default config sees the synthetic world's drift,
and the monitors' state survives a snapshot exactly (or restarts when it measured something else)."""

import msgspec
import numpy as np
import pytest

from stream.config import load_config
from stream.drift import DriftMonitor
from stream.processor import PartitionProcessor
from stream.sources.synthetic import SyntheticConfig, SyntheticWorld, synthetic_events

MONITORED = ("item_knn", "isgd_mf", "click_model")


@pytest.fixture(scope="module")
def worker_run():
    """The default world at a seed no default was chosen on, through one partition as a worker runs it."""
    world_cfg = SyntheticConfig(seed=4)
    world = SyntheticWorld(world_cfg)
    events = list(synthetic_events(world_cfg, world))
    cfg = load_config(env={})
    signals: list[tuple[str, int]] = []
    proc = PartitionProcessor(cfg, on_drift=lambda learner, position, event: signals.append((learner, position)))
    clicks = []
    drift_at = None
    for event in events:
        if drift_at is None and event.ts >= world.drift_ts_ms:
            drift_at = proc.counts["applied"]
        if event.type == "click":
            clicks.append(proc.counts["applied"])
        proc.process(event)
    return cfg, proc, signals, np.array(clicks), drift_at


def test_the_worker_samples_its_ranking_test(worker_run):
    cfg, proc, *_ = worker_run
    assert cfg.worker.prequential_every == 20  # the sampling that hid the drift from the old monitors
    assert proc.scores["isgd_mf"].n < proc.counts["click"] / 19


@pytest.mark.parametrize("name", MONITORED)
def test_each_learners_detector_fires_soon_after_the_drift(worker_run, name):
    _, proc, signals, clicks, drift_at = worker_run
    detections = proc.drift[name].detections
    after = [d for d in detections if d >= drift_at]
    assert after, f"{name}: detections {detections}, drift at event {drift_at}"
    delay_clicks = np.searchsorted(clicks, after[0]) - np.searchsorted(clicks, drift_at)
    assert delay_clicks <= 2000, f"{name}: first detection {delay_clicks} clicks after the drift"
    # Each detection raised the signal the worker publishes for training to act on.
    assert [p for learner, p in signals if learner == name] == detections


def test_false_alarms_before_the_drift_are_counted_and_rare(worker_run):
    _, proc, _, _, drift_at = worker_run
    false_alarms = {name: sum(d < drift_at for d in proc.drift[name].detections) for name in MONITORED}
    assert sum(false_alarms.values()) <= 1, false_alarms


def test_a_monitor_round_trips_exactly_mid_evidence():
    rng = np.random.default_rng(0)
    losses = np.concatenate([rng.random(400) < 0.2, rng.random(40) < 0.6]).astype(float).tolist()
    whole, first = DriftMonitor(), DriftMonitor()
    for n, x in enumerate(losses):
        whole.update(x, n)
    for n, x in enumerate(losses[:420]):
        first.update(x, n)
    resumed = DriftMonitor()
    resumed.load_state(msgspec.msgpack.decode(msgspec.msgpack.encode(first.to_state())))
    for n, x in enumerate(losses[420:], start=420):
        resumed.update(x, n)
    assert resumed.to_state() == whole.to_state()


def test_a_monitor_that_watched_another_loss_restarts_and_keeps_its_history():
    old = DriftMonitor()
    for n in range(300):
        old.update(1.0, n)  # the old monitors' 1 - hit: a mean near 1 that would mask a pairwise loss
    state = old.to_state()
    del state["signal"]
    state["detections"] = [7]
    restored = DriftMonitor()
    restored.load_state(state)
    assert restored.detections == [7]
    assert restored.to_state() == {**DriftMonitor().to_state(), "detections": [7]}
