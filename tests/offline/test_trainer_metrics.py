"""The trainer's metrics say how its runs end and when it last produced a model (registry injected)."""

from prometheus_client import CollectorRegistry

from offline.metrics import TrainerMetrics


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_every_outcome_is_exported_at_zero_before_any_run():
    registry = CollectorRegistry()
    TrainerMetrics(registry)
    for outcome in ("promoted", "not_promoted", "failed"):
        assert _value(registry, "streamrec_training_runs_total", outcome=outcome) == 0.0
    assert _value(registry, "streamrec_training_last_success_timestamp_seconds") == 0.0


def test_a_promoted_run_counts_sets_the_version_and_the_time():
    registry = CollectorRegistry()
    metrics = TrainerMetrics(registry)
    metrics.record(42.0, {"registry": {"promoted": True, "version": 3}}, finished_at=1_700_000_000.0)
    assert _value(registry, "streamrec_training_runs_total", outcome="promoted") == 1.0
    assert _value(registry, "streamrec_registry_current_version") == 3.0
    assert _value(registry, "streamrec_training_last_success_timestamp_seconds") == 1_700_000_000.0
    assert _value(registry, "streamrec_training_duration_seconds_sum") == 42.0


def test_a_run_the_gate_refused_keeps_the_version_and_a_failure_is_only_counted():
    registry = CollectorRegistry()
    metrics = TrainerMetrics(registry)
    metrics.registry_version.set(2)
    metrics.record(10.0, {"registry": {"promoted": False, "version": 3}}, finished_at=5.0)
    metrics.failed()
    assert _value(registry, "streamrec_training_runs_total", outcome="not_promoted") == 1.0
    assert _value(registry, "streamrec_training_runs_total", outcome="failed") == 1.0
    assert _value(registry, "streamrec_registry_current_version") == 2.0
    assert _value(registry, "streamrec_training_last_success_timestamp_seconds") == 5.0
