"""Prometheus metrics of the periodic trainer. The registry is injected so tests can read their own.

The trainer is the one process whose silence is the failure: these say when it last produced a
model and how its runs end, so an alert can tell a stalled trainer from a quiet stream.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

TRAINING_OUTCOMES = ("promoted", "not_promoted", "failed")
# A run on this machine takes ~1-5 minutes; production logs take longer.
DURATION_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)


class TrainerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.runs = Counter(
            "streamrec_training_runs_total",
            "Training runs, by outcome (promoted, not_promoted: the gate kept the current model, failed)",
            ["outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "streamrec_training_duration_seconds",
            "One training run, start to registered",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.last_success = Gauge(
            "streamrec_training_last_success_timestamp_seconds",
            "Unix time the last training run completed (promoted or not)",
            registry=registry,
        )
        self.registry_version = Gauge(
            "streamrec_registry_current_version",
            "The registry's current (promoted) version; 0: none yet",
            registry=registry,
        )
        for outcome in TRAINING_OUTCOMES:
            self.runs.labels(outcome)

    def record(self, seconds: float, report: dict | None, finished_at: float) -> None:
        """One completed run; ``report`` is train_once's (None: a non-zero torchrun rank)."""
        self.duration.observe(seconds)
        self.last_success.set(finished_at)
        if report is None:
            return
        registry = report["registry"]
        self.runs.labels("promoted" if registry["promoted"] else "not_promoted").inc()
        if registry["promoted"]:
            self.registry_version.set(registry["version"])

    def failed(self) -> None:
        self.runs.labels("failed").inc()
