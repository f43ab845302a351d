"""The serving process on a real broker: five promotions under HTTP load with no failed request,
recommendations published per user, and events accepted over HTTP landing where routing expects."""

from __future__ import annotations

import json
import random
import threading
import urllib.error
import urllib.request

import msgspec
import pytest

from offline.announce import announce_promotion
from serving.publish import RecommendationMessage
from stream.events import EventCodec
from stream.kafka.broker import free_port
from stream.kafka.clients import ensure_topics, make_producer
from stream.kafka.partitioner import partition_for
from stream.model_artifact import read_manifest, version_dir
from streamrec.stack import ServingStack
from tests.conftest import with_section
from tests.integration.helpers import get, wait_for
from tests.kafka_fixtures import produce_raw, read_topic
from tests.serving.conftest import dataset, registry_with_versions  # noqa: F401 - a fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def serving(kafka_cfg, small_stream, dataset, tmp_path):
    registry = registry_with_versions(dataset, tmp_path / "models", tmp_path / "staging", versions=6)
    port = free_port()
    cfg = with_section(kafka_cfg, "serving", port=port, registry_poll_s=0.0)  # swaps come from announcements only
    cfg = with_section(
        cfg,
        "kafka",
        model_updates_topic=f"{cfg.kafka.events_topic}-models",
        recommendations_topic=f"{cfg.kafka.events_topic}-recs",
    )
    ensure_topics(cfg.kafka)
    stack = ServingStack.build(cfg, registry.root)
    stop = threading.Event()
    runner = threading.Thread(target=stack.run, args=(stop,))
    runner.start()
    try:
        produce_raw(cfg, [(e.user_id.encode(), EventCodec.encode(e)) for e in small_stream[:4000]])
        wait_for(
            lambda: sum(o.next_offset for o in list(stack.worker.owned.values())) >= 4000,
            timeout_s=180,
            what="the stream",
        )  # a group join, then 4,000 events scored and published
        yield cfg, stack, registry, f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        runner.join(30)


def test_five_promotions_under_load_fail_no_request_and_every_response_names_its_version(serving, small_stream):
    cfg, stack, registry, base = serving
    assert stack.scorer.version == 1
    users = sorted({e.user_id for e in small_stream[:4000]})
    responses, errors, done = [], [], threading.Event()

    def load() -> None:
        rng = random.Random(0)
        while not done.is_set():
            try:
                responses.append(get(f"{base}/v1/recommendations/{rng.choice(users)}?k=10"))
            except Exception as exc:  # a refused connection or a timeout is a failed request too
                errors.append(repr(exc))

    def answered_by(version: int) -> bool:
        return any(body.get("model_version") == version for _, body in list(responses))

    client = threading.Thread(target=load)
    client.start()
    producer = make_producer(cfg.kafka)
    for version in range(2, 7):
        # promote only once the current version has answered: on a slow machine a fixed sleep let a
        # version be swapped out before the client's first request reached it
        wait_for(lambda v=version - 1: answered_by(v), what=f"a response from version {version - 1}")
        registry.promote(version, None)
        announce_promotion(
            producer, cfg.kafka.model_updates_topic, read_manifest(version_dir(registry.root, version)), registry.root
        )
        wait_for(lambda v=version: stack.scorer.version == v, what=f"version {version} to be served")
    wait_for(lambda: answered_by(6) and len(responses) > 50, what="version 6 to answer")
    done.set()
    client.join()

    assert errors == [] and len(responses) > 50
    assert {status for status, _ in responses} == {200}
    served = [body["model_version"] for _, body in responses]
    assert set(served) == {1, 2, 3, 4, 5, 6}  # every version served some requests, and nothing else did
    assert served == sorted(served)  # one request in flight: versions only move forward
    assert all(len(body["items"]) == 10 for _, body in responses)


def test_each_click_publishes_the_users_recommendations_keyed_by_user(serving, small_stream):
    cfg, _, _, _ = serving
    clicks = {e.event_id: e.user_id for e in small_stream[:4000] if e.type in ("click", "conversion")}
    messages = read_topic(cfg, cfg.kafka.recommendations_topic, expected=1, timeout_s=60)
    assert messages
    for m in messages:
        rec = msgspec.json.decode(m.value(), type=RecommendationMessage)
        assert clicks[rec.event_id] == rec.user_id == m.key().decode()
        assert rec.model_version == 1 and len(rec.items) == 10


def test_an_event_posted_over_http_lands_in_the_partition_routing_expects(serving):
    cfg, _, _, base = serving
    body = b'{"event_id":"http-1","ts":1767225600000,"user_id":"routed-user","item_id":"i1","type":"click"}'
    request = urllib.request.Request(
        f"{base}/v1/events", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        accepted = json.loads(r.read())
    assert r.status == 202 and accepted["event_id"] == "http-1"
    assert accepted["partition"] == partition_for("routed-user", cfg.kafka.partitions)
