"""StandardisedLogistic is river's ``StandardScaler | LogisticRegression``, step for step, on lists:
the same probabilities after every example, and a state river's objects wrote loads unchanged."""

import random

import pytest
from river import compose, linear_model, optim, preprocessing

from stream.learners.logistic import StandardisedLogistic

NAMES = [f"f{i}" for i in range(8)]
KINDS = [("adagrad", True, 0.0), ("adagrad", False, 0.0), ("sgd", True, 0.001), ("adagrad", True, 0.01)]


def river_model(optimiser: str, standardise: bool, l2: float):
    opt = optim.AdaGrad(0.1) if optimiser == "adagrad" else optim.SGD(0.1)
    regression = linear_model.LogisticRegression(optimizer=opt, l2=l2)
    scaler = preprocessing.StandardScaler() if standardise else None
    return (compose.Pipeline(scaler, regression) if scaler else regression), regression, scaler


def stream(seed: int, n: int):
    """Features on scales from 1 to 64 (one constant at first), rare weighted positives, and a few
    saturated logits."""
    rng = random.Random(seed)
    for k in range(n):
        x = [rng.gauss(0, 1) * (i + 1) ** 2 + 3.0 * (i == 2) for i in range(len(NAMES))]
        if k < 10:
            x[-1] = 0.0
        y = rng.random() < (0.9 if x[0] > 1.5 else 0.05)
        yield x, y, (10.0 if not y and rng.random() < 0.3 else 1.0)


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_it_predicts_as_rivers_pipeline_after_every_example(kind):
    reference, _, _ = river_model(*kind)
    mine = StandardisedLogistic(NAMES, *kind[:1], 0.1, kind[2], kind[1])
    for x, y, w in stream(1, 3000):
        as_dict = dict(zip(NAMES, x))
        assert mine.predict_proba_one(x) == pytest.approx(reference.predict_proba_one(as_dict)[True], abs=1e-12)
        reference.learn_one(as_dict, y, w=w)
        mine.learn_one(x, y, w)


def test_a_state_rivers_objects_wrote_loads_and_goes_on_alike():
    """The click model's snapshots were written from river's objects; they must keep working."""
    reference, regression, scaler = river_model("adagrad", True, 0.0)
    for x, y, w in stream(2, 500):
        reference.learn_one(dict(zip(NAMES, x)), y, w=w)
    state = {
        "weights": dict(regression.weights),
        "intercept": regression.intercept,
        "n_iterations": regression.optimizer.n_iterations,
        "g2": dict(regression.optimizer.g2),
        "scaler": {"counts": dict(scaler.counts), "means": dict(scaler.means), "vars": dict(scaler.vars)},
    }
    mine = StandardisedLogistic(NAMES)
    mine.load_state(state)
    for x, y, w in stream(3, 500):
        as_dict = dict(zip(NAMES, x))
        assert mine.predict_proba_one(x) == pytest.approx(reference.predict_proba_one(as_dict)[True], abs=1e-12)
        reference.learn_one(as_dict, y, w=w)
        mine.learn_one(x, y, w)
    assert mine.to_state()["scaler"]["counts"] == dict(scaler.counts)
