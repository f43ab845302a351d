"""StandardisedLogistic is river's ``StandardScaler | LogisticRegression``, step for step, on lists:
the same log-odds to the last bit after every example, and a state river's objects wrote loads
unchanged."""

import random

import pytest
from river import compose, linear_model, optim, preprocessing

from stream.learners.logistic import StandardisedLogistic

NAMES = [f"f{i}" for i in range(8)]
# (optimiser, standardise, l2, learning rate); the last two saturate (|margin| > 18) many times.
KINDS = [
    ("adagrad", True, 0.0, 0.1),
    ("adagrad", False, 0.0, 0.1),
    ("sgd", True, 0.001, 0.1),
    ("adagrad", True, 0.01, 0.1),
    ("adagrad", False, 0.0, 2.0),
    ("sgd", False, 0.0, 0.5),
]


def river_model(optimiser: str, standardise: bool, l2: float, lr: float):
    opt = optim.AdaGrad(lr) if optimiser == "adagrad" else optim.SGD(lr)
    regression = linear_model.LogisticRegression(optimizer=opt, l2=l2)
    scaler = preprocessing.StandardScaler() if standardise else None
    return (compose.Pipeline(scaler, regression) if scaler else regression), regression, scaler


def stream(seed: int, n: int):
    """Features on scales from 1 to 49 (the last constant throughout, so it never varies), rare
    positives, and importance-weighted negatives."""
    rng = random.Random(seed)
    for _ in range(n):
        x = [rng.gauss(0, 1) * (i + 1) ** 2 + 3.0 * (i == 2) for i in range(len(NAMES) - 1)] + [2.0]
        y = rng.random() < (0.9 if x[0] > 1.5 else 0.05)
        yield x, y, (10.0 if not y and rng.random() < 0.3 else 1.0)


def river_logit(reference, regression, x: list[float]) -> float:
    scaled = reference.transform_one(dict(zip(NAMES, x))) if reference is not regression else dict(zip(NAMES, x))
    return regression._raw_dot_one(scaled)


@pytest.mark.parametrize("kind", KINDS, ids=str)
def test_it_computes_as_rivers_pipeline_after_every_example(kind):
    optimiser, standardise, l2, lr = kind
    reference, regression, _ = river_model(*kind)
    mine = StandardisedLogistic(NAMES, optimiser, lr, l2, standardise)
    saturated = 0
    for x, y, w in stream(1, 3000):
        assert mine.logit(x) == river_logit(reference, regression, x)
        saturated += abs(mine.logit(x)) > 18
        reference.learn_one(dict(zip(NAMES, x)), y, w=w)
        mine.learn_one(x, y, w)
    assert mine.weights == [regression.weights.get(name, 0.0) for name in NAMES]
    assert mine.intercept == regression.intercept
    if lr > 1:
        assert saturated > 20  # the saturated branches of the log-loss gradient were taken


def test_a_state_rivers_objects_wrote_loads_and_goes_on_alike():
    """The click model's snapshots were written from river's objects; they must keep working."""
    reference, regression, scaler = river_model("adagrad", True, 0.0, 0.1)
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
        assert mine.logit(x) == river_logit(reference, regression, x)
        reference.learn_one(dict(zip(NAMES, x)), y, w=w)
        mine.learn_one(x, y, w)
    assert mine.to_state()["scaler"]["counts"] == dict(scaler.counts)


def test_a_standardised_model_refuses_a_state_without_scaler_statistics():
    with pytest.raises(ValueError, match="scaler"):
        StandardisedLogistic(NAMES).load_state({"weights": {}, "intercept": 0.0, "n_iterations": 0})
