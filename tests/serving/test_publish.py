"""Publishing: one recommendation per user per batch, for their last qualifying event; failures
are counted and never reach the worker."""

import msgspec
from prometheus_client import CollectorRegistry

from serving.metrics import ServingMetrics
from serving.publish import RecommendationMessage, RecommendationPublisher
from serving.scorer import Scorer
from stream.events import Event
from stream.owned_partition import OwnedPartition


class FakeProducer:
    def __init__(self):
        self.sent = []

    def produce(self, topic, value, key=None, on_delivery=None):
        self.sent.append((topic, key, value))
        on_delivery(None, None)

    def poll(self, timeout):
        return 0


def event(n, user, type_="click"):
    return Event(event_id=f"e{n}", ts=1_767_225_600_000 + n, user_id=user, item_id=f"i{n}", type=type_)


def test_a_burst_of_clicks_publishes_once_for_the_last_one(cfg, processor):
    producer, metrics = FakeProducer(), ServingMetrics(CollectorRegistry())
    publisher = RecommendationPublisher(Scorer(cfg.serving), producer, "recs", 5, ["click"], metrics)
    owned = OwnedPartition(processor, 0, 0)
    publisher.batch_applied(
        [
            (owned, event(1, "u1")),
            (owned, event(2, "u1")),
            (owned, event(3, "u2", "impression")),
            (owned, event(4, "u3")),
        ]
    )
    messages = [(key, msgspec.json.decode(value, type=RecommendationMessage)) for _, key, value in producer.sent]
    assert [(key, m.event_id) for key, m in messages] == [(b"u1", "e2"), (b"u3", "e4")]
    assert all(len(m.items) == 5 and m.event_ts_ms > 0 and m.computed_at_ms >= m.event_ts_ms for _, m in messages)
    assert metrics.registry.get_sample_value("streamrec_recommendations_published_total") == 2
    assert metrics.registry.get_sample_value("streamrec_recommendation_freshness_seconds_count") == 2


def test_a_failure_to_score_is_counted_and_does_not_stop_the_batch(cfg, processor, monkeypatch):
    producer, metrics = FakeProducer(), ServingMetrics(CollectorRegistry())
    scorer = Scorer(cfg.serving)
    publisher = RecommendationPublisher(scorer, producer, "recs", 5, ["click"], metrics)
    original = scorer.recommend

    def fail_for_u1(processor, user_id, k, *args, **kwargs):
        if user_id == "u1":
            raise RuntimeError("injected")
        return original(processor, user_id, k, *args, **kwargs)

    monkeypatch.setattr(scorer, "recommend", fail_for_u1)
    owned = OwnedPartition(processor, 0, 0)
    publisher.batch_applied([(owned, event(1, "u1")), (owned, event(2, "u2"))])
    assert [key for _, key, _ in producer.sent] == [b"u2"]
    assert metrics.registry.get_sample_value("streamrec_recommendations_publish_failures_total") == 1
