"""What the integration tests that talk HTTP to a running stack share."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request


def wait_for(condition, timeout_s: float = 60.0, what: str = "condition") -> None:
    """Poll ``condition`` until it holds; the deadline is generous for a slow machine, never a wait."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def get(url: str, timeout_s: float = 60.0) -> tuple[int, dict]:
    """Status and JSON body of a GET. The timeout only catches a server that hangs: the tests assert
    that no request fails, not how fast each is answered (a swap or a rebalance on a slow, busy
    machine can hold one request for seconds)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def partitions_of(port: int) -> set[int]:
    """The partitions a serving worker on ``port`` reports on /readyz; none while it is not ready,
    not listening (yet, or any more) or not answering JSON."""
    try:
        status, body = get(f"http://127.0.0.1:{port}/readyz", timeout_s=2.0)
    except (OSError, ValueError):
        return set()
    return set(body.get("partitions", [])) if status == 200 else set()
