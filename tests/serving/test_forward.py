"""Forwarding to a partition's owner: the owner's answer, a wait through a rebalance, then a bound."""

import threading
import time

import httpx
import pytest

from serving.directory import Claim, Directory, WorkerAdvert
from serving.forward import FORWARDED_HEADER, Forwarder, NoOwner


def advert(worker: str, partition: int, since_s: float) -> WorkerAdvert:
    return WorkerAdvert(worker, f"http://{worker}", [Claim(partition, int(since_s * 1000))], int(time.time() * 1000))


def forwarder(directory: Directory, answer, timeout_s: float = 5.0) -> Forwarder:
    return Forwarder(directory, httpx.Client(transport=httpx.MockTransport(answer)), timeout_s)


def test_the_owners_answer_comes_back_with_the_callers_credentials_and_the_forwarded_mark():
    directory = Directory("me", ttl_s=60)
    directory.apply("a", advert("a", 3, 1.0))
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"user_id": "u"})

    response = forwarder(directory, answer).forward(
        3, "/v1/recommendations/u?k=5", {"Authorization": "Bearer t", "Cookie": "c"}
    )
    assert response.status_code == 200 and response.json() == {"user_id": "u"}
    (request,) = seen
    assert str(request.url) == "http://a/v1/recommendations/u?k=5"
    assert request.headers["authorization"] == "Bearer t" and "cookie" not in request.headers
    assert request.headers[FORWARDED_HEADER] == "me"


def test_a_refusing_owner_is_retried_once_the_directory_names_the_next_one():
    directory = Directory("me", ttl_s=60)
    directory.apply("a", advert("a", 3, 1.0))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a":  # a lost the partition but its advert still names it
            threading.Timer(0.1, directory.apply, ("b", advert("b", 3, 2.0))).start()
            return httpx.Response(421, json={"error": "not mine"})
        return httpx.Response(200, json={"from": "b"})

    assert forwarder(directory, answer).forward(3, "/x", {}).json() == {"from": "b"}


def test_an_unreachable_owner_and_a_partition_without_owner_are_waited_out_within_the_bound():
    directory = Directory("me", ttl_s=60)
    directory.apply("dead", advert("dead", 3, 1.0))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "dead":
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json={"from": request.url.host})

    threading.Timer(0.3, directory.apply, ("dead", None)).start()  # it leaves; nobody owns 3 for a while
    threading.Timer(0.6, directory.apply, ("c", advert("c", 3, 2.0))).start()
    started = time.monotonic()
    assert forwarder(directory, answer).forward(3, "/x", {}).json() == {"from": "c"}
    assert 0.5 < time.monotonic() - started < 3


def test_without_an_owner_the_request_fails_after_the_bound():
    directory = Directory("me", ttl_s=60)
    started = time.monotonic()
    with pytest.raises(NoOwner, match="partition 4"):
        forwarder(directory, lambda r: httpx.Response(200), timeout_s=0.5).forward(4, "/x", {})
    assert 0.5 <= time.monotonic() - started < 1.5


def test_an_owner_failing_while_it_shuts_down_is_retried_like_one_that_refuses():
    directory = Directory("me", ttl_s=60)
    directory.apply("a", advert("a", 3, 1.0))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == "a":
            threading.Timer(0.1, directory.apply, ("b", advert("b", 3, 2.0))).start()
            return httpx.Response(500, json={"error": "Handle has been closed"})
        return httpx.Response(200, json={"from": "b"})

    assert forwarder(directory, answer).forward(3, "/x", {}).json() == {"from": "b"}
