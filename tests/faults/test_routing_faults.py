"""A serving worker killed (SIGKILL) under HTTP load sent to another worker: it leaves no tombstone and
its adverts name it until they expire or its partitions' next owners advertise. Every request must
still get the asked user's answer from a live owner -- no 5xx, no other user's answer. In the fault
table a request is an "event": reflected = answered correctly, duplicates = another user's answer,
lost = any other status."""

from __future__ import annotations

import signal
import threading
from collections import Counter

import pytest

from stream.events import EventCodec
from stream.kafka.broker import free_port
from stream.kafka.clients import ensure_topics
from tests.conftest import with_section
from tests.integration.helpers import get, partitions_of, wait_for
from tests.kafka_fixtures import produce_raw

EVENTS = 3000


@pytest.mark.slow
def test_sigkill_of_a_serving_worker_under_load_fails_no_request(kafka_cfg, workers, small_stream, tmp_path, fault_row):
    cfg = with_section(kafka_cfg, "kafka", workers_topic=f"{kafka_cfg.kafka.events_topic}-workers")
    ensure_topics(cfg.kafka)
    ports = [free_port() for _ in range(3)]
    extra = ["--set", f"kafka.workers_topic='{cfg.kafka.workers_topic}'", "--set", "serving.host='127.0.0.1'"]
    extra += ["--registry-root", str(tmp_path / "models")]
    procs = [workers(cfg, command="serve", extra=[*extra, "--port", str(port)]) for port in ports]
    every = set(range(cfg.kafka.partitions))
    owned = lambda: [partitions_of(port) for port in ports]  # noqa: E731
    wait_for(lambda: all(owned()) and set().union(*owned()) == every, timeout_s=180, what="three owners")
    events = small_stream[:EVENTS]
    produce_raw(cfg, [(e.user_id.encode(), EventCodec.encode(e)) for e in events])
    wait_for(
        lambda: sum(p.metric("streamrec_events_processed_total") or 0 for p in procs) >= EVENTS,
        timeout_s=180,
        what="the stream",
    )
    users = sorted({e.user_id for e in events})
    tally: Counter = Counter()
    done = threading.Event()

    def load() -> None:
        while not done.is_set():
            for user in users:
                status, body = get(f"http://127.0.0.1:{ports[0]}/v1/recommendations/{user}")
                if status == 200:
                    tally["right" if body["user_id"] == user else "wrong"] += 1
                else:
                    tally[status] += 1

    loader = threading.Thread(target=load)
    loader.start()
    wait_for(lambda: sum(tally.values()) >= len(users), timeout_s=120, what="a first round of requests")
    procs[2].stop(signal.SIGKILL)
    wait_for(lambda: set().union(*owned()[:2]) == every, timeout_s=120, what="the survivors to own everything")
    rounds = sum(tally.values()) // len(users)
    wait_for(lambda: sum(tally.values()) // len(users) >= rounds + 1, timeout_s=120, what="a round after it")
    done.set()
    loader.join(120)
    failed = sum(n for key, n in tally.items() if key not in ("right", "wrong"))
    row = fault_row(
        "SIGKILL of a serving worker under HTTP load sent to another worker",
        "each request answered by its user's owner: no 5xx, no other user's answer",
        sum(tally.values()),
        tally["right"],
        tally["wrong"],
        failed,
    )
    assert row.held, tally
