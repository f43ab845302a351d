"""A real Prometheus scrapes a running `streamrec demo` with the deploy/ rules loaded; every
dashboard panel, recording rule and alert clause then returns data through Prometheus' HTTP API,
and each live scrape passes `promtool check metrics`.

Prometheus comes from Debian's `prometheus` package (`./run tests` installs it).
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

from stream.kafka.broker import free_port
from tests.deploy.expressions import (
    PROMETHEUS_CONFIG,
    RULE_FILES,
    Expression,
    alert_expressions,
    annotation_expressions,
    dashboard_expressions,
    recording_rules,
)

ROOT = Path(__file__).resolve().parents[2]


def _port_pair() -> int:
    """A free port whose successor is free too (the demo's trainer serves its metrics there), both
    below Linux's ephemeral range (32768-60999): the trainer binds its port a minute after this
    check, and in between the demo's Kafka clients open outgoing connections from that range, one
    of which once took it (CI, 2026-12-07)."""
    import random
    import socket

    rng = random.Random()
    for _ in range(50):
        port = rng.randrange(20_000, 32_000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
                return port
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def _local_config(tmp_path: Path, demo_metrics: int, prometheus_port: int) -> Path:
    """deploy/prometheus/prometheus.yml with only the targets (and intervals) changed."""
    cfg = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    cfg["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    cfg["rule_files"] = [str(path) for path in RULE_FILES]
    targets = {
        "streamrec-worker": [f"127.0.0.1:{demo_metrics}"],
        "streamrec-trainer": [f"127.0.0.1:{demo_metrics + 1}"],
        "prometheus": [f"127.0.0.1:{prometheus_port}"],
    }
    assert {job["job_name"] for job in cfg["scrape_configs"]} == set(targets)
    for job in cfg["scrape_configs"]:
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


class PrometheusApi:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, promql: str) -> dict:
        url = f"{self.base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as exc:  # a bad expression: 400 with Prometheus' error
            return json.loads(exc.read())

    def values(self, promql: str) -> list[float]:
        body = self.query(promql)
        assert body["status"] == "success", f"{promql}: {body.get('error')}"
        return [float(sample["value"][1]) for sample in body["data"]["result"]]


def _wait(what: str, condition, timeout: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, (
            f"the demo exited ({process.returncode}) while waiting for {what}:\n{log.read_text()[-3000:]}"
        )
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}:\n{log.read_text()[-3000:]}")


def test_every_dashboard_and_rule_expression_returns_data_from_prometheus_scraping_the_demo(tmp_path):
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus not found: install Debian's prometheus package (./run tests does)"
    metrics_port, prometheus_port = _port_pair(), free_port()
    demo_log = tmp_path / "demo.log"
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamrec.cli",
            "demo",
            "--sessions",
            "20000",
            "--rate",
            "1000",
            "--json",
            "--metrics-port",
            str(metrics_port),
            "--port",
            str(free_port()),
            "--train-every",
            "2000",
            "--wait-for-model",
            "300",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=demo_log.open("wb"),
    )
    server = subprocess.Popen(
        [
            prometheus,
            f"--config.file={_local_config(tmp_path, metrics_port, prometheus_port)}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("wb"),
    )
    api = PrometheusApi(prometheus_port)
    try:
        _wait("Prometheus to be ready", api.ready, 60, demo, demo_log)
        _wait(
            "a model served and the trainer's registry version scraped",
            lambda: api.values("max(streamrec_model_version) >= 1 and max(streamrec_registry_current_version) >= 1"),
            300,
            demo,
            demo_log,
        )
        _wait(
            "recorded freshness",
            lambda: api.values("job:streamrec_recommendation_freshness_seconds:p99_rate5m"),
            180,
            demo,
            demo_log,
        )

        def missing() -> list[str]:
            out = []
            shown: list[Expression] = [*dashboard_expressions(), *recording_rules()]
            for e in shown:  # what operators read: data, and a number, not only NaN
                values = api.values(e.promql)
                if not any(math.isfinite(v) for v in values):
                    out.append(f"{e.where}: {e.promql} -> {values}")
            for e in [*alert_expressions(), *annotation_expressions()]:  # 0/1 per series: the series must exist
                if not api.values(e.promql):
                    out.append(f"{e.where}: {e.promql} -> no series")
            return out

        # A few more scrapes and rule evaluations with the model serving, as many as it takes: a fixed
        # 3 s was the margin of a fast machine. The demo must stay up meanwhile (_wait checks).
        last: list[list[str]] = [[]]

        def complete() -> bool:
            last[0] = missing()
            return not last[0]

        try:
            _wait("every expression to return data", complete, 120, demo, demo_log)
        except AssertionError as exc:
            raise AssertionError("expressions without data:\n" + "\n".join(last[0]) + f"\n{exc}") from None

        for port in (metrics_port, metrics_port + 1):  # the demo (worker + serving) and its trainer
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                scrape = r.read().decode()
            lint = subprocess.run(
                ["promtool", "check", "metrics"], input=scrape, capture_output=True, text=True, check=False
            )
            assert lint.returncode == 0, f"port {port}: {lint.stdout}{lint.stderr}"
    finally:
        server.terminate()
        demo.send_signal(signal.SIGINT)  # the demo's Ctrl-C: summary, then broker and trainer stopped
        try:
            demo.wait(90)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()
        server.wait(30)
    assert demo.returncode == 0, demo_log.read_text()[-3000:]
