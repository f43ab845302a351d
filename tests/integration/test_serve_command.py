"""`streamrec serve` as operators run it: started before its broker, it waits instead of exiting."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from stream.kafka.broker import EmbeddedBroker, free_port
from tests.kafka_fixtures import ROOT


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200 and json.loads(r.read())["partitions"] != []
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until(condition, proc: subprocess.Popen, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s  # a deadline for a slow machine: a met condition returns at once
    while not condition():
        assert proc.poll() is None, f"serve exited ({proc.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_serve_started_before_the_broker_waits_then_serves(tmp_path):
    kafka_port, api_port = free_port(), free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamrec.cli", "serve", "--bootstrap-servers", f"127.0.0.1:{kafka_port}",
             "--port", str(api_port), "--metrics-port", "0", "--data-dir", str(tmp_path / "data"),
             "--registry-root", str(tmp_path / "models"), "--partitions", "2"],
            cwd=ROOT, stderr=err, stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: "cannot reach Kafka" in log.read_text(), proc, 120, "a retry line")
        time.sleep(3)  # it keeps waiting; before this fix it exited with a one-line error here
        assert proc.poll() is None, log.read_text()[-2000:]
        with EmbeddedBroker(port=kafka_port, start_timeout_s=120):  # a deadline: it returns once the broker answers
            wait_until(lambda: ready(api_port), proc, 180, "the API to report its partitions")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(60) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
