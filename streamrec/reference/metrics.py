"""The metrics page: every Prometheus metric each streamrec process exposes.

The registries are built the way the processes build them (the same metrics classes on a fresh
``CollectorRegistry``), so a metric added to a class appears here without editing the docs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from offline.metrics import TrainerMetrics
from serving.metrics import ServingMetrics
from stream.metrics import WorkerMetrics

EXPOSED_SUFFIX = {"counter": "_total", "info": "_info"}
NOT_LABELS = {"le", "quantile"}


@dataclass(frozen=True)
class Process:
    name: str
    commands: str
    build: Callable[[CollectorRegistry], list[object]]
    extends: str = ""


PROCESSES = (
    Process("stream worker", "`streamrec stream`", lambda r: [WorkerMetrics(r)]),
    Process(
        "serving worker",
        "`streamrec serve`, `streamrec demo` (the worker inside it)",
        lambda r: [ServingMetrics(r)],
        extends="stream worker",
    ),
    Process(
        "periodic trainer", "`streamrec train` (without `--once`), the demo's trainer", lambda r: [TrainerMetrics(r)]
    ),
)


@dataclass(frozen=True)
class MetricRow:
    name: str
    type: str
    help: str
    labels: tuple[str, ...]
    values: dict[str, tuple[str, ...]]


def _label_names(holders: list[object]) -> dict[str, tuple[str, ...]]:
    names: dict[str, tuple[str, ...]] = {}
    for holder in holders:
        for metric in vars(holder).values():
            if isinstance(metric, MetricWrapperBase):
                names[metric._name] = tuple(metric._labelnames)
    return names


def metrics_of(process: Process) -> list[MetricRow]:
    """Every metric family the process's registry holds, with its labels and the values exported at start."""
    registry = CollectorRegistry()
    label_names = _label_names(process.build(registry))
    rows = []
    for family in registry.collect():
        values: dict[str, set[str]] = {}
        for sample in family.samples:
            for label, value in sample.labels.items():
                if label not in NOT_LABELS:
                    values.setdefault(label, set()).add(value)
        labels = label_names.get(family.name) or tuple(values)
        rows.append(
            MetricRow(
                family.name + EXPOSED_SUFFIX.get(family.type, ""),
                family.type,
                family.documentation,
                labels,
                {label: tuple(sorted(v)) for label, v in values.items()},
            )
        )
    return sorted(rows, key=lambda row: row.name)


def _labels_cell(row: MetricRow) -> str:
    cells = []
    for label in row.labels:
        values = row.values.get(label)
        cells.append(f"`{label}` ({', '.join(values)})" if values and row.type != "info" else f"`{label}`")
    return ", ".join(cells)


def render() -> str:
    """Each process's metrics as Markdown tables: name, type, help, labels."""
    lines = [
        "# Metrics",
        "",
        "Generated from the metrics classes (`stream/metrics.py`, `serving/metrics.py`, `offline/metrics.py`). Every "
        "process serves them on `metrics.host:metrics.port` (default `127.0.0.1:9464`; the demo's trainer on the "
        "next port) and a serving worker also on `GET /metrics`. Counters are exposed with `_total`, histograms "
        "as `_bucket`, `_sum` and `_count`. Label values in brackets are exported at zero from the start, so that a "
        'rate over a quiet series is 0, not "no data"; no user or item id is ever a label.',
        "",
    ]
    for process in PROCESSES:
        also = f": every metric of the {process.extends}, and these" if process.extends else ""
        lines += [f"## {process.name}", "", f"Exposed by {process.commands}{also}.", ""]
        lines += ["| metric | type | help | labels |", "|---|---|---|---|"]
        for row in metrics_of(process):
            lines.append(f"| `{row.name}` | {row.type} | {row.help} | {_labels_cell(row)} |")
        lines.append("")
    return "\n".join(lines)
