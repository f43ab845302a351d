"""Worker metrics follow Prometheus naming and live in the registry they are given."""

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from stream.events import EVENT_TYPES, REJECT_REASONS
from stream.metrics import WorkerMetrics


def test_metrics_register_in_the_injected_registry_only():
    a, b = CollectorRegistry(), CollectorRegistry()
    WorkerMetrics(a).processed.labels("click").inc(3)
    WorkerMetrics(b)
    assert a.get_sample_value("streamrec_events_processed_total", {"type": "click"}) == 3
    assert b.get_sample_value("streamrec_events_processed_total", {"type": "click"}) == 0


def test_every_fixed_label_value_is_exported_at_zero_from_the_start():
    # A rate over a series that does not exist yet is no data: dashboards and alerts would be blank.
    registry = CollectorRegistry()
    WorkerMetrics(registry)
    for reason in REJECT_REASONS:
        assert registry.get_sample_value("streamrec_events_dead_lettered_total", {"reason": reason}) == 0
    for event_type in EVENT_TYPES:
        assert registry.get_sample_value("streamrec_events_processed_total", {"type": event_type}) == 0
    assert registry.get_sample_value("streamrec_drift_detected_total", {"learner": "item_knn"}) == 0


def test_names_follow_conventions():
    registry = CollectorRegistry()
    m = WorkerMetrics(registry)
    m.processed.labels("click").inc()
    m.dead_lettered.labels("schema").inc()
    m.lag.labels("0").set(5)
    m.recall.labels("isgd_mf").set(0.2)
    m.batch_seconds.observe(0.01)
    for family in registry.collect():
        assert family.name.startswith("streamrec_")
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        for sample in family.samples:
            # No user or item ids as labels: only small fixed sets.
            assert set(sample.labels) <= {"type", "reason", "partition", "learner", "kind", "le"}
    text = generate_latest(registry).decode()
    assert "streamrec_batch_duration_seconds_bucket" in text


def test_snapshot_age_is_computed_at_scrape():
    import time

    registry = CollectorRegistry()
    m = WorkerMetrics(registry)
    m.snapshot_times([time.time() - 30, time.time() - 5])
    assert 29 < registry.get_sample_value("streamrec_snapshot_age_seconds") < 40


def test_a_process_registry_carries_the_process_and_gc_collectors():
    from stream.metrics import process_registry

    a, b = process_registry(), process_registry()  # the demo and its tests build several in one process
    WorkerMetrics(a)
    for registry in (a, b):
        assert registry.get_sample_value("process_cpu_seconds_total") > 0
        assert registry.get_sample_value("process_resident_memory_bytes") > 0
        assert registry.get_sample_value("python_gc_objects_collected_total", {"generation": "0"}) is not None
        assert "python_info{" in generate_latest(registry).decode()
    assert a.get_sample_value("streamrec_events_processed_total", {"type": "click"}) == 0
    assert b.get_sample_value("streamrec_events_processed_total", {"type": "click"}) is None
