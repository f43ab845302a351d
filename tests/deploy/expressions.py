"""Every PromQL expression operators will see: dashboard panels, recording rules, alert clauses.

Shared by the static checks (tests/deploy/test_prometheus.py) and the end-to-end test against a
real Prometheus (tests/integration/test_prometheus_scrapes_demo.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = DEPLOY / "prometheus" / "tests" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "streamrec.json"
DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"

# An alert is one or more `<expression> <op> <number>` clauses joined by `and`.
_CLAUSE = re.compile(r"^(?P<lhs>.+?)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<threshold>-?[0-9.]+(?:e-?[0-9]+)?)$", re.DOTALL)


@dataclass(frozen=True)
class Expression:
    where: str  # e.g. "dashboard panel 'Consumer lag', target B" -- for failure messages
    promql: str


def rule_groups() -> list[dict]:
    return [group for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]]


def recording_rules() -> list[Expression]:
    return [
        Expression(f"recording rule {r['record']}", r["expr"].strip())
        for g in rule_groups()
        for r in g["rules"]
        if "record" in r
    ]


def alerts() -> list[dict]:
    return [r for g in rule_groups() for r in g["rules"] if "alert" in r]


def alert_clauses(alert: dict) -> list[tuple[str, str, float]]:
    """The (expression, operator, threshold) clauses of an alert; raises if it is not of that form."""
    out = []
    for clause in re.split(r"\s+and\s+", " ".join(alert["expr"].split())):
        m = _CLAUSE.match(clause)
        if not m:
            raise ValueError(f"alert {alert['alert']}: {clause!r} is not '<expression> <op> <number>'")
        out.append((m["lhs"], m["op"], float(m["threshold"])))
    return out


def alert_expressions() -> list[Expression]:
    """Each clause with `bool`: 0 or 1 for every series, so a quiet system still returns data."""
    return [
        Expression(f"alert {a['alert']} clause {i}", f"{lhs} {op} bool {threshold:g}")
        for a in alerts()
        for i, (lhs, op, threshold) in enumerate(alert_clauses(a))
    ]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_expressions() -> list[Expression]:
    return [
        Expression(f"dashboard panel {p['title']!r}, target {t['refId']}", t["expr"])
        for p in dashboard()["panels"]
        for t in p.get("targets", [])
    ]


def annotation_expressions() -> list[Expression]:
    out = []
    for a in dashboard()["annotations"]["list"]:
        lhs, op, threshold = alert_clauses({"alert": a["name"], "expr": a["expr"]})[0]
        out.append(Expression(f"dashboard annotation {a['name']!r}", f"{lhs} {op} bool {threshold:g}"))
    return out
