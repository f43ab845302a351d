"""The demo's account of what the model changed, from the serving metrics it reads."""

from __future__ import annotations

from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from serving.metrics import ServingMetrics
from stream.config import Config
from stream.learners.blend import OnlineBlend
from streamrec.demo_summary import ModelEffect, percentiles


def _stack(weights: list[float]) -> SimpleNamespace:
    registry = CollectorRegistry()
    owned = {
        p: SimpleNamespace(processor=SimpleNamespace(blend=SimpleNamespace(weights={"student": w})))
        for p, w in enumerate(weights)
    }
    return SimpleNamespace(
        registry=registry,
        metrics=ServingMetrics(registry),
        scorer=SimpleNamespace(version=None),
        cfg=Config(),
        worker=SimpleNamespace(owned=owned),
    )


def _computed(stack: SimpleNamespace, n: int, fallback: str | None = None) -> None:
    for _ in range(n):
        stack.metrics.scoring_seconds.observe(0.001)
        if fallback:
            stack.metrics.fallbacks.labels(fallback).inc()


def test_the_share_the_model_scored_counts_from_its_first_version():
    stack = _stack([0.5, 0.7])
    effect = ModelEffect(stack)
    _computed(stack, 10, "no_model")
    assert effect.observe(sent=100) is None and effect.share_scored() is None  # nothing served yet
    stack.scorer.version = 1
    assert effect.observe(sent=500) == 1
    assert effect.observe(sent=600) is None  # the same version again is not news
    _computed(stack, 27)
    _computed(stack, 3, "no_candidates")  # served without the model
    stack.scorer.version = 2
    assert effect.observe(sent=900) == 2
    effect.keep_weights()
    summary = effect.summary()
    assert summary["versions_served"] == [1, 2] and summary["events_sent_when_first_served"] == 500
    assert summary["share_of_recommendations_scored"] == 27 / 40
    assert summary["share_scored_since_first_served"] == 27 / 30
    assert summary["blend_weight_learned"] == {"mean": 0.6, "per_partition": [0.5, 0.7]}
    assert summary["blend_weight_configured"] == Config().serving.blend.student


def test_percentiles_are_quoted_the_same_way_everywhere():
    assert percentiles([]) == {"p50": None, "p99": None, "n": 0}
    assert percentiles([float(x) for x in range(1, 101)]) == {"p50": 50.5, "p99": 99.01, "n": 100}


def test_the_blend_knows_the_student_signal():
    assert "student" in OnlineBlend({}, 0.0, 0.0).weights  # keep_weights reads it by that name
