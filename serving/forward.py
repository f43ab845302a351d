"""Forwarding a request for a user another worker owns to that worker, and waiting out a rebalance.

A worker asked about a user of a partition it does not own looks the partition's owner up in the
:class:`~serving.directory.Directory` and sends the same request there, marked with
``FORWARDED_HEADER`` so that the owner answers it itself or refuses it (421), never forwards it on.
The owner may by then be this worker itself (a rebalance gave it the partition while the request
waited): the request then comes back to its own API and is answered there.
Forwarding (rather than redirecting) keeps the workers' addresses internal: clients behind one load
balancer address need not reach each worker.

While no worker owns the partition -- a rebalance moves it, or its owner died and the group has
not yet noticed -- and while the owner the directory names refuses (421), fails (5xx, as while it
shuts down) or cannot be reached, the request waits for the directory to change and tries again,
up to ``serving.forward_timeout_s`` in all. Only then does it fail, with :class:`NoOwner` (answered
503 with ``Retry-After``). A rebalance shorter than that bound therefore costs requests latency, not
errors.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

import httpx

from serving.directory import Directory

log = logging.getLogger(__name__)

FORWARDED_HEADER = "x-streamrec-forwarded-by"
# One attempt's bounds. An owner answers in milliseconds; one that has not in ATTEMPT_S is taken for
# gone (a worker shutting down can hold a connection open without answering it), and the request
# goes on to whichever worker the directory names next, within the whole bound.
ATTEMPT_S, CONNECT_S = 5.0, 1.0
# Headers a forwarded request keeps: the caller's credentials and what it accepts.
PASSED_ON = ("authorization", "accept")


class NoOwner(Exception):
    """No worker answered for the partition within the bound."""

    def __init__(self, partition: int, waited_s: float) -> None:
        super().__init__(f"no worker answered for partition {partition} within {waited_s:.1f} s")
        self.partition = partition


class Forwarder:
    def __init__(self, directory: Directory, client: httpx.Client, timeout_s: float) -> None:
        self.directory = directory
        self.client = client
        self.timeout_s = timeout_s

    def forward(self, partition: int, path_and_query: str, headers: Mapping[str, str]) -> httpx.Response:
        """The owner's answer to ``GET path_and_query``; raises NoOwner after the bound."""
        started = time.monotonic()
        deadline = started + self.timeout_s
        sent = {k: v for k, v in headers.items() if k.lower() in PASSED_ON}
        sent[FORWARDED_HEADER] = self.directory.self_id
        while (remaining := deadline - time.monotonic()) > 0:
            owner = self.directory.owner(partition)
            if owner is None:
                self.directory.wait(min(remaining, 0.25))
                continue
            try:
                timeout = httpx.Timeout(min(remaining, ATTEMPT_S), connect=min(remaining, CONNECT_S))
                response = self.client.get(owner.url + path_and_query, headers=sent, timeout=timeout)
            except httpx.HTTPError as exc:  # gone, or too slow: the directory will say who is next
                log.info(
                    "forwarding to %s for partition %d failed (%s); trying its next owner", owner.url, partition, exc
                )
            else:
                # 421: not (or no longer) the owner; 5xx: an owner shutting down. A GET is safe to repeat.
                if response.status_code != 421 and response.status_code < 500:
                    return response
            self.directory.wait(min(deadline - time.monotonic(), 0.25))
        raise NoOwner(partition, time.monotonic() - started)
