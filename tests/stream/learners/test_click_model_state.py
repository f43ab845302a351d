"""The click model's snapshot is its whole state: weights, AdaGrad's accumulated squared gradients and
the scaler's running statistics. A restored model must go on predicting and learning exactly as the
original; a snapshot of another kind of model must not be half-loaded."""

import math

import msgspec
import numpy as np
import pytest

from stream.learners.click_model import FEATURES, ClickModel
from stream.processor import PartitionProcessor

KINDS = [
    {"optimiser": "adagrad", "standardise": True},
    {"optimiser": "adagrad", "standardise": False},
    {"optimiser": "sgd", "standardise": True, "learning_rate": 0.002},
]


@pytest.fixture
def fresh(cfg):
    """A fresh click model of a given kind, over a (small) trained processor's learners."""
    proc = PartitionProcessor(cfg)

    def make(**kind) -> ClickModel:
        return ClickModel(proc.state, proc.popularity, proc.knn, proc.mf, proc.exposure, **kind)

    return make


def examples(seed: int, n: int) -> list[tuple[list[float], bool, float]]:
    """Feature lists on very different scales (as the real ones are), labels tied to them."""
    rng = np.random.default_rng(seed)
    scales = np.geomspace(0.01, 30.0, len(FEATURES))
    out = []
    for _ in range(n):
        x = [float(s * (1 + rng.normal())) for s in scales]
        ctr = x[FEATURES.index("ctr")]
        out.append((x, bool(rng.random() < 1 / (1 + math.exp(-ctr * 50 + 1))), float(rng.choice([1.0, 10.0]))))
    return out


def teach(model: ClickModel, batch) -> None:
    for x, y, w in batch:
        model.model.learn_one(x, y, w=w)


def snapshot(model: ClickModel) -> dict:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(model.to_state()))  # as a snapshot store keeps it


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_a_restored_model_predicts_and_learns_on_exactly_as_the_original(fresh, kind):
    original = fresh(**kind)
    teach(original, examples(1, 300))
    restored = fresh(**kind)
    restored.load_state(snapshot(original))
    later, probes = examples(2, 300), [x for x, _, _ in examples(3, 50)]
    assert [restored.predict_proba_one(x) for x in probes] == [original.predict_proba_one(x) for x in probes]
    teach(original, later)
    teach(restored, later)
    assert [restored.predict_proba_one(x) for x in probes] == [original.predict_proba_one(x) for x in probes]
    assert restored.to_state() == original.to_state()


def test_the_snapshot_carries_the_optimiser_and_scaler_state(fresh):
    model = fresh()
    teach(model, examples(1, 50))
    state = model.to_state()
    assert set(state["g2"]) == set(FEATURES) and all(v > 0 for v in state["g2"].values())
    assert state["scaler"]["counts"] == dict.fromkeys(FEATURES, 50)


def test_a_snapshot_of_another_kind_of_model_leaves_it_fresh(fresh):
    old = fresh(optimiser="sgd", standardise=False, learning_rate=0.002)
    teach(old, examples(1, 100))
    state = snapshot(old)
    for key in ("optimiser", "standardise"):  # as written before the model had a kind
        state.pop(key)
    fresh_sgd = fresh(optimiser="sgd", standardise=False)
    fresh_sgd.load_state(state)
    assert fresh_sgd.model.weights == old.model.weights  # what such a snapshot was
    model = fresh()
    model.load_state(state)
    assert model.to_state() == fresh().to_state()


def test_catalogue_logits_are_the_standardised_regression_on_a_click_log(cfg, small_stream):
    """On a log of clicks alone the catalogue score is the logit of ``predict_proba_one``, the
    vectorised standardisation matching the one-example transform."""
    proc = PartitionProcessor(cfg)
    for event in [e for e in small_stream if e.type == "click"][:3000]:
        proc.process(event)
    model = proc.click_model
    assert model.model.standardise and not proc.state.exposure.impressions
    scores = model.score_catalogue(3)
    candidates = np.flatnonzero(np.isfinite(scores))
    assert len(candidates) > 50
    for item in candidates[:20].tolist():
        p = model.click_probability(3, item)
        assert scores[item] == pytest.approx(math.log(p / (1 - p)), rel=1e-9, abs=1e-9)
