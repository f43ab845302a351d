"""Which worker serves which partition: adverts on the workers topic, folded into a directory.

Every serving worker publishes a :class:`WorkerAdvert` keyed by its worker id on a compacted topic:
the URL at which the other workers reach its HTTP API, and each partition it owns with the time it
took it over. It publishes when its assignment changes and every ``serving.advert_interval_s`` as a
heartbeat, and a tombstone when it shuts down cleanly. This is what Kafka Streams'
``application.server`` carries in the group's assignment metadata; the group's own metadata cannot
carry it here, because Tansu 0.6 answers DescribeGroups without members.

Every worker reads the whole topic into a :class:`Directory`. A partition's owner is, among the
live adverts claiming it, the one that took it over last. A worker killed without a tombstone keeps
its claims until its latest advert is ``ttl_s`` old, but the partition's next owner took it over
later and wins as soon as its advert arrives. A worker cut off from the group that still
heartbeats its old claims loses for the same reason. The directory is a hint: the owner checks its
ownership itself when a forwarded request arrives (``serving.forward``), so a stale entry costs a
retry, never a wrong answer. Times are the publishing worker's wall clock; hosts' clocks must agree
to well within ``ttl_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import msgspec


class Claim(msgspec.Struct, frozen=True, array_like=True):
    partition: int
    since_ms: int  # when this worker took the partition over


class WorkerAdvert(msgspec.Struct, frozen=True):
    """One worker's entry on the workers topic."""

    worker_id: str
    url: str  # the base URL of its HTTP API, as the other workers reach it
    claims: list[Claim]
    ts_ms: int  # when it was published: the heartbeat


ADVERT_CODEC = (msgspec.json.Encoder(), msgspec.json.Decoder(WorkerAdvert))


class Directory:
    """The latest advert of every worker; thread-safe. ``changed`` wakes those waiting for an owner."""

    def __init__(self, self_id: str, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.self_id = self_id
        self.ttl_ms = int(ttl_s * 1000)
        self.clock = clock
        self._adverts: dict[str, WorkerAdvert] = {}
        self.changed = threading.Condition()

    def apply(self, worker_id: str, advert: WorkerAdvert | None) -> None:
        """Fold one message of the workers topic (None: a tombstone) and wake the waiters. Adverts
        past ``ttl_s`` are dropped: a killed worker's key stays on the compacted topic for good."""
        now_ms = self.clock() * 1000
        with self.changed:
            if advert is None:
                self._adverts.pop(worker_id, None)
            elif worker_id not in self._adverts or advert.ts_ms >= self._adverts[worker_id].ts_ms:
                self._adverts[worker_id] = advert
            self._adverts = {k: a for k, a in self._adverts.items() if now_ms - a.ts_ms <= self.ttl_ms}
            self.changed.notify_all()

    def owner(self, partition: int) -> WorkerAdvert | None:
        """The live advert that took ``partition`` over last. It may be this worker's own: a request
        that found the partition elsewhere may outlive a rebalance that brought it here."""
        now_ms = self.clock() * 1000
        with self.changed:
            live = (a for a in self._adverts.values() if now_ms - a.ts_ms <= self.ttl_ms)
            claims = [(c.since_ms, a.worker_id, a) for a in live for c in a.claims if c.partition == partition]
        if not claims:
            return None
        return max(claims, key=lambda c: (c[0], c[1]))[2]

    def wait(self, timeout_s: float) -> None:
        """Until the next advert arrives or ``timeout_s`` passes."""
        with self.changed:
            self.changed.wait(timeout_s)

    def workers(self) -> list[WorkerAdvert]:
        with self.changed:
            return sorted(self._adverts.values(), key=lambda a: a.worker_id)
