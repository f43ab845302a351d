"""deploy/prometheus and deploy/grafana are checked by promtool and against the code, not just written.

promtool comes from Debian's `prometheus` package, which `./run tests` installs: these fail, not
skip, without it, because CI must run them.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from offline.metrics import TrainerMetrics
from serving.metrics import ServingMetrics
from stream.metrics import WorkerMetrics
from tests.deploy.expressions import (
    DATASOURCES,
    PROMETHEUS_CONFIG,
    RULE_FILES,
    RULE_TESTS,
    alert_clauses,
    alerts,
    annotation_expressions,
    dashboard,
    dashboard_expressions,
    recording_rules,
)

RUNBOOK = PROMETHEUS_CONFIG.parents[2] / "docs" / "how-to" / "operating.md"


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("promtool")
    assert exe, "promtool not found: install Debian's prometheus package (./run tests does)"
    return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False)


def test_the_prometheus_config_is_valid():
    result = promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rule_files_are_valid():
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_silent_in_its_unit_tests():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    cases = [case for test in yaml.safe_load(RULE_TESTS.read_text())["tests"] for case in test["alert_rule_test"]]
    jobs_in_input = {alert["alert"]: set() for alert in alerts()}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        names = {case["alertname"] for case in test["alert_rule_test"]}
        for series in test["input_series"]:
            job = re.search(r'job="([^"]+)"', series["series"])
            for name in names:
                jobs_in_input[name].add(job[1] if job else None)
    for alert in alerts():
        name = alert["alert"]
        mine = [case for case in cases if case["alertname"] == name]
        firing_jobs = {e["exp_labels"].get("job") for case in mine for e in case.get("exp_alerts") or []}
        assert firing_jobs, f"{name}: no test case where it fires"
        # Silent: a case expecting no alert, or a job in the input that is never expected to fire.
        silent = any(not case.get("exp_alerts") for case in mine) or bool(jobs_in_input[name] - firing_jobs)
        assert silent, f"{name}: no test case where it stays silent"


def test_every_alert_is_threshold_clauses_with_a_runbook_section_in_the_docs():
    headings = {line.lstrip("#").strip().lower() for line in RUNBOOK.read_text().splitlines() if line.startswith("#")}
    for alert in alerts():
        assert alert_clauses(alert)  # raises when the expression is not '<expr> <op> <number> [and ...]'
        assert alert["labels"]["severity"] in {"page", "ticket"}
        anchor = alert["annotations"]["runbook"]
        assert anchor == f"docs/how-to/operating.md#{alert['alert'].lower()}"
        assert alert["alert"].lower() in headings, f"{RUNBOOK.name} has no runbook section '### {alert['alert']}'"


def _process_registries() -> dict[str, CollectorRegistry]:
    """The metrics each streamrec process serves: `stream`, `serve`/`demo` (worker + serving), `train`."""
    worker, serving, trainer = CollectorRegistry(), CollectorRegistry(), CollectorRegistry()
    WorkerMetrics(worker)
    WorkerMetrics(serving)
    ServingMetrics(serving)
    TrainerMetrics(trainer)
    return {"stream": worker, "serve": serving, "train": trainer}


@pytest.mark.parametrize("process", ["stream", "serve", "train"])
def test_each_process_metrics_pass_promtool_check_metrics(process):
    exposition = generate_latest(_process_registries()[process]).decode()
    result = promtool("check", "metrics", stdin=exposition)
    assert result.returncode == 0, f"{process}: {result.stdout}{result.stderr}"


def _metric_names(promql: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', '""', promql)
    without_labels = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_labels)
    without_by = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", without_ranges)
    return {t for t in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", without_by) if t.startswith("streamrec_") or ":" in t}


def test_every_metric_the_dashboard_and_rules_name_is_exported_or_recorded():
    families = [family for r in _process_registries().values() for family in r.collect()]
    exported = {s.name for family in families for s in family.samples}
    # Labelled metrics with no child yet (lag per partition, HTTP latency per route) have no samples.
    exported |= {
        family.name + suffix
        for family in families
        for suffix in ("", *(("_bucket", "_count", "_sum") if family.type == "histogram" else ()))
    }
    recorded = {e.where.removeprefix("recording rule ") for e in recording_rules()}
    expressions = [
        *dashboard_expressions(),
        *recording_rules(),
        *annotation_expressions(),
        *({"where": a["alert"], "promql": a["expr"]} for a in alerts()),
    ]
    for e in expressions:
        where, promql = (e["where"], e["promql"]) if isinstance(e, dict) else (e.where, e.promql)
        unknown = _metric_names(promql) - exported - recorded
        assert not unknown, f"{where} names {sorted(unknown)}, which no process exports and no rule records"


def test_the_dashboard_reads_the_provisioned_data_source_and_has_a_uid():
    board = dashboard()
    source_uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    assert board["uid"] == "streamrec-overview" and board["templating"]["list"] == []
    targets = [t for p in board["panels"] for t in p.get("targets", [])]
    assert targets and all(t["datasource"]["uid"] == source_uid for t in targets)
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for shown in (
        "consumed",
        "lag",
        "dead-letter",
        "batch",
        "scoring",
        "freshness",
        "recall",
        "model version",
        "training runs",
        "snapshot age",
    ):
        assert shown in titles, f"the dashboard has no panel about {shown}"
