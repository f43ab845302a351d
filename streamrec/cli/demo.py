"""The whole pipeline on one machine (``demo``), and one worker under load for minutes (``soak``)."""

from __future__ import annotations

import logging

import click

from stream.config import Config
from streamrec.cli.options import Settings, SourceSpec, config_options, json_option, source_options
from streamrec.cli.plumbing import UsageError, emit, kafka, start_metrics, stop_on_signals, with_section

log = logging.getLogger(__name__)


@click.command()
@config_options(
    "bootstrap_servers",
    "partitions",
    "port",
    "registry_root",
    "data_dir",
    "metrics_port",
    port="HTTP API port; 0 disables the API. Sets serving.port.",
    registry_root="Keep registered models here (default: a temporary directory).",
    data_dir="Keep snapshots and the training log here (default: a temporary directory).",
)
@source_options()
@click.option("--rate", type=float, default=3000.0, show_default=True, help="Producer events per second.")
@click.option(
    "--train-every", type=int, default=100_000, show_default=True, help="Retrain after this many new logged events."
)
@click.option(
    "--first-model-after",
    type=int,
    default=20_000,
    show_default=True,
    help="Start the first training after this many logged events, so a model serves while events still flow.",
)
@click.option(
    "--wait-for-model",
    type=float,
    default=300.0,
    show_default=True,
    help="Once the stream is drained, wait this many seconds for a first model before stopping.",
)
@click.option(
    "--run-record", metavar="PATH", help="At the end, write the run's record (JSON) here for `streamrec report`."
)
@json_option("Print the summary as one JSON object on one line.")
def demo(
    settings: Settings,
    source: SourceSpec,
    rate: float,
    train_every: int,
    first_model_after: int,
    wait_for_model: float,
    run_record: str | None,
    as_json: bool,
) -> int:
    """The whole pipeline on the embedded broker, with progress and the figures at the end."""
    import tempfile
    from pathlib import Path

    from serving.api import ApiUnavailable
    from streamrec.demo import DemoOptions, run_demo

    cfg = settings.load()
    stop = stop_on_signals()
    with tempfile.TemporaryDirectory(prefix="streamrec-demo-") as tmp, kafka(cfg) as cfg:
        if not settings.given("worker.data_dir"):
            cfg = with_section(cfg, "worker", data_dir=tmp)
        registry_root = Path(cfg.registry.root if settings.given("registry.root") else Path(tmp) / "models")
        _announce_endpoints(cfg)
        try:
            options = DemoOptions(
                rate=rate,
                first_model_after=first_model_after,
                train_every=train_every,
                wait_for_model_s=wait_for_model,
                run_record=Path(run_record) if run_record else None,
            )
            summary = run_demo(
                cfg,
                source.open(),
                registry_root,
                stop,
                options,
                start_metrics=lambda registry: start_metrics(cfg, registry),
            )
        except ApiUnavailable as exc:
            raise UsageError(f"{exc}; pass --port N (or 0 to run without the API)") from None
    emit(summary, as_json)
    return 0


def _announce_endpoints(cfg: Config) -> None:
    from streamrec.demo import trainer_metrics_port

    if cfg.metrics.port:
        log.info(
            "metrics on http://%s:%d/metrics (the trainer's on port %d)",
            cfg.metrics.host,
            cfg.metrics.port,
            trainer_metrics_port(cfg),
        )
    if cfg.serving.port:
        log.info("API on http://%s:%d/v1/recommendations/USER (spec at /docs)", cfg.serving.host, cfg.serving.port)


@click.command()
@config_options("bootstrap_servers", "partitions")
@click.option("--minutes", type=float, default=10.0, show_default=True, help="How long to produce.")
@click.option("--rate", type=float, default=1000.0, show_default=True, help="Events per second.")
@click.option(
    "--warmup-minutes",
    type=float,
    help="Memory growth is measured after this (default: until the state can have filled to its bounds at "
    "--rate, at least 2 minutes).",
)
@click.option(
    "--sample-every", type=float, default=5.0, show_default=True, help="Seconds between memory and metrics samples."
)
@json_option("Print the figures as one JSON object on one line.")
def soak(
    settings: Settings, minutes: float, rate: float, warmup_minutes: float | None, sample_every: float, as_json: bool
) -> int:
    """One worker under a steady rate for minutes: memory sampled, state bounds checked (exit 1 if out of bounds)."""
    from stream.sources.synthetic import SyntheticConfig
    from streamrec.soak import SoakPlan, plan_warmup, run_soak

    if warmup_minutes is not None and not 0 <= warmup_minutes < minutes:
        raise UsageError("--warmup-minutes must be at least 0 and less than --minutes")
    cfg = settings.load()
    try:
        warmup, fill = plan_warmup(cfg, minutes, rate, warmup_minutes, SyntheticConfig())
    except ValueError as exc:  # a run too short for its warm-up
        raise UsageError(str(exc)) from None
    stop = stop_on_signals()
    with kafka(cfg) as cfg:
        try:
            result = run_soak(
                cfg,
                SoakPlan(minutes=minutes, rate=rate, warmup_minutes=warmup, sample_every_s=sample_every),
                fill=fill,
                worker_args=settings.argv(),  # the worker applies the same bounds the soak checks
                stop=stop,
            )
        except RuntimeError as exc:  # the worker or the producer failed: no figures to print
            log.error("streamrec soak: %s", exc)
            return 1
    if not as_json:
        result.pop("samples")  # they were the progress lines
    emit(result, as_json)
    return 0 if result["within_bound"] else 1
