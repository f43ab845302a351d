"""The results page, generated from the benches' JSON in ``docs/results/``.

``streamrec bench quality`` and ``streamrec bench stream --output`` write each run's figures with a
``_run`` stamp (date, commit, machine, command); every table here carries that stamp, so no figure
appears without the run that produced it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
STAMP_KEYS = ("date", "commit", "machine", "command")


def stamp(run: dict[str, Any]) -> str:
    """One line naming the run: date, commit, machine and command."""
    missing = [key for key in STAMP_KEYS if not run.get(key)]
    if missing:
        raise ValueError(f"results run stamp lacks {', '.join(missing)}: rerun the bench that wrote it")
    dirty = " (uncommitted changes)" if run.get("dirty") else ""
    return f"*Run {run['date']}, commit `{run['commit']}`{dirty}, {run['machine']}: `{run['command']}`.*"


def _f(x: Any, sign: str = "") -> str:
    return "-" if x is None else f"{x:{sign}.4f}"


def _ci(estimate: Any, low: Any, high: Any, sign: str = "") -> str:
    return f"{_f(estimate, sign)} [{_f(low, sign)}, {_f(high, sign)}]"


def _est(e: dict[str, Any] | None, sign: str = "") -> str:
    return "-" if not e else _ci(e.get("estimate", e.get("lead")), e["low"], e["high"], sign)


def _table(header: list[str], rows: list[list[str]], run: dict[str, Any]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, "", stamp(run), ""]


def next_click(dataset: dict[str, Any], k: int, run: dict[str, Any]) -> list[str]:
    """Protocol (a): each ranker's recall and NDCG with intervals, its lead over popularity, the gap closed."""
    p = dataset["prequential"]
    rule = p.get("served_rule", {})
    held = "" if dataset.get("held_out", True) else " **Not held out** (read while designing)."
    lines = [
        f"#### {dataset['dataset']}: (a) next click",
        "",
        f"{p['clicks']:,} clicks reported; re-click share {rule.get('reclick_share', 0):.1%}.{held}",
        "",
    ]
    rankers = sorted(p["rankers"].items(), key=lambda kv: -kv[1][f"recall@{k}"])
    rows = [
        [
            name,
            _ci(r[f"recall@{k}"], *r[f"recall@{k}_interval"]),
            _ci(r[f"ndcg@{k}"], *r[f"ndcg@{k}_interval"]),
            _est(r.get(f"recall@{k}_lead_over_popularity"), "+"),
            _f(r.get("gap_closed")),
        ]
        for name, r in rankers
    ]
    header = ["ranker", f"recall@{k}", f"ndcg@{k}", "lead over popularity", "gap closed"]
    return lines + _table(header, rows, run)


def slates(dataset: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """Protocol (b): GAUC and NDCG of the clicked among the shown, and the click model's log-loss."""
    rows = [[name, _est(r["gauc"]), _est(r["ndcg@10"])] for name, r in dataset["slate"].items()]
    lines = [f"#### {dataset['dataset']}: (b) slates, {dataset.get('visits', 0):,} visits", ""]
    loss = dataset.get("click_model_logloss")
    if loss:
        lines += [
            f"Click model log-loss {_est(loss['model_logloss'])} against the constant click-through rate's "
            f"{_est(loss['constant_logloss'])} (difference {_est(loss['model_minus_constant'], '+')}).",
            "",
        ]
    return lines + _table(["ranker", "GAUC", "NDCG of the clicked among the shown"], rows, run)


def counterfactual(dataset: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """Protocol (c): self-normalised IPS click-through rate, conversion rate and (where conversions
    carry a value) value per impression of each ranker's top k against the logging policy."""
    rows = [
        [name, _est(c["click"]["ranker"]), _est(c["click"]["logging"]), _est(c["click"]["lead"], "+"),
         _est(c.get("conversion", {}).get("ranker")), _est(c.get("conversion", {}).get("logging")),
         _est(c.get("conversion", {}).get("lead"), "+"), f"{c.get('effective_sample_size', 0):,.0f}"]
        for name, c in dataset["counterfactual"].items()
    ]  # fmt: skip
    header = ["ranker", "CTR", "logging CTR", "ranker - logging", "conversion rate", "logging conversion rate"]
    header += ["ranker - logging (conversions)", "effective sample size"]
    if all("value" in c for c in dataset["counterfactual"].values()):
        header[-1:-1] = ["value / impression", "logging value / impression"]
        for row, c in zip(rows, dataset["counterfactual"].values()):
            row[-1:-1] = [_est(c["value"]["ranker"]), _est(c["value"]["logging"])]
    return [f"#### {dataset['dataset']}: (c) counterfactual", "", *_table(header, rows, run)]


def conversions(dataset: dict[str, Any], k: int, run: dict[str, Any]) -> list[str]:
    """Protocol (a) for conversions: each credited with its click's rank, beside the click recall."""
    c = dataset["prequential"].get("conversions")
    if not c or not c.get("rankers"):
        return []
    clicks = dataset["prequential"]["rankers"]
    recall, value = f"recall@{k}", f"value_recall@{k}"
    rows = [
        [
            name,
            _f(clicks[name][recall]),
            _ci(r[recall], *r[f"{recall}_interval"]),
            _ci(r[f"ndcg@{k}"], *r[f"ndcg@{k}_interval"]),
            _est(r.get(f"{recall}_lead_over_popularity"), "+"),
            *([_ci(r.get(value), *(r.get(f"{value}_interval") or [None, None]))] if c["valued"] else []),
        ]
        for name, r in sorted(c["rankers"].items(), key=lambda kv: -(clicks[kv[0]][recall] or 0))
    ]
    header = ["ranker", f"click {recall}", f"conversion {recall}", f"conversion ndcg@{k}", "lead over popularity"]
    lines = [
        f"#### {dataset['dataset']}: (a) conversions",
        "",
        f"{c['conversions']:,} conversions, each credited with its click's rank; {c['unmatched']:,} without a "
        "scored click, left out.",
        "",
    ]
    return lines + _table([*header, *([f"value {recall}"] if c["valued"] else [])], rows, run)


def across_seeds(bench: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """Each generated world's recall@k over its seeds: mean [min, max]."""
    k = run.get("k", 10)
    lines = []
    for world, result in bench.get("across_seeds", {}).items():
        rankers = sorted(result["rankers"].items(), key=lambda kv: -kv[1][f"recall@{k}_mean"])
        rows = [[name, _ci(r[f"recall@{k}_mean"], r["min"], r["max"])] for name, r in rankers]
        lines += [f"#### {world}, seeds {', '.join(map(str, result['seeds']))}", ""]
        lines += _table(["ranker", f"recall@{k}, mean [min, max]"], rows, run)
    return lines


def offline(bench: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """Protocol (d): teacher, student and no-KD student on the temporal split, and the paired comparisons."""
    o = bench.get("offline")
    if not o:
        return []
    seeds = ", ".join(map(str, o.get("seeds", {}).get("trained", [])))
    models = ["popularity", "teacher", "student", "student_no_kd"]
    rows = [[m, _f(o[m].get("auc_click")), _f(o[m]["recall@10"]), _f(o[m]["ndcg@10"])] for m in models if m in o]
    lines = ["### Offline temporal split, protocol (d)", "", f"Mean over training seeds {seeds}.", ""]
    lines += _table(["model", "auc_click", "recall@10", "ndcg@10"], rows, run)
    comparisons = [[name.replace("_", " "), _est(c, "+")] for name, c in o.get("comparisons", {}).items()]
    return lines + _table(
        ["paired comparison (ndcg@10)", "estimate [95 % interval, resampling users]"], comparisons, run
    )


def recbole(bench: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """RecBole's global temporal 8:1:1 split, per-user metrics averaged over test users."""
    split = bench.get("recbole_split")
    if not split:
        return []
    rows = [[name, _est(r["recall@10"]), _est(r["ndcg@10"])] for name, r in split["rankers"].items()]
    lines = ["### RecBole's global temporal 8:1:1 split", "", f"{split.get('test_users', 0)} test users.", ""]
    return lines + _table(["ranker", "recall@10", "ndcg@10"], rows, run)


def throughput(bench: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """``bench stream``: the worker's rate beside the raw consume + decode rate, run by run."""
    rows = [
        [str(i + 1), f"{worker:,}", f"{raw:,}"]
        for i, (worker, raw) in enumerate(zip(bench["worker_runs"], bench["raw_runs"], strict=True))
    ]
    rows.append(["**median**", f"**{bench['events_per_s']:,}**", f"**{bench['raw_per_s']:,}**"])
    return [
        f"{bench['events']:,} synthetic events, {bench['partitions']} partitions, the ranking test on every "
        f"{bench['prequential_every']}th click; events per second of wall time in one process after a 20 % "
        f"warm-up. Worker over raw: {bench['ratio']}.",
        "",
        *_table(["run", "worker events/s", "raw consume + decode events/s"], rows, run),
    ]


def render_run(name: str, bench: dict[str, Any]) -> list[str]:
    """One bench output: its stamp, then every table it holds."""
    run = bench["_run"]
    if run.get("bench") == "stream":
        return [f"## {name}: worker throughput", "", *throughput(bench, run)]
    lines = [f"## {name}", "", stamp(run), "", f"The bench's own text output: [{name}.md](../results/{name}.md).", ""]
    lines += ["### Generated worlds across seeds", "", *across_seeds(bench, run)] if bench.get("across_seeds") else []
    lines += offline(bench, run) + recbole(bench, run)
    lines += ["### Per dataset and seed", ""]
    for dataset in bench.get("datasets", []):
        lines += next_click(dataset, run.get("k", 10), run)
        lines += conversions(dataset, run.get("k", 10), run)
        lines += slates(dataset, run) if dataset.get("slate") else []
        lines += counterfactual(dataset, run) if dataset.get("counterfactual") else []
    return lines


def render(directory: Path = RESULTS) -> str:
    """Every results file as Markdown, newest run first."""
    benches = {path.stem: json.loads(path.read_text()) for path in directory.glob("*.json")}
    lines = [
        "# Results from the benches",
        "",
        "Generated from `docs/results/*.json`, which `streamrec bench quality` and `streamrec bench stream "
        "--output` write; every table names the run "
        "that produced it. How the figures are measured: [the evaluation protocol](../protocol.md).",
        "",
    ]
    for name, bench in sorted(benches.items(), key=lambda kv: kv[1]["_run"]["date"], reverse=True):
        lines += render_run(name, bench)
    return "\n".join(lines)
