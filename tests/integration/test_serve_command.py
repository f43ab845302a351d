"""`streamrec serve` as operators run it: started before its broker, it waits instead of exiting."""

from __future__ import annotations

import signal
import time

from stream.config import load_config
from stream.kafka.broker import EmbeddedBroker, free_port
from tests.integration.helpers import partitions_of


def test_serve_started_before_the_broker_waits_then_serves(tmp_path, workers):
    kafka_port, api_port = free_port(), free_port()
    cfg = load_config(
        env={},
        overrides=[f"kafka.bootstrap_servers='127.0.0.1:{kafka_port}'", f"worker.data_dir='{tmp_path / 'data'}'"],
    )
    serve = workers(
        cfg,
        command="serve",
        extra=["--port", str(api_port), "--partitions", "2", "--registry-root", str(tmp_path / "models")],
    )
    serve.wait_for(lambda: "cannot reach Kafka" in serve.stderr_tail(), timeout_s=120, what="a retry line")
    time.sleep(3)  # it keeps waiting; before this fix it exited with a one-line error here
    assert serve.proc.poll() is None, serve.stderr_tail()
    with EmbeddedBroker(port=kafka_port, start_timeout_s=120):  # a deadline: it returns once the broker answers
        serve.wait_for(lambda: bool(partitions_of(api_port)), timeout_s=180, what="the API to report its partitions")
        serve.stop(signal.SIGTERM)
        assert serve.proc.returncode == 0, serve.stderr_tail()
