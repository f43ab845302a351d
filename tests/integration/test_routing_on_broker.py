"""Any worker answers any user: three serving workers on a real broker, every request sent to one of
them, and one of the others leaving mid-load. No request may get a 5xx or another user's answer."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from stream.events import EventCodec
from stream.kafka.broker import free_port
from stream.kafka.clients import ensure_topics
from stream.kafka.partitioner import partition_for
from streamrec.stack import ServingStack
from tests.conftest import with_section
from tests.integration.helpers import get, wait_for
from tests.kafka_fixtures import produce_raw

pytestmark = pytest.mark.integration

EVENTS = 3000


class Worker:
    """One ServingStack on its own thread, port and metrics registry."""

    def __init__(self, cfg, registry_root: Path) -> None:
        self.port = free_port()
        cfg = with_section(cfg, "serving", host="127.0.0.1", port=self.port, registry_poll_s=0.0)
        self.stack = ServingStack.build(cfg, registry_root, registry=CollectorRegistry())
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.stack.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def leave(self) -> None:
        self.stop.set()
        self.thread.join(60)

    def owned(self) -> set[int]:
        return set(dict(self.stack.worker.owned))

    def applied(self) -> int:
        return sum(o.next_offset for o in dict(self.stack.worker.owned).values())


@pytest.fixture
def three_workers(kafka_cfg, tmp_path):
    name = kafka_cfg.kafka.events_topic
    cfg = with_section(
        kafka_cfg,
        "kafka",
        workers_topic=f"{name}-workers",
        model_updates_topic=f"{name}-models",
        recommendations_topic=f"{name}-recs",
    )
    ensure_topics(cfg.kafka)
    workers = [Worker(cfg, tmp_path / "models") for _ in range(3)]
    try:
        yield cfg, workers
    finally:
        for w in workers:
            w.leave()


def test_every_user_is_answered_through_one_worker_while_another_leaves(three_workers, small_stream):
    cfg, workers = three_workers
    events = small_stream[:EVENTS]
    produce_raw(cfg, [(e.user_id.encode(), EventCodec.encode(e)) for e in events])
    partitions = set(range(cfg.kafka.partitions))
    wait_for(
        lambda: set().union(*(w.owned() for w in workers)) == partitions and all(w.owned() for w in workers),
        timeout_s=120,
        what="every worker to own a partition",
    )
    wait_for(lambda: sum(w.applied() for w in workers) >= EVENTS, timeout_s=120, what="the stream")
    front, leaving = workers[0], workers[2]
    users = sorted({e.user_id for e in events})
    base = f"http://127.0.0.1:{front.port}/v1/recommendations/"

    def answers() -> Counter:
        tally: Counter = Counter()
        for user in users:
            status, body = get(base + user)
            tally[status if status != 200 or body["user_id"] == user else "wrong user"] += 1
        return tally

    assert answers() == Counter({200: len(users)})
    elsewhere = sum(1 for u in users if partition_for(u, len(partitions)) not in front.owned())
    forwarded = front.stack.registry.get_sample_value("streamrec_forwarded_requests_total", {"outcome": "answered"})
    assert elsewhere > 0 and forwarded == elsewhere
    during: Counter = Counter()
    done = threading.Event()

    def load() -> None:
        while not done.is_set():
            during.update(answers())

    loader = threading.Thread(target=load)
    loader.start()
    moved = leaving.owned()
    leaving.leave()
    wait_for(lambda: set().union(*(w.owned() for w in workers[:2])) == partitions, timeout_s=120, what="the rebalance")
    time.sleep(1.0)
    done.set()
    loader.join(120)
    assert moved and sum(during.values()) >= len(users)
    assert set(during) == {200}, during  # no 5xx, no 421 reached the client, no other user's answer
    assert answers() == Counter({200: len(users)})
