"""Measuring: the prequential evaluation of the online learners, and the benchmarks."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from streamrec.cli.options import Settings, SourceSpec, config_options, json_option, source_options
from streamrec.cli.plumbing import UsageError, emit, kafka, with_section
from streamrec.logs import Throttle
from streamrec.provenance import run_stamp

log = logging.getLogger(__name__)


def _progress(k: int) -> Any:
    throttle = Throttle()

    def progress(n: int, metrics: dict[str, Any]) -> None:
        if throttle.due():
            best = max((v[f"recall@{k}"] or 0.0, name) for name, v in metrics.items() if not name.startswith("_"))
            log.info("%s events; best recall@%d so far %.4f (%s)", f"{n:,}", k, best[0], best[1])

    return progress


@click.command(name="eval")
@click.argument("mode", type=click.Choice(["prequential"]), metavar="MODE")
@config_options()
@source_options(default="ml-100k")
@click.option(
    "--partitions", type=int, default=1, show_default=True, help="Split users into N shards with their own state."
)
@click.option("--k", type=int, default=10, show_default=True, help="The K of Recall@K and NDCG@K.")
@click.option(
    "--prequential-every",
    type=int,
    default=1,
    show_default=True,
    help="Score ranking learners on every n-th click.",
)
@click.option(
    "--serving",
    is_flag=True,
    help="Also ask the serving path (candidates + student + blend) before each click, "
    "retraining the student every --retrain-every events.",
)
@click.option(
    "--retrain-every", type=int, default=20_000, show_default=True, help="With --serving: events between retrainings."
)
@json_option()
def evaluate(
    settings: Settings,
    source: SourceSpec,
    mode: str,
    partitions: int,
    k: int,
    prequential_every: int,
    serving: bool,
    retrain_every: int,
    as_json: bool,
) -> int:
    """Offline evaluation of the online learners: each click scored before it is learned."""
    from stream.evaluation.replay import replay

    cfg = with_section(settings.load(), "worker", prequential_every=prequential_every)
    if serving:
        from streamrec.serving_replay import replay_with_serving

        if partitions != 1:
            raise UsageError("--serving replays one partition; drop --partitions")
        result = replay_with_serving(source.open(), cfg, retrain_every, k=k, progress=_progress(k))
    else:
        result = replay(source.open(), cfg, partitions=partitions, k=k, progress=_progress(k))
    result["_run"]["dataset"] = source.dataset
    emit(result, as_json)
    return 0


@click.command()
@click.argument("target", type=click.Choice(["stream", "serve", "freshness", "quality"]), metavar="TARGET")
@config_options("bootstrap_servers", "partitions")
@click.option("--events", type=int, default=200_000, show_default=True, help="stream: events per run.")
@click.option(
    "--runs", type=int, default=5, show_default=True, help="stream: median of this many runs (the machine is noisy)."
)
@click.option("--prequential-every", type=int, help="stream: score ranking learners on every n-th click.")
@click.option("--items", type=int, default=100_000, show_default=True, help="serve: catalogue size.")
@click.option("--requests", type=int, default=10_000, show_default=True, help="serve: measured requests per model.")
@click.option(
    "--every-item-clicked",
    is_flag=True,
    help="serve: the catalogue feed clicks every item instead of showing it (the MF search's worst case).",
)
@click.option("--rate", type=float, default=1000.0, show_default=True, help="freshness: events per second.")
@click.option("--seconds", type=float, default=30.0, show_default=True, help="freshness: how long to produce.")
@click.option(
    "--part",
    type=click.Choice(["development", "evaluation"]),
    default="evaluation",
    show_default=True,
    help="quality: the development part (choose defaults on it) or the evaluation part (report it once, "
    "after the defaults are committed).",
)
@click.option("--quick", is_flag=True, help="quality: small generated worlds only (what tests run).")
@click.option("--no-serving", is_flag=True, help="quality: leave out the serving path (no training).")
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="quality: data sets evaluated at once.",
)
@click.option("--k", type=int, default=10, show_default=True, help="quality: the K of Recall@K and NDCG@K.")
@click.option(
    "--output",
    metavar="JSON",
    help="quality: write the result here (default: docs/results/quality-PART.json when run from a "
    "checkout, except with --quick); stream: write the result, stamped with its run, here (e.g. "
    "docs/results/stream.json).",
)
@json_option()
def bench(settings: Settings, target: str, as_json: bool, **options: Any) -> int:
    """Benchmarks that print figures.

    stream: worker throughput; serve: top-10 latency, ONNX student against the eager teacher (of
    train.model's kind); freshness:
    event timestamp to recommendation read back; quality: every data set under every evaluation
    protocol (docs/protocol.md)."""
    cfg = settings.load()
    if target == "quality":
        return _bench_quality(settings, as_json, **options)
    if target == "serve":
        from streamrec.benchmarks import bench_serve

        result = bench_serve(
            cfg, items=options["items"], requests=options["requests"], every_item_clicked=options["every_item_clicked"]
        )
    elif target == "freshness":
        from streamrec.benchmarks import bench_freshness

        with kafka(cfg) as cfg:
            result = bench_freshness(cfg, rate=options["rate"], seconds=options["seconds"])
    else:
        from stream.bench import bench_stream

        if options["prequential_every"]:
            cfg = with_section(cfg, "worker", prequential_every=options["prequential_every"])
        with kafka(cfg) as cfg:
            result = bench_stream(cfg, events=options["events"], runs=options["runs"])
        if options["output"]:
            result["_run"] = {**run_stamp("streamrec bench stream"), "bench": "stream"}
            Path(options["output"]).write_text(json.dumps(result, indent=1) + "\n")
            log.info("results written to %s", options["output"])
    emit(result, as_json)
    return 0


def _bench_quality(settings: Settings, as_json: bool, **options: Any) -> int:
    from streamrec.quality.bench import bench_quality
    from streamrec.quality.table import render

    part, quick = options["part"], options["quick"]
    result = bench_quality(
        settings.load(),
        part=part,
        quick=quick,
        k=options["k"],
        serving=not options["no_serving"],
        processes=options["processes"],
    )
    output = options["output"] or (
        f"docs/results/quality-{part}.json" if Path("docs/results").is_dir() and not quick else None
    )
    if output:
        Path(output).write_text(json.dumps(result, indent=1) + "\n")
        Path(output).with_suffix(".md").write_text(f"# bench quality, {part} part\n\n```\n{render(result)}\n```\n")
        log.info("results written to %s and its .md", output)
    if as_json:
        emit(result, True)
    else:
        print(render(result))
    return 0
