"""Prometheus metrics of the serving path. The registry is injected so tests can read their own.

No user or item ids as labels: routes are the path templates, reasons and sources small fixed sets.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

# Scoring takes ~0.3-2 ms: buckets resolve tenths of a millisecond up to a second.
LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0015,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
# Event timestamp -> recommendation acknowledged by the broker: milliseconds to seconds.
FRESHNESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
CANDIDATE_BUCKETS = (0, 10, 25, 50, 100, 150, 200, 300, 400, 600, 1000)

FALLBACK_REASONS = ("no_model", "model_error", "no_candidates")
CANDIDATE_SOURCES = ("covis", "mf", "trending", "content")


class ServingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._scoring(registry)
        self._model(registry)
        self._traffic(registry)
        for reason in FALLBACK_REASONS:
            self.fallbacks.labels(reason)
        for source in CANDIDATE_SOURCES:
            self.candidates_by_source.labels(source)
        for outcome in ("loaded", "refused"):
            self.model_loads.labels(outcome)
        for outcome in ("answered", "no_owner"):
            self.forwarded.labels(outcome)

    def _scoring(self, registry: CollectorRegistry) -> None:
        """How a top-k is computed: its latency, its candidates, and when it goes without the model."""
        self.scoring_seconds = Histogram(
            "streamrec_scoring_duration_seconds",
            "One top-k computation: candidates, model scoring and blend",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.candidates = Histogram(
            "streamrec_candidates_per_request",
            "Candidates ranked per top-k computation",
            buckets=CANDIDATE_BUCKETS,
            registry=registry,
        )
        self.candidates_by_source = Counter(
            "streamrec_candidates_total",
            "Candidates generated, by source (before de-duplication)",
            ["source"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "streamrec_scoring_fallbacks_total",
            "Top-k computations served without the model (or without candidates), by reason",
            ["reason"],
            registry=registry,
        )

    def _traffic(self, registry: CollectorRegistry) -> None:
        """What goes in and out: HTTP requests, ingested events, published recommendations and their freshness."""
        self.request_seconds = Histogram(
            "streamrec_http_request_duration_seconds",
            "HTTP request latency, by route template and status",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.published = Counter(
            "streamrec_recommendations_published_total",
            "Recommendations produced to the recommendations topic",
            registry=registry,
        )
        self.publish_failures = Counter(
            "streamrec_recommendations_publish_failures_total",
            "Recommendations the broker did not acknowledge",
            registry=registry,
        )
        self.events_ingested = Counter(
            "streamrec_http_events_ingested_total",
            "Events accepted by POST /v1/events and acknowledged by Kafka",
            registry=registry,
        )
        self.forwarded = Counter(
            "streamrec_forwarded_requests_total",
            "Requests for a user another worker owns, sent on to it, by outcome (answered: the owner's "
            "answer came back; no_owner: none answered within serving.forward_timeout_s)",
            ["outcome"],
            registry=registry,
        )
        self.freshness_seconds = Histogram(
            "streamrec_recommendation_freshness_seconds",
            "Event timestamp to the broker's acknowledgement of the recommendation it triggered",
            buckets=FRESHNESS_BUCKETS,
            registry=registry,
        )

    def _model(self, registry: CollectorRegistry) -> None:
        """The model served, its loads, and the online blend that weighs it against the learners."""
        self.model_info = Info("streamrec_model", "The model version being served", registry=registry)
        self.model_version = Gauge(
            "streamrec_model_version",
            "Version number of the model being served (0: none, serving from the online learners)",
            registry=registry,
        )
        self.model_created = Gauge(
            "streamrec_model_created_timestamp_seconds",
            "Unix time the served model was trained (0: none); its age is how stale it is",
            registry=registry,
        )
        self.model_loads = Counter(
            "streamrec_model_loads_total",
            "Model load attempts, by outcome (loaded, refused)",
            ["outcome"],
            registry=registry,
        )
        self.blend_updates = Counter(
            "streamrec_blend_updates_total",
            "Steps the online blend took: clicks whose item was among the candidates the user was offered",
            registry=registry,
        )
        self.blend_failures = Counter(
            "streamrec_blend_update_failures_total",
            "Sampled clicks the blend could not learn from: candidate generation or the step raised "
            "(the first is logged)",
            registry=registry,
        )
