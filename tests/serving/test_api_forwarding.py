"""A request for another worker's user goes on to its owner, once, and fails only after the bound."""

import time

import httpx
from fastapi.testclient import TestClient

from serving.directory import Claim, Directory, WorkerAdvert
from serving.forward import FORWARDED_HEADER, Forwarder
from stream.kafka.partitioner import partition_for
from tests.serving.api_harness import Owner, make_app

OWNERS_ANSWER = {"user_id": "from-the-owner", "items": []}


def user_of(partition: int, count: int = 2) -> str:
    return next(u for u in (f"user-{n}" for n in range(100)) if partition_for(u, count) == partition)


def routed_app(cfg, processor, owned: tuple[int, ...], owners: dict[int, str], timeout_s: float = 2.0):
    """An app owning ``owned`` of two partitions; ``owners`` names the other workers' partitions."""
    directory = Directory("me", ttl_s=60)
    now_ms = int(time.time() * 1000)
    for partition, worker in owners.items():
        directory.apply(worker, WorkerAdvert(worker, f"http://{worker}", [Claim(partition, now_ms)], now_ms))
    sent: list[httpx.Request] = []

    def owner(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=OWNERS_ANSWER)

    forwarder = Forwarder(directory, httpx.Client(transport=httpx.MockTransport(owner)), timeout_s)
    app, metrics, _ = make_app(cfg, processor, owner=Owner(processor, count=2, owned=owned), forwarder=forwarder)
    return TestClient(app), metrics, sent


def test_a_user_owned_elsewhere_gets_the_owners_answer(cfg, processor):
    client, metrics, sent = routed_app(cfg, processor, owned=(0,), owners={1: "worker-b"})
    r = client.get(f"/v1/recommendations/{user_of(1)}", params={"k": 3})
    assert r.status_code == 200 and r.json() == OWNERS_ANSWER
    (request,) = sent
    assert request.url.host == "worker-b" and request.url.params["k"] == "3" and request.headers[FORWARDED_HEADER]
    assert metrics.registry.get_sample_value("streamrec_forwarded_requests_total", {"outcome": "answered"}) == 1


def test_a_forwarded_request_is_answered_by_its_receiver_or_refused_never_forwarded_again(cfg, processor):
    client, _, sent = routed_app(cfg, processor, owned=(0,), owners={1: "worker-b"})
    r = client.get(f"/v1/recommendations/{user_of(1)}", headers={FORWARDED_HEADER: "worker-c"})
    assert r.status_code == 421 and not sent
    assert client.get(f"/v1/recommendations/{user_of(0)}", headers={FORWARDED_HEADER: "worker-c"}).status_code == 200


def test_a_worker_without_partitions_forwards_instead_of_refusing(cfg, processor):
    client, _, sent = routed_app(cfg, processor, owned=(), owners={0: "worker-a", 1: "worker-b"})
    assert client.get(f"/v1/recommendations/{user_of(0)}").json() == OWNERS_ANSWER
    assert [r.url.host for r in sent] == ["worker-a"]


def test_without_an_owner_within_the_bound_the_answer_is_a_retryable_503(cfg, processor):
    client, metrics, sent = routed_app(cfg, processor, owned=(0,), owners={}, timeout_s=0.3)
    r = client.get(f"/v1/recommendations/{user_of(1)}")
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and r.json()["partition"] == 1 and not sent
    assert metrics.registry.get_sample_value("streamrec_forwarded_requests_total", {"outcome": "no_owner"}) == 1
