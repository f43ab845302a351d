"""``bench quality``'s result as text tables for people (the JSON is for machines)."""

from __future__ import annotations

from typing import Any


def _ci(figure: Any, interval: Any) -> str:
    if figure is None:
        return "-"
    return f"{figure:.4f} [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else f"{figure:.4f}"


def _lead(lead: dict[str, Any] | None) -> str:
    if not lead:
        return "-"
    return f"{lead['lead']:+.4f} [{lead['low']:+.4f}, {lead['high']:+.4f}]"


def _rows(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return [line(header), line(["-" * w for w in widths]), *map(line, rows)]


def prequential_table(result: dict[str, Any], k: int) -> list[str]:
    p = result["prequential"]
    rule = p["served_rule"]
    held = "" if result["held_out"] else "; NOT held out (read while designing)"
    out = [
        f"{result['dataset']}: (a) next click, {p['clicks']:,} clicks reported (shares {p['report']}), "
        f"re-clicks {rule['reclick_share']:.1%}, new items {rule['new_item_share']:.1%}, "
        f"~{rule['mean_catalogue_items']:.0f} items ranked{held}"
    ]
    recall, ndcg = f"recall@{k}", f"ndcg@{k}"
    rows = []
    for name, f in sorted(p["rankers"].items(), key=lambda kv: -(kv[1][recall] or 0)):
        if name.startswith("serving, blend"):
            continue
        label = name if name != "serving" or result.get("serving", {}).get("student") else "serving (no student)"
        rows.append(
            [
                label,
                _ci(f[recall], f.get(f"{recall}_interval")),
                _ci(f[ndcg], f.get(f"{ndcg}_interval")),
                _lead(f.get(f"{recall}_lead_over_popularity")),
                f"{f['gap_closed']:.2f}" if "gap_closed" in f else "-",
            ]
        )
    out += _rows(["ranker", recall, ndcg, "lead over popularity", "gap closed"], rows)
    over_knn = p["rankers"].get("serving", {}).get(f"{recall}_lead_over_item_knn")
    return out + ([f"serving's lead over item_knn (paired, users resampled): {_lead(over_knn)}"] if over_knn else [])


def slate_table(result: dict[str, Any]) -> list[str]:
    if "slate" not in result:
        return []
    out = [f"{result['dataset']}: (b) slates, {result['visits']:,} visits"]
    rows = [
        [name, _interval(s["gauc"]), _interval(next(v for key, v in s.items() if key.startswith("ndcg@")))]
        for name, s in result["slate"].items()
    ]
    out += _rows(["ranker", "GAUC", "NDCG of clicked among shown"], rows)
    ll = result.get("click_model_logloss")
    if ll:
        out.append(
            f"click model log-loss {ll['model_logloss']['estimate']:.4f} vs constant CTR "
            f"{ll['constant_logloss']['estimate']:.4f} (difference {_interval(ll['model_minus_constant'], '+')})"
        )
    return out


def _interval(i: dict[str, Any], sign: str = "") -> str:
    """An Interval's dict as 'estimate [low, high]'; sign '+' for differences."""
    if i["estimate"] is None:
        return "-"
    return f"{i['estimate']:{sign}.4f} [{i['low']:{sign}.4f}, {i['high']:{sign}.4f}]"


def counterfactual_table(result: dict[str, Any]) -> list[str]:
    """Each ranker's rates with its paired lead over the logging policy, whose own rates are the
    first row (the same log for every ranker, so one row)."""
    if "counterfactual" not in result:
        return []
    figures = result["counterfactual"]
    valued = all("value" in c for c in figures.values())
    logged = next(iter(figures.values()))
    out = [
        f"{result['dataset']}: (c) self-normalised IPS click-through rate, conversion rate"
        f"{' and value per impression' if valued else ''} of each ranker's top k, beside the logging policy's"
    ]
    header = ["ranker", "CTR", "ranker - logging", "conversion rate", "ranker - logging"]
    rows = [["logging policy", *(x for y in ("click", "conversion") for x in (_interval(logged[y]["logging"]), "-"))]]
    rows += [
        [
            name,
            _interval(c["click"]["ranker"]),
            _interval(c["click"]["lead"], "+"),
            _interval(c["conversion"]["ranker"]),
            _interval(c["conversion"]["lead"], "+"),
        ]
        for name, c in figures.items()
    ]
    if valued:
        header.append("value / impression")
        rows[0].append(_interval(logged["value"]["logging"]))
        for row, c in zip(rows[1:], figures.values()):
            row.append(_interval(c["value"]["ranker"]))
    for row, c in zip(rows, [None, *figures.values()]):
        row.append(f"{c['effective_sample_size']:.0f}" if c else "-")
    return out + _rows([*header, "ESS"], rows)


def conversion_table(result: dict[str, Any], k: int) -> list[str]:
    """Protocol (a) on conversions, each credited with its click's rank, beside the click recall."""
    c = result["prequential"].get("conversions")
    if not c or not c["rankers"]:
        return []
    clicks = result["prequential"]["rankers"]
    recall, ndcg, value = f"recall@{k}", f"ndcg@{k}", f"value_recall@{k}"
    out = [
        f"{result['dataset']}: (a) conversions, {c['conversions']:,} credited with the rank of their click "
        f"({c['unmatched']:,} without a scored click, left out)"
    ]
    header = ["ranker", f"click {recall}", f"conversion {recall}", f"conversion {ndcg}", "lead over popularity"]
    rows = []
    for name, f in sorted(c["rankers"].items(), key=lambda kv: -(clicks[kv[0]][recall] or 0)):
        if name.startswith("serving, blend"):
            continue
        label = name if name != "serving" or result.get("serving", {}).get("student") else "serving (no student)"
        rows.append(
            [
                label,
                "-" if clicks[name][recall] is None else f"{clicks[name][recall]:.4f}",
                _ci(f[recall], f.get(f"{recall}_interval")),
                _ci(f[ndcg], f.get(f"{ndcg}_interval")),
                _lead(f.get(f"{recall}_lead_over_popularity")),
                *([_ci(f.get(value), f.get(f"{value}_interval"))] if c["valued"] else []),
            ]
        )
    return out + _rows([*header, *([f"value {recall}"] if c["valued"] else [])], rows)


def recbole_table(split: dict[str, Any]) -> list[str]:
    k = split["k"]
    sizes = split["split"]
    out = [
        f"ml-100k, (d) RecBole's global temporal 8:1:1 split, full ranking, {split['test_users']} test users "
        f"(per-user Recall@{k}/NDCG@{k}, averaged over users); interactions {sizes['interactions']}"
    ]
    rows = [[name, _interval(f[f"recall@{k}"]), _interval(f[f"ndcg@{k}"])] for name, f in split["rankers"].items()]
    return out + _rows(["ranker", f"recall@{k}", f"ndcg@{k}"], rows)


def drift_table(result: dict[str, Any], k: int) -> list[str]:
    """Protocol (e): each ranker's recall in windows around the drift and its recovery; each
    learner's detector."""
    d = result.get("drift")
    if not d:
        return []
    out = [
        f"{result['dataset']}: (e) drift at event {d['drift_event']:,} (click {d['drift_click']:,}); recall@{k} in "
        f"windows of {d['window_clicks']:,} clicks; recovery: clicks (events) after the drift until a window's "
        f"recall is back to {1 - d['tolerance']:.0%} of the level before it"
    ]
    first = next((r for r in d["rankers"].values() if r["windows"]), None)
    if first is None:
        return out
    start = first["first_window"]
    labels = [str(j) if j < 0 else f"+{j + 1}" for j in range(start, start + len(first["windows"]))]
    rows = [
        [
            name,
            _fig(r["level_before"]),
            *(_fig(w) for w in r["windows"]),
            _fig(r["level_at_end"]),
            "never" if r["recovery_clicks"] is None else f"{r['recovery_clicks']:,} ({r['recovery_events']:,})",
        ]
        for name, r in sorted(d["rankers"].items(), key=lambda kv: -(kv[1]["level_before"] or 0))
        if r["windows"]
    ]
    out += _rows(["ranker", "before", *labels, "at end", "recovery"], rows)
    detectors = [
        [
            name,
            str(t["false_alarms"]),
            str(t["detections_after"]),
            "-" if t["first_delay_events"] is None else f"{t['first_delay_events']:,} ({t['first_delay_clicks']:,})",
        ]
        for name, t in d["detectors"].items()
    ]
    header = ["detector", "false alarms before", "detections after", "first after: events (clicks)"]
    return out + _rows(header, detectors)


def _fig(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def render(bench: dict[str, Any]) -> str:
    k = bench["_run"]["k"]
    lines: list[str] = []
    for result in bench["datasets"]:
        for block in (
            prequential_table(result, k),
            conversion_table(result, k),
            slate_table(result),
            counterfactual_table(result),
            drift_table(result, k),
        ):
            if block:
                lines += [*block, ""]
    for generator, summary in bench["across_seeds"].items():
        lines.append(f"{generator}, seeds {summary['seeds']}: recall@{k} mean [min, max]")
        lines += [
            f"  {name}: {s[f'recall@{k}_mean']:.4f} [{s['min']:.4f}, {s['max']:.4f}]"
            for name, s in sorted(summary["rankers"].items(), key=lambda kv: -kv[1][f"recall@{k}_mean"])
            if not name.startswith("serving, blend")
        ]
        lines.append("")
    if "offline" in bench:
        lines += [
            f"ml-100k, (d) offline temporal split ({bench['offline']['_run'].get('model', 'pointwise')} models; "
            "mean over 3 seeds)",
            *bench["offline"]["summary"],
            "",
        ]
    if "recbole_split" in bench:
        lines += [*recbole_table(bench["recbole_split"]), ""]
    run = bench["_run"]
    lines.append(
        f"{run['date']} commit {run['commit']}{' (dirty)' if run['dirty'] else ''}, {run['machine']}; "
        f"`{run['command']}`; {run['seconds']:.0f} s"
    )
    return "\n".join(lines)
