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


def get(url: str) -> tuple[int, dict]:
    """Status and JSON body of a GET. The timeout only catches a server that hangs: the tests assert
    that no request fails, not how fast each is answered (a swap or a rebalance on a slow, busy
    machine can hold one request for seconds)."""
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
