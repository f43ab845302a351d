"""Training: the teacher, the distilled student, its export and registration, once or periodically."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from stream.config import Config
from streamrec.cli.options import Settings, SourceSpec, config_options, json_option, source_options
from streamrec.cli.plumbing import UsageError, emit, external_kafka, start_metrics, stop_on_signals, with_section

log = logging.getLogger(__name__)


@click.command()
@config_options("registry_root", registry_root="The registry directory. Sets registry.root.")
@source_options(default="ml-100k")
@click.option(
    "--once",
    is_flag=True,
    help="Train once and exit (default: retrain from the training log on train.every_events, train.every_s "
    "or a drift signal).",
)
@click.option("--from-log", is_flag=True, help="Train on the worker's training log (worker.data_dir), not --dataset.")
@click.option("--no-curriculum", is_flag=True, help="Plain shuffled epochs (train.curriculum=false).")
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    metavar="N",
    help="With --once: train and evaluate under N training seeds (train.seed, +1, ...) and report each "
    "figure's mean and spread; the first seed's student is registered (the periodic trainer trains one).",
)
@click.option(
    "--ablations",
    is_flag=True,
    help="With --once: measure the distillation, curriculum and multi-task ablations instead of registering a model.",
)
@click.option(
    "--warm-start-check",
    is_flag=True,
    help="With --once: train on the earlier 70% of the log, then on all of it cold and warm-started, and "
    "print the epochs each needs.",
)
@json_option()
def train(settings: Settings, source: SourceSpec, once: bool, from_log: bool, no_curriculum: bool, **how: Any) -> int:
    """Train the teacher, distil the student, export and register it."""
    from stream.training_log import count_logged, log_root, read_events

    cfg = settings.load()
    _refuse_what_sequence_models_lack(cfg, how["ablations"], how["warm_start_check"])
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun: one data-parallel rank
        if not once:  # each rank's triggers (time, log, drift) would fire on their own
            raise UsageError("torchrun trains data-parallel with train --once only; run the periodic trainer alone")
        import torch.distributed

        torch.distributed.init_process_group("gloo")
    if no_curriculum:
        cfg = with_section(cfg, "train", curriculum=False)
    if cfg.kafka.bootstrap_servers:
        cfg = external_kafka(cfg, "train") or cfg
    root, topic = log_root(cfg.worker.data_dir), cfg.kafka.events_topic

    def logged_events() -> list[Any]:
        events = read_events(root, topic)
        if not events:
            raise UsageError(f"no training log under {root / topic}; run a worker first or pass --dataset")
        return events

    if not once:
        return _train_periodically(cfg, logged_events, lambda: count_logged(root, topic), how["as_json"])
    report = _train_once(cfg, logged_events() if from_log else list(source.open()), **how)
    if report:  # ranks other than 0 of a torchrun launch return nothing
        emit(report, how["as_json"])
    return 0


def _refuse_what_sequence_models_lack(cfg: Config, ablations: bool, warm_start_check: bool) -> None:
    if cfg.train.model != "sequence":
        return
    if ablations or warm_start_check:
        flag = "--ablations" if ablations else "--warm-start-check"
        raise UsageError(f"{flag}: with train.model=sequence, train --once reports its ablations itself; drop {flag}")


def _train_once(
    cfg: Config, events: list[Any], seeds: int, ablations: bool, warm_start_check: bool, as_json: bool
) -> dict[str, Any] | None:
    if ablations:
        from offline.ablation import run_ablations

        return run_ablations(cfg, events)
    if warm_start_check:
        from offline.warm_start import warm_start_experiment

        return warm_start_experiment(cfg, events)
    return train_and_announce(cfg, events, seeds=seeds, ablations=True)


def announce(cfg: Config, root: Path, version: int) -> None:
    """Announce ``version`` of the registry at ``root`` on the model-updates topic (raises AnnounceError)."""
    from offline.announce import announce_promotion
    from stream.kafka.clients import make_producer
    from stream.model_artifact import read_manifest, version_dir

    manifest = read_manifest(version_dir(root, version))
    announce_promotion(make_producer(cfg.kafka), cfg.kafka.model_updates_topic, manifest, root)


def train_and_announce(cfg: Config, events: list[Any], seeds: int = 1, ablations: bool = False) -> dict[str, Any]:
    """One training run (``seeds`` training seeds, the first registered; ``ablations``: the sequence
    models' too); a promotion is announced on the model-updates topic when Kafka is configured."""
    registry_root = Path(cfg.registry.root)
    report: dict[str, Any]
    if cfg.train.model == "sequence":
        from offline import sequence_pipeline

        report = sequence_pipeline.train_once(cfg, events, registry_root, seeds=seeds, ablations=ablations)
    else:
        from offline.pipeline import train_once

        report = train_once(cfg, events, registry_root=registry_root, seeds=seeds)
    if report and report["registry"]["promoted"] and cfg.kafka.bootstrap_servers:
        announce(cfg, registry_root, report["registry"]["version"])
        report["registry"]["announced_on"] = cfg.kafka.model_updates_topic
    return report


def _drift_counter(cfg: Config) -> tuple[Callable[[], int], Callable[[], None]]:
    """Counts drift signals on the signals topic since the last call; and how to close its consumer."""
    if not (cfg.kafka.bootstrap_servers and cfg.train.on_drift):
        return (lambda: 0), (lambda: None)
    from stream.kafka.clients import make_consumer

    signals = make_consumer(cfg.kafka, group_id=f"{cfg.kafka.group_id}-trainer")
    signals.subscribe([cfg.kafka.signals_topic])

    def drain() -> int:
        batch = signals.consume(1000, 0.1)
        return sum(1 for m in batch if m.error() is None and b'"drift"' in (m.value() or b""))

    return drain, signals.close


def _train_periodically(
    cfg: Config, logged_events: Callable[[], list[Any]], count_logged: Callable[[], int], as_json: bool
) -> int:
    """Retrain from the training log on new events, elapsed time or drift signals, until SIGINT/SIGTERM."""
    from offline.metrics import TrainerMetrics
    from offline.schedule import RetrainTrigger, run_periodic
    from stream.metrics import process_registry
    from stream.model_artifact import current_version

    metrics = TrainerMetrics(process_registry())
    metrics.registry_version.set(current_version(cfg.registry.root) or 0)
    start_metrics(cfg, metrics.registry)

    def retrain(_why: str) -> None:
        if count_logged() == 0:  # a fresh deployment: nothing to train on is not a failed run
            log.info("no training log yet; waiting for the workers to write one")
            return
        started = time.perf_counter()
        try:
            report = train_and_announce(cfg, logged_events())
        except Exception:
            metrics.failed()
            raise  # run_periodic logs it and keeps the current model
        metrics.record(time.perf_counter() - started, report, time.time())
        if report:
            emit(report, as_json)

    t = cfg.train
    drain_drift, close = _drift_counter(cfg)
    try:
        run_periodic(
            RetrainTrigger(t.every_events, t.every_s, t.on_drift),
            count_logged,
            drain_drift,
            retrain,
            stop_on_signals(),
            t.poll_s,
        )
    finally:
        close()
    return 0
