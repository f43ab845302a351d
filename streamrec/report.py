"""``streamrec report``: one self-contained HTML page of a run, from its run record.

Sections: the run's figures; prequential recall@k over the stream per learner with its drift
detections; scoring-latency, freshness and HTTP-latency histograms with p50/p99; the model versions
over time (promotions, rollbacks, when this run started serving each); and, given the JSON of
``streamrec train --once --ablations --json``, the distillation, curriculum and multi-task ablations.

Every plot is a PNG drawn with matplotlib (Agg, no pyplot state) and embedded as a ``data:`` URL:
the page loads nothing from anywhere. A part the record lacks is a sentence, not an error.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from streamrec.run_record import (
    Change,
    Histogram,
    LearnerCurve,
    Prequential,
    RecordError,
    RunRecord,
)

log = logging.getLogger(__name__)

ABLATIONS_HINT = "write it with `streamrec train --once --ablations --json > ablations.json`"
LATENCY_TITLES = {
    "scoring": "Scoring latency (one user's top-k: candidates, model, blend)",
    "freshness": "Freshness (event timestamp to its recommendation read back from Kafka)",
    "http": "HTTP request latency (GET /v1/recommendations/USER, end to end)",
}
# Columns of the ablation tables, in this order when present; others follow.
ABLATION_COLUMNS = (
    "auc_click",
    "recall@10",
    "ndcg@10",
    "validation_ndcg@10",
    "best_epoch",
    "validation_loss",
    "seconds",
    "auc_conversion",
)
COLOURS = {
    "popularity": "#7f7f7f",
    "item_knn": "#1f77b4",
    "isgd_mf": "#2ca02c",
    "click_model": "#9467bd",
    "serving": "#d62728",
}


# -- ablations input --------------------------------------------------------------------------------


class Ablations(msgspec.Struct, kw_only=True):
    """The shape ``offline.ablation.run_ablations`` returns (figures may be NaN: auc with one class)."""

    curriculum: dict[str, dict[str, float | None]] = {}
    distillation: dict[str, dict[str, float | None]] = {}
    multi_task: dict[str, dict[str, float | None] | int] = {}
    run: dict[str, Any] = msgspec.field(name="_run", default_factory=dict)


def load_ablations(path: str | Path) -> Ablations:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RecordError(f"no ablations file at {path}; {ABLATIONS_HINT}, or leave out --ablations") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordError(f"cannot read {path} ({exc}); {ABLATIONS_HINT}") from None
    obj = None
    # `train --json` prints one JSON line; take the last line that parses if anything else was captured.
    for candidate in (text, *reversed(text.strip().splitlines())):
        try:
            obj = json.loads(candidate)  # json, not msgspec: the trainer writes NaN as NaN
            break
        except ValueError:
            continue
    if not isinstance(obj, dict):
        raise RecordError(f"{path} holds no JSON object; {ABLATIONS_HINT}")
    try:
        ablations = msgspec.convert(obj, Ablations)
    except msgspec.ValidationError as exc:
        raise RecordError(
            f"{path} is not the output of `streamrec train --once --ablations --json` ({exc}); {ABLATIONS_HINT}"
        ) from None
    if not (ablations.curriculum or ablations.distillation or ablations.multi_task):
        raise RecordError(f"{path} has none of curriculum, distillation, multi_task; {ABLATIONS_HINT}")
    return ablations


# -- figures ----------------------------------------------------------------------------------------


def _figure(width: float = 9.0, height: float = 4.0):
    # No pyplot: no global state, no interactive backend.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def windowed_recall(
    events: list[int], curve: LearnerCurve, points: int = 40, min_scored: int = 20
) -> tuple[list[int], list[float]]:
    """(stream position at each window's end, recall over the window) from cumulative counts.

    Windows are as wide as needed for ``points`` windows over the run, and hold ``min_scored``
    scored clicks at least (a window of 3 clicks says nothing).
    """
    if len(events) < 2:
        return [], []
    total = curve.scored[-1] - curve.scored[0]
    width = max(min_scored, math.ceil(total / points))
    xs, ys = [], []
    start = 0
    for i in range(1, len(events)):
        scored = curve.scored[i] - curve.scored[start]
        if scored >= width or (i == len(events) - 1 and scored >= min_scored):
            xs.append(events[i])
            ys.append((curve.hits[i] - curve.hits[start]) / scored)
            start = i
    return xs, ys


def prequential_figure(p: Prequential):
    names = list(p.learners)
    cols = 2 if len(names) > 1 else 1
    rows = math.ceil(len(names) / cols)
    fig = _figure(10.0, 2.8 * rows + 0.6)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    for ax, name in zip(axes, names):
        curve = p.learners[name]
        colour = COLOURS.get(name, "#333333")
        xs, ys = windowed_recall(p.events, curve)
        if xs:
            ax.plot(xs, ys, marker=".", color=colour, label=f"recall@{p.k}, windowed")
        cum = [(e, h / s) for e, h, s in zip(p.events, curve.hits, curve.scored) if s > 0]
        if cum:
            ax.plot(
                [e for e, _ in cum],
                [r for _, r in cum],
                linestyle="--",
                linewidth=1,
                color=colour,
                alpha=0.6,
                label=f"recall@{p.k}, cumulative",
            )
        else:
            ax.text(0.5, 0.5, "no scored clicks", transform=ax.transAxes, ha="center", va="center")
        for i, at in enumerate(curve.drift_at):
            ax.axvline(at, color="#d62728", linestyle=":", linewidth=1.5, label="drift detected" if i == 0 else None)
        drift = (
            f"{len(curve.drift_at)} drift detection(s)"
            if curve.drift_monitored and curve.drift_at
            else "no drift detected"
            if curve.drift_monitored
            else "no drift monitor"
        )
        ax.set_title(f"{'serving path' if name == 'serving' else name}: {drift}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    for ax in axes[-cols:]:
        ax.set_xlabel("events applied (stream position)")
    for ax in axes[::cols]:
        ax.set_ylabel(f"recall@{p.k}")
    axes[0].set_ylim(bottom=0)
    return fig


def histogram_figure(name: str, h: Histogram):
    fig = _figure(9.0, 3.4)
    ax = fig.subplots()
    ax.stairs(h.counts, h.edges, fill=True, color="#1f77b4", alpha=0.7)
    for q, value, style in (("p50", h.p50, "--"), ("p99", h.p99, ":")):
        if value is not None:
            ax.axvline(value, color="#d62728", linestyle=style, linewidth=1.5, label=f"{q} {value:,.3g} ms")
    if h.log_scale:
        ax.set_xscale("log")
    ax.set_xlabel("milliseconds" + (" (log scale)" if h.log_scale else ""))
    ax.set_ylabel("samples")
    ax.set_title(f"{LATENCY_TITLES.get(name, name)}: n = {h.n:,}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _time(stamp: str) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None


def _plot_history(ax: Any, history: list[Change], end: Any) -> None:
    """The current version as a step line over time, with a marker per promotion and rollback."""
    changes = [(t, c) for c in history if (t := _time(c.at)) is not None]
    if changes:
        times = [t for t, _ in changes] + ([end] if end and end > changes[-1][0] else [])
        versions = [c.version for _, c in changes] + ([changes[-1][1].version] if len(times) > len(changes) else [])
        ax.step(times, versions, where="post", color="#555555", linewidth=1, label="current version")
        for action, marker, colour in (("promote", "^", "#2ca02c"), ("rollback", "v", "#ff7f0e")):
            pts = [(t, c.version) for t, c in changes if c.action == action]
            if pts:
                ax.scatter(
                    [t for t, _ in pts],
                    [v for _, v in pts],
                    marker=marker,
                    s=80,
                    color=colour,
                    zorder=3,
                    label=f"{action} ({len(pts)})",
                )


def models_figure(record: RunRecord):
    import matplotlib.dates as mdates

    m = record.models
    fig = _figure(10.0, 3.6)
    ax = fig.subplots()
    start, end = _time(record.started_at), _time(record.finished_at)
    if start and end:
        ax.axvspan(start, end, color="#dddddd", alpha=0.5, label="this run")
    _plot_history(ax, m.history, end)
    registered = [(t, v.version) for v in m.versions if (t := _time(v.created_at)) is not None]
    if registered:
        ax.scatter(
            [t for t, _ in registered],
            [v for _, v in registered],
            marker="o",
            s=25,
            facecolors="none",
            edgecolors="#1f77b4",
            zorder=3,
            label="registered (created)",
        )
    served = [(t, s.version) for s in m.served if (t := _time(s.at)) is not None]
    if served:
        ax.scatter(
            [t for t, _ in served],
            [v for _, v in served],
            marker="*",
            s=120,
            color="#9467bd",
            zorder=4,
            label="served by this run from",
        )
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    versions = {c.version for c in m.history} | {v.version for v in m.versions} | {x.version for x in m.served}
    if versions:  # whole version numbers only, with room around them
        lo, hi = min(versions), max(versions)
        ax.set_ylim(lo - 0.5, hi + 0.5)
        ax.set_yticks(range(lo, hi + 1, max(1, (hi - lo) // 10 + 1)))
    ax.set_ylabel("model version")
    ax.set_xlabel("time (UTC)")
    ax.set_title("Model versions over time", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def ablations_figure(a: Ablations):
    panels = [
        (title, variants, metrics)
        for title, variants, metrics in (
            ("distillation (student, cumulative)", a.distillation, ("ndcg@10", "validation_ndcg@10")),
            ("curriculum (teacher)", a.curriculum, ("ndcg@10", "validation_ndcg@10")),
            (
                "multi-task (conversion AUC)",
                {k: v for k, v in a.multi_task.items() if isinstance(v, dict)},
                ("auc_conversion",),
            ),
        )
        if variants
    ]
    fig = _figure(4.0 * len(panels) + 1.0, 3.8)
    axes = fig.subplots(1, len(panels), squeeze=False).ravel()
    for ax, (title, variants, metrics) in zip(axes, panels):
        names = list(variants)
        width = 0.8 / len(metrics)
        for j, metric in enumerate(metrics):
            values = [_number(variants[n].get(metric)) for n in names]
            xs = [i + (j - (len(metrics) - 1) / 2) * width for i in range(len(names))]
            bars = ax.bar(xs, [v if v is not None else 0.0 for v in values], width, label=metric)
            ax.bar_label(bars, labels=[_fmt(v) for v in values], fontsize=7, rotation=90, padding=2)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", rotation_mode="anchor", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.margins(y=0.25)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    return fig


# -- the page ---------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "n/a" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value.is_integer() and abs(value) >= 1:
            return f"{int(value):,}"
        return f"{value:.4f}" if abs(value) < 1 else f"{value:.4g}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _p(text: str, cls: str = "") -> str:
    return f"<p{f' class={cls!r}' if cls else ''}>{html.escape(text)}</p>"


class _Page:
    """Collects sections; figures are queued and rendered in one pass with a progress line each."""

    def __init__(self) -> None:
        self.parts: list[str | tuple[str, str, Callable[[], Any]]] = []

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def plot(self, plot_id: str, alt: str, draw: Callable[[], Any]) -> None:
        self.parts.append((plot_id, alt, draw))

    def render(self) -> tuple[list[str], list[str]]:
        plots = [p for p in self.parts if isinstance(p, tuple)]
        out, ids = [], []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            plot_id, alt, draw = part
            ids.append(plot_id)
            log.info("report: plot %d/%d: %s", len(ids), len(plots), plot_id)
            data = _png(draw())
            out.append(
                f'<figure><img class="plot" data-plot="{html.escape(plot_id)}" alt="{html.escape(alt)}" '
                f'src="data:image/png;base64,{data}"><figcaption>{html.escape(alt)}</figcaption></figure>'
            )
        return out, ids


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td { white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f3f3f3; }
figure { margin: 1em 0; } img.plot { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
p.missing { color: #8a5a00; background: #fff7e0; padding: 0.5em 0.8em; border-left: 3px solid #e0a800; }
"""


def render_report(
    record: RunRecord,
    ablations: Ablations | None = None,
    title: str = "streamrec run report",
) -> tuple[str, list[str]]:
    """The HTML page and the ids of its plots, in page order."""
    page = _Page()
    s = record.summary
    page.add(f"<h1>{html.escape(title)}</h1>")
    page.add(_p(f"{record.source}, {record.started_at} to {record.finished_at} (UTC)."))
    facts = [
        ("events produced", s.get("events_produced")),
        ("events applied", s.get("events_applied")),
        ("seconds", s.get("seconds")),
        ("events per second", s.get("events_per_s")),
        ("dead-lettered", s.get("dead_lettered")),
        ("recommendations published", s.get("recommendations_published")),
        ("model versions served", ", ".join(map(str, s.get("model_versions_served") or [])) or "none"),
    ]
    model = s.get("model") or {}
    facts += [
        ("first model served after (s)", model.get("first_served_after_s")),
        ("share of recommendations the model scored", model.get("share_of_recommendations_scored")),
        ("the model's blend weight, learned (mean)", (model.get("blend_weight_learned") or {}).get("mean")),
    ]
    page.add(_table(["figure", "value"], [[k, v] for k, v in facts if v is not None]))

    _prequential_section(page, record)
    _latency_section(page, record)
    _models_section(page, record)
    _ablations_section(page, ablations)

    body, ids = page.render()
    doc = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    return doc, ids


def _prequential_section(page: _Page, record: RunRecord) -> None:
    p = record.prequential
    page.add(f"<h2>Prequential recall@{p.k} over the stream</h2>")
    page.add(
        _p(
            f"Test-then-learn: one click in {p.every} is ranked by every learner against the whole catalogue "
            "before anyone learns from it. Solid: recall over consecutive windows of scored clicks; dashed: "
            "cumulative; dotted red: where the learner's drift detector (Page-Hinkley on its loss) fired."
        )
    )
    if "serving" not in p.learners:
        page.add(
            _p(
                "The serving path (candidates, student, blend) is not scored test-then-learn in this run; "
                "`streamrec eval prequential --serving` measures it offline."
            )
        )
    final = record.summary.get("prequential")
    final = final if isinstance(final, dict) else {}
    rows = []
    for name, curve in p.learners.items():
        figures = final.get(name) if isinstance(final.get(name), dict) else {}
        recall = curve.hits[-1] / curve.scored[-1] if curve.scored and curve.scored[-1] else None
        rows.append(
            [
                name,
                curve.scored[-1] if curve.scored else 0,
                recall,
                figures.get(f"ndcg@{p.k}"),
                len(curve.drift_at) if curve.drift_monitored else "no monitor",
            ]
        )
    if rows:
        page.add(_table(["learner", "scored clicks", f"recall@{p.k}", f"ndcg@{p.k}", "drift detections"], rows))
    if not p.learners or len(p.events) < 2:
        page.add(_p("The run recorded fewer than two samples of the learners: too short for a curve.", "missing"))
        return
    page.plot(
        "prequential",
        f"Prequential recall@{p.k} over the stream per learner ({', '.join(p.learners)}), drift detections marked",
        lambda: prequential_figure(p),
    )


def _latency_section(page: _Page, record: RunRecord) -> None:
    page.add("<h2>Scoring latency and freshness</h2>")
    rows = [[name, h.n, h.p50, h.p99, h.mean, h.max] for name, h in record.latency_ms.items()]
    if rows:
        page.add(_table(["measure (ms)", "samples", "p50", "p99", "mean", "max"], rows))
    for name in ("scoring", "freshness", "http"):
        h = record.latency_ms.get(name)
        label = LATENCY_TITLES[name].split(" (")[0]
        if h is None or not h.n or not h.counts:
            page.add(_p(f"{label}: no samples in this run.", "missing"))
            continue
        page.plot(
            f"latency-{name}",
            f"{label} histogram: p50 {_fmt(h.p50)} ms, p99 {_fmt(h.p99)} ms, n = {h.n:,}",
            lambda name=name, h=h: histogram_figure(name, h),
        )
    for name, h in record.latency_ms.items():
        if name not in LATENCY_TITLES and h.n and h.counts:
            page.plot(
                f"latency-{name}",
                f"{name} histogram: p50 {_fmt(h.p50)} ms, p99 {_fmt(h.p99)} ms",
                lambda name=name, h=h: histogram_figure(name, h),
            )


def _models_section(page: _Page, record: RunRecord) -> None:
    m = record.models
    page.add("<h2>Model versions</h2>")
    if not (m.versions or m.history or m.served):
        page.add(
            _p(
                "No model was registered or served during this run: the trainer registers one after "
                "--train-every logged events (the learners served on their own meanwhile).",
                "missing",
            )
        )
        return
    page.plot(
        "models",
        f"Model versions over time: {len(m.history)} promotion/rollback(s), "
        f"{len(m.versions)} version(s) registered, {len(m.served)} served by this run",
        lambda: models_figure(record),
    )
    if m.history:
        metrics = sorted({k for c in m.history for k in c.validation})
        page.add(
            _table(
                ["at (UTC)", "action", "version", *[f"validation {k}" for k in metrics]],
                [[c.at, c.action, c.version, *[c.validation.get(k) for k in metrics]] for c in m.history],
            )
        )
    else:
        page.add(_p("The registry has no promotion or rollback history.", "missing"))
    if m.versions:
        metrics = sorted({k for v in m.versions for k in v.validation})
        page.add(
            _table(
                ["version", "created (UTC)", "current", *[f"validation {k}" for k in metrics], "problem"],
                [
                    [
                        v.version,
                        v.created_at or "-",
                        "yes" if v.is_current else "",
                        *[v.validation.get(k) for k in metrics],
                        v.problem or "",
                    ]
                    for v in m.versions
                ],
            )
        )
    if m.served:
        page.add(
            _table(
                ["served from (UTC)", "version", "seconds into the run", "events applied by then"],
                [[x.at, x.version, x.t_s, x.events] for x in m.served],
            )
        )


def _ablations_section(page: _Page, a: Ablations | None) -> None:
    page.add("<h2>Ablations: distillation, curriculum, multi-task</h2>")
    if a is None:
        page.add(_p(f"No ablations file was given: {ABLATIONS_HINT}, then pass --ablations ablations.json.", "missing"))
        return
    if a.run:
        page.add(
            _p(
                f"One offline run on {_fmt(a.run.get('events'))} events, "
                f"{_fmt(a.run.get('test_clicks_ranked'))} ranked test clicks, {_fmt(a.run.get('seconds'))} s. "
                "Validation NDCG@10 is the figure that chooses between variants; test figures are reported."
            )
        )
    for title, variants in (
        ("Distillation (student, each step adds to the one before)", a.distillation),
        ("Curriculum (teacher)", a.curriculum),
    ):
        if not variants:
            page.add(_p(f"{title}: not in the file.", "missing"))
            continue
        keys = {k for v in variants.values() for k in v}
        columns = [c for c in ABLATION_COLUMNS if c in keys] + sorted(keys - set(ABLATION_COLUMNS))
        page.add(f"<h3>{html.escape(title)}</h3>")
        page.add(_table(["variant", *columns], [[n, *[v.get(c) for c in columns]] for n, v in variants.items()]))
    mt = {k: v for k, v in a.multi_task.items() if isinstance(v, dict)}
    if mt:
        page.add(
            f"<h3>Multi-task (conversion AUC on {_fmt(a.multi_task.get('test_conversions'))} test conversions)</h3>"
        )
        page.add(_table(["variant", "auc_conversion"], [[n, v.get("auc_conversion")] for n, v in mt.items()]))
    else:
        page.add(_p("Multi-task: not in the file.", "missing"))
    page.plot(
        "ablations",
        "Ablations: test and validation NDCG@10 per distillation step and curriculum setting; "
        "conversion AUC of the multi-task and single-task teachers",
        lambda: ablations_figure(a),
    )


def write_report(
    record_path: str | Path,
    out: str | Path | None = None,
    ablations_path: str | Path | None = None,
) -> tuple[Path, list[str]]:
    """Render the record at ``record_path`` (and the ablations file) to ``out`` (default: beside it)."""
    from streamrec.run_record import load_record

    record = load_record(record_path)
    ablations = load_ablations(ablations_path) if ablations_path else None
    out = Path(out) if out else Path(record_path).with_suffix(".html")

    def unwritable(exc: OSError) -> RecordError:
        return RecordError(f"cannot write {out} ({exc.strerror}); pass -o PATH in a writable directory")

    try:  # before the plots are drawn, not after
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise unwritable(exc) from None
    doc, ids = render_report(record, ablations)
    try:
        out.write_text(doc, encoding="utf-8")
    except OSError as exc:
        raise unwritable(exc) from None
    return out, ids
