"""``streamrec``: the one place where the layers are composed into processes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from stream.config import Config, ConfigError, load_config
from stream.sources import DATASETS, SourceError, open_source
from stream.sources.exposure import ExposureConfig
from stream.sources.logfile import ColumnMap, LogFormatError
from stream.sources.movielens import DatasetUnavailable
from stream.sources.synthetic import SyntheticConfig

log = logging.getLogger("streamrec")


class UsageError(Exception):
    """A bad argument: printed as one line, exit code 2."""


# -- shared plumbing ------------------------------------------------------------------------------


def _config(args: argparse.Namespace) -> Config:
    overrides = list(args.set or [])
    for flag, key in (
        ("bootstrap_servers", "kafka.bootstrap_servers"),
        ("data_dir", "worker.data_dir"),
        ("metrics_port", "metrics.port"),
        ("partitions", "kafka.partitions"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={json.dumps(value)}")
    return load_config(args.config, overrides)


def _with(cfg: Config, section: str, **changes) -> Config:
    return msgspec.structs.replace(cfg, **{section: msgspec.structs.replace(getattr(cfg, section), **changes)})


@contextmanager
def _kafka(cfg: Config, log_fn: Callable[[str], None] = print) -> Iterator[Config]:
    """Use the configured cluster, or start the embedded Tansu broker when none is configured."""
    from stream.kafka.broker import EmbeddedBroker
    from stream.kafka.clients import ensure_topics

    if cfg.kafka.bootstrap_servers:
        ensure_topics(cfg.kafka)
        yield cfg
        return
    with EmbeddedBroker() as broker:
        log_fn(f"embedded Tansu broker at {broker.bootstrap_servers}")
        cfg = _with(cfg, "kafka", bootstrap_servers=broker.bootstrap_servers)
        ensure_topics(cfg.kafka)
        yield cfg


def _external_kafka(args: argparse.Namespace, wait: threading.Event | None = None) -> Config | None:
    """Config for a command that joins an existing cluster (topics created if missing).

    A one-shot command fails fast (one line) when Kafka cannot be reached. A long-running one passes
    ``wait`` (its stop event): it logs and retries every 2 s until Kafka answers, or returns None
    once ``wait`` is set."""
    from confluent_kafka import KafkaException

    from stream.kafka.clients import ensure_topics

    cfg = _config(args)
    if not cfg.kafka.bootstrap_servers:
        raise UsageError(
            f"{args.command} needs a broker: pass --bootstrap-servers HOST:PORT (start one with `streamrec broker`)"
        )
    while True:
        try:
            ensure_topics(cfg.kafka)
            return cfg
        except KafkaException as exc:
            if wait is None:
                raise UsageError(
                    f"cannot reach Kafka at {cfg.kafka.bootstrap_servers} ({exc.args[0].str()}); "
                    "check --bootstrap-servers and that the broker is up"
                ) from None
            log.warning(
                "cannot reach Kafka at %s (%s); retrying in 2 s", cfg.kafka.bootstrap_servers, exc.args[0].str()
            )
        if wait.wait(2.0):
            return None


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _source(args: argparse.Namespace):
    columns = (
        ColumnMap(
            user=args.user_col,
            item=args.item_col,
            time=args.time_col,
            type=args.type_col,
            event_id=args.id_col,
            time_unit=args.time_unit,
            category=args.category_col,
            tags=args.tags_col,
            tags_sep=args.tags_sep,
            title=args.title_col,
            user_attrs=tuple(c.strip() for c in args.user_attr_cols.split(",") if c.strip()),
            position=args.position_col,
            request_id=args.request_col,
            propensity=args.propensity_col,
            value=args.value_col,
        )
        if args.dataset == "file"
        else None
    )
    synthetic = SyntheticConfig(seed=args.seed, n_sessions=args.sessions) if args.dataset == "synthetic" else None
    exposure = ExposureConfig(seed=args.seed, n_sessions=args.sessions) if args.dataset == "exposure" else None
    return open_source(args.dataset, args.path, columns, synthetic, exposure)


def _emit(obj: dict, as_json: bool) -> None:
    print(json.dumps(obj, indent=None if as_json else 2))


def _start_metrics(cfg: Config, registry) -> None:
    if cfg.metrics.port:
        from prometheus_client import start_http_server

        try:
            start_http_server(cfg.metrics.port, cfg.metrics.host, registry)
        except OSError as exc:
            raise UsageError(
                f"cannot serve metrics on {cfg.metrics.host}:{cfg.metrics.port} ({exc.strerror}); "
                "pass --metrics-port N, or 0 to disable"
            ) from None
        log.info("metrics on http://%s:%d/metrics", cfg.metrics.host, cfg.metrics.port)


# -- subcommands ------------------------------------------------------------------------------------


def cmd_broker(args: argparse.Namespace) -> int:
    from stream.kafka.broker import EmbeddedBroker

    stop = _stop_on_signals()
    with EmbeddedBroker(port=args.port, storage=args.storage) as broker:
        print(f"tansu broker at {broker.bootstrap_servers} (storage {args.storage}); Ctrl-C stops it", flush=True)
        while not stop.wait(0.5):
            if broker.proc is not None and broker.proc.poll() is not None:
                raise UsageError(f"the broker exited with code {broker.proc.returncode}")
    return 0


def cmd_produce(args: argparse.Namespace) -> int:
    from stream.kafka.clients import make_producer
    from stream.produce import produce_events

    cfg = _external_kafka(args)
    started = time.perf_counter()
    sent = produce_events(
        make_producer(cfg.kafka),
        cfg.kafka.events_topic,
        _source(args),
        rate=args.rate,
        limit=args.limit,
        progress=lambda n: print(f"\rproduced {n:,}", end="", flush=True),
    )
    took = time.perf_counter() - started
    print(f"\rproduced {sent:,} events to {cfg.kafka.events_topic} in {took:.1f}s ({sent / took:,.0f}/s)")
    return 0


def cmd_stream(args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry

    from stream.metrics import WorkerMetrics
    from stream.worker import StreamWorker

    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    _start_metrics(_config(args), registry)  # up first: operators see a worker waiting for Kafka
    stop = _stop_on_signals()
    cfg = _external_kafka(args, wait=stop)  # a worker outlives a broker that is not up yet
    if cfg is None:  # stopped while waiting
        return 0
    StreamWorker(cfg, metrics).run(stop, idle_exit_s=args.idle_exit)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from stream.evaluation.replay import replay

    cfg = _with(_config(args), "worker", prequential_every=args.prequential_every)

    def progress(n: int, metrics: dict) -> None:
        if not args.json:
            best = max((v[f"recall@{args.k}"] or 0.0, name) for name, v in metrics.items() if not name.startswith("_"))
            print(
                f"\r{n:,} events; best recall@{args.k} so far {best[0]:.4f} ({best[1]})",
                end="",
                file=sys.stderr,
                flush=True,
            )

    if args.serving:
        from streamrec.serving_replay import replay_with_serving

        if (args.partitions or 1) != 1:
            raise UsageError("--serving replays one partition; drop --partitions")
        result = replay_with_serving(
            _source(args),
            cfg,
            args.retrain_every,
            k=args.k,
            progress=progress,
            log=lambda line: print(f"\n{line}", file=sys.stderr, flush=True),
        )
    else:
        result = replay(_source(args), cfg, partitions=args.partitions or 1, k=args.k, progress=progress)
    if not args.json:
        print(file=sys.stderr)
    result["_run"]["dataset"] = args.dataset
    _emit(result, args.json)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    cfg = _config(args)
    out = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else print
    if args.target == "quality":
        return _bench_quality(args, cfg, out)
    if args.target == "serve":
        from streamrec.benchmarks import bench_serve

        result = bench_serve(cfg, items=args.items, requests=args.requests, log=out)
    elif args.target == "freshness":
        from streamrec.benchmarks import bench_freshness

        with _kafka(cfg, out) as cfg:
            result = bench_freshness(cfg, rate=args.rate, seconds=args.seconds, log=out)
    else:
        from stream.bench import bench_stream

        if args.prequential_every:
            cfg = _with(cfg, "worker", prequential_every=args.prequential_every)
        with _kafka(cfg, out) as cfg:
            result = bench_stream(cfg, events=args.events, runs=args.runs, log=out)
    _emit(result, args.json)
    return 0


def _bench_quality(args: argparse.Namespace, cfg: Config, out: Callable[[str], None]) -> int:
    from streamrec.quality.bench import bench_quality
    from streamrec.quality.table import render

    if args.processes < 1:
        raise UsageError(f"--processes {args.processes}: give 1 or more")
    result = bench_quality(
        cfg,
        part=args.part,
        quick=args.quick,
        k=args.k,
        serving=not args.no_serving,
        processes=args.processes,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    output = args.output or (
        f"docs/results/quality-{args.part}.json" if Path("docs/results").is_dir() and not args.quick else None
    )
    if output:
        Path(output).write_text(json.dumps(result, indent=1) + "\n")
        Path(output).with_suffix(".md").write_text(f"# bench quality, {args.part} part\n\n```\n{render(result)}\n```\n")
        print(f"results written to {output} and its .md", file=sys.stderr)
    if args.json:
        _emit(result, True)
    else:
        out(render(result))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """A stream worker that also scores, publishes recommendations and answers HTTP."""
    from serving.api import ApiUnavailable
    from streamrec.stack import ServingStack

    stop = _stop_on_signals()
    cfg = _external_kafka(args, wait=stop)  # like `stream`: outlive a broker that is not up yet
    if cfg is None:  # stopped while waiting
        return 0
    if args.port is not None:
        cfg = _with(cfg, "serving", port=args.port)
    stack = ServingStack.build(cfg, Path(args.registry_root or cfg.registry.root))
    _start_metrics(cfg, stack.registry)
    try:
        stack.run(stop, idle_exit_s=args.idle_exit)
    except ApiUnavailable as exc:
        raise UsageError(f"{exc}; pick a free port with --port or serving.port") from None
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole pipeline on the embedded default, with progress and the figures at the end."""
    import tempfile

    from serving.api import ApiUnavailable
    from streamrec.demo import run_demo, trainer_metrics_port

    cfg = _config(args)
    if args.port is not None:
        cfg = _with(cfg, "serving", port=args.port)
    stop = _stop_on_signals()
    with tempfile.TemporaryDirectory(prefix="streamrec-demo-") as tmp, _kafka(cfg) as cfg:
        if args.data_dir is None:
            cfg = _with(cfg, "worker", data_dir=tmp)
        registry_root = Path(args.registry_root or Path(tmp) / "models")
        if cfg.metrics.port:
            print(
                f"metrics on http://{cfg.metrics.host}:{cfg.metrics.port}/metrics (the trainer's on port "
                f"{trainer_metrics_port(cfg)})",
                file=sys.stderr,
            )
        if cfg.serving.port:
            print(
                f"API on http://{cfg.serving.host}:{cfg.serving.port}/v1/recommendations/USER (spec at /docs)",
                file=sys.stderr,
            )
        try:
            summary = run_demo(
                cfg,
                _source(args),
                registry_root,
                args.rate,
                stop,
                train_every=args.train_every,
                wait_for_model_s=args.wait_for_model,
                run_record=Path(args.run_record) if args.run_record else None,
                log=lambda line: print(line, file=sys.stderr, flush=True),
                start_metrics=lambda registry: _start_metrics(cfg, registry),
            )
        except ApiUnavailable as exc:
            raise UsageError(f"{exc}; pass --port N (or 0 to run without the API)") from None
    _emit(summary, args.json)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Render a run record (``demo --run-record``) as one self-contained HTML page."""
    from streamrec.report import write_report
    from streamrec.run_record import RecordError

    try:
        out, plots = write_report(
            args.run_record, args.output, args.ablations, log=lambda line: print(line, file=sys.stderr, flush=True)
        )
    except RecordError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {out} ({len(plots)} plots)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from stream.training_log import count_logged, log_root, read_events

    cfg = _config(args)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun: one data-parallel rank
        import torch.distributed

        torch.distributed.init_process_group("gloo")
    if args.no_curriculum:
        cfg = _with(cfg, "train", curriculum=False)
    if cfg.kafka.bootstrap_servers:
        cfg = _external_kafka(args)
    root, topic = log_root(cfg.worker.data_dir), cfg.kafka.events_topic

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    def logged_events() -> list:
        events = read_events(root, topic)
        if not events:
            raise UsageError(f"no training log under {root / topic}; run a worker first or pass --dataset")
        return events

    if not args.once:
        return _train_periodically(args, cfg, logged_events, lambda: count_logged(root, topic), log)
    events = logged_events() if args.from_log else list(_source(args))
    if args.ablations:
        from offline.ablation import run_ablations

        report = run_ablations(cfg, events, log=log)
    elif args.warm_start_check:
        from offline.warm_start import warm_start_experiment

        report = warm_start_experiment(cfg, events, log=log)
    else:
        if args.seeds < 1:
            raise UsageError(f"--seeds {args.seeds}: train at least one seed")
        report = _train_and_announce(args, cfg, events, log, seeds=args.seeds)
    if report:  # ranks other than 0 of a torchrun launch return nothing
        _emit(report, args.json)
    return 0


def _announce(cfg: Config, root: Path, version: int) -> None:
    """Announce ``version`` of the registry at ``root`` on the model-updates topic (raises AnnounceError)."""
    from offline.announce import announce_promotion
    from stream.kafka.clients import make_producer
    from stream.model_artifact import read_manifest, version_dir

    manifest = read_manifest(version_dir(root, version))
    announce_promotion(make_producer(cfg.kafka), cfg.kafka.model_updates_topic, manifest, root)


def _train_and_announce(
    args: argparse.Namespace, cfg: Config, events: list, log: Callable[[str], None], seeds: int = 1
) -> dict:
    """One training run (``seeds`` training seeds, the first registered); a promotion is announced
    on the model-updates topic when Kafka is configured."""
    from offline.pipeline import train_once

    registry_root = Path(args.registry_root or cfg.registry.root)
    report = train_once(cfg, events, log=log, registry_root=registry_root, seeds=seeds)
    if report and report["registry"]["promoted"] and cfg.kafka.bootstrap_servers:
        _announce(cfg, registry_root, report["registry"]["version"])
        report["registry"]["announced_on"] = cfg.kafka.model_updates_topic
    return report


def _train_periodically(
    args: argparse.Namespace,
    cfg: Config,
    logged_events: Callable[[], list],
    count_logged: Callable[[], int],
    log: Callable[[str], None],
) -> int:
    """Retrain from the training log on new events, elapsed time or drift signals, until SIGINT/SIGTERM."""
    from prometheus_client import CollectorRegistry

    from offline.metrics import TrainerMetrics
    from offline.schedule import RetrainTrigger, run_periodic
    from stream.kafka.clients import make_consumer
    from stream.model_artifact import current_version

    metrics = TrainerMetrics(CollectorRegistry())
    metrics.registry_version.set(current_version(args.registry_root or cfg.registry.root) or 0)
    _start_metrics(cfg, metrics.registry)
    t = cfg.train
    signals = None
    if cfg.kafka.bootstrap_servers and t.on_drift:
        signals = make_consumer(cfg.kafka, group_id=f"{cfg.kafka.group_id}-trainer")
        signals.subscribe([cfg.kafka.signals_topic])

    def drain_drift() -> int:
        if signals is None:
            return 0
        batch = signals.consume(1000, 0.1)
        return sum(1 for m in batch if m.error() is None and b'"drift"' in (m.value() or b""))

    def train(_why: str) -> None:
        if count_logged() == 0:  # a fresh deployment: nothing to train on is not a failed run
            log("no training log yet; waiting for the workers to write one")
            return
        started = time.perf_counter()
        try:
            report = _train_and_announce(args, cfg, logged_events(), log)
        except Exception:
            metrics.failed()
            raise  # run_periodic logs it and keeps the current model
        metrics.record(time.perf_counter() - started, report, time.time())
        if report:
            _emit(report, args.json)

    try:
        run_periodic(
            RetrainTrigger(t.every_events, t.every_s, t.on_drift),
            count_logged,
            drain_drift,
            train,
            _stop_on_signals(),
            t.poll_s,
            log=log,
        )
    finally:
        if signals is not None:
            signals.close()
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    """List, promote and roll back registered models; announce a change when Kafka is configured.

    Exit codes: 0 done (or already current), 1 refused or failed (gate, corrupt artifact, no such
    version, announcement), 2 bad arguments or config.
    """
    from offline.announce import AnnounceError
    from offline.registry import QualityGate, Registry, RegistryError
    from stream.model_artifact import ArtifactError

    cfg = _config(args)
    registry = Registry(Path(args.registry_root or cfg.registry.root), keep=cfg.registry.keep)

    def fail(message: str) -> int:
        print(f"streamrec model {args.action}: {message}", file=sys.stderr)
        return 1

    try:
        if args.action == "list":
            return _print_versions(registry.list(), registry.root, args.json)
        # Reach the broker before changing anything, so an unreachable one refuses the whole command.
        if cfg.kafka.bootstrap_servers:
            cfg = _external_kafka(args)
        if args.action == "promote":
            gate = QualityGate(cfg.registry.gate_metric, cfg.registry.gate_tolerance)
            result = registry.promote(args.version, gate, force=args.force)
        else:
            result = registry.rollback()
    except (ArtifactError, RegistryError) as exc:
        return fail(str(exc))
    outcome = msgspec.to_builtins(result)
    if not result.promoted and result.version != result.previous:  # refused by the gate; nothing changed
        if args.json:
            print(json.dumps({**outcome, "announced_on": None}))
        return fail(result.reason)
    announced = None  # an already current version is announced again: the way to retry an announcement
    if cfg.kafka.bootstrap_servers:
        try:
            _announce(cfg, registry.root, result.version)
        except AnnounceError as exc:
            return fail(f"version {result.version} is current but {exc}; run the command again to re-announce")
        announced = cfg.kafka.model_updates_topic
    if args.json:
        print(json.dumps({**outcome, "announced_on": announced}))
        return 0
    print(
        f"version {result.version} is current (was {result.previous or 'none'}): {result.reason}"
        if result.promoted
        else result.reason
    )
    print(
        f"announced on topic {announced}"
        if announced
        else "no announcement made: no Kafka configured (--bootstrap-servers or kafka.bootstrap_servers)"
    )
    return 0


def _print_versions(versions: list, root: Path, as_json: bool) -> int:
    if as_json:
        print(json.dumps(msgspec.to_builtins(versions)))
        return 0
    if not versions:
        print(f"no models registered in {root}")
    for v in versions:
        metrics = " ".join(f"{name}={value:.4f}" for name, value in sorted(v.validation.items()))
        print(f"{'*' if v.is_current else ' '} {v.version:6d}  {v.created_at or '-':24}  {v.problem or metrics or '-'}")
    return 0


def cmd_soak(args: argparse.Namespace) -> int:
    """One worker child under a steady rate for minutes, its memory sampled; exit 1 if out of bounds."""
    from stream.sources.synthetic import SyntheticConfig
    from streamrec.soak import plan_warmup, run_soak

    if args.warmup_minutes is not None and not 0 <= args.warmup_minutes < args.minutes:
        raise UsageError("--warmup-minutes must be at least 0 and less than --minutes")
    cfg = _config(args)
    try:
        warmup, fill = plan_warmup(cfg, args.minutes, args.rate, args.warmup_minutes, SyntheticConfig())
    except ValueError as exc:  # a run too short for its warm-up
        raise UsageError(str(exc)) from None
    stop = _stop_on_signals()

    def out(line):
        return print(line, file=sys.stderr, flush=True)

    # The worker runs the same --config/--set, so the bounds checked are the ones it applies.
    worker_args = (["--config", args.config] if args.config else []) + [a for s in args.set or [] for a in ("--set", s)]
    with _kafka(cfg, out) as cfg:
        try:
            result = run_soak(
                cfg,
                minutes=args.minutes,
                rate=args.rate,
                warmup_minutes=warmup,
                fill=fill,
                sample_every_s=args.sample_every,
                worker_args=worker_args,
                stop=stop,
                log=out,
            )
        except RuntimeError as exc:  # the worker or the producer failed: no figures to print
            print(f"streamrec soak: {exc}", file=sys.stderr)
            return 1
    if not args.json:
        result.pop("samples")  # they were the progress lines
    _emit(result, args.json)
    return 0 if result["within_bound"] else 1


def cmd_config(args: argparse.Namespace) -> int:
    from streamrec.reference.config import render

    print(render(), end="")
    return 0


# -- parser -----------------------------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (also STREAMREC_CONFIG)")
    p.add_argument(
        "--set",
        action="append",
        metavar="SECTION.FIELD=VALUE",
        help="override any config field (repeatable), e.g. --set worker.batch_size=2000",
    )
    p.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def _kafka_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bootstrap-servers", help="Kafka bootstrap servers (kafka.bootstrap_servers)")
    p.add_argument("--partitions", type=int, help="partitions of the events topic when created")


def _source_flags(p: argparse.ArgumentParser, default: str = "synthetic") -> None:
    p.add_argument("--dataset", default=default, choices=DATASETS)
    p.add_argument("--path", help="with --dataset file: a CSV or JSONL click log")
    p.add_argument("--user-col", default="user_id")
    p.add_argument("--item-col", default="item_id")
    p.add_argument("--time-col", default="ts")
    p.add_argument("--type-col", help="column with impression/click/conversion (default: all clicks)")
    p.add_argument("--id-col", help="column with a unique event id (default: a hash of the row)")
    p.add_argument("--time-unit", default="ms", choices=["s", "ms"])
    p.add_argument("--category-col", help="column with the item's category")
    p.add_argument(
        "--tags-col", help="column with the item's tags: a string split on --tags-sep (JSONL: also a list of strings)"
    )
    p.add_argument("--tags-sep", default="|", help="separator between tags in --tags-col (default: |)")
    p.add_argument("--title-col", help="column with the item's title")
    p.add_argument(
        "--user-attr-cols",
        default="",
        help="comma-separated columns, each one user attribute (key: the column's name, value: its text)",
    )
    p.add_argument("--position-col", help="column with the slot the item was shown in (0 = top)")
    p.add_argument(
        "--request-col",
        help="column with a request id: impressions sharing one were shown "
        "together (default: a user's impressions at one timestamp)",
    )
    p.add_argument(
        "--propensity-col",
        help="column with the logging policy's probability of showing the "
        "item, in (0, 1], for counterfactual estimates",
    )
    p.add_argument("--value-col", help="column with a conversion's value (e.g. revenue), >= 0")
    p.add_argument("--seed", type=int, default=42, help="synthetic generator seed")
    p.add_argument(
        "--sessions",
        type=int,
        default=30_000,
        help="generated sessions: synthetic ~11 events each, exposure (visits) ~12",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamrec",
        description=__doc__,
        epilog="every configuration setting: `streamrec config reference`",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("broker", help="run the embedded Tansu broker")
    p.add_argument("--port", type=int, default=9092)
    p.add_argument("--storage", default="memory://tansu/", help="memory://tansu/ or postgres://user:pw@host/db")
    _common(p)
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("produce", help="replay a source into the events topic")
    _common(p), _kafka_flags(p), _source_flags(p)
    p.add_argument("--rate", type=float, help="events per second (default: as fast as possible)")
    p.add_argument("--limit", type=int, help="stop after this many events")
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("stream", help="run a stream worker in the consumer group")
    _common(p), _kafka_flags(p)
    p.add_argument("--data-dir", help="snapshots and training log (worker.data_dir)")
    p.add_argument("--metrics-port", type=int, help="Prometheus endpoint port, 0 to disable")
    p.add_argument("--idle-exit", type=float, help="exit cleanly after this many seconds without events")
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("eval", help="offline evaluation of the online learners")
    p.add_argument("mode", choices=["prequential"])
    _common(p), _source_flags(p, default="ml-100k")
    p.add_argument("--partitions", type=int, help="split users into N shards with their own state")
    p.add_argument("--k", type=int, default=10)
    p.add_argument(
        "--prequential-every",
        type=int,
        default=1,
        help="score ranking learners on every n-th click (default: every click)",
    )
    p.add_argument(
        "--serving",
        action="store_true",
        help="also ask the serving path (candidates + student + blend) before each click, "
        "retraining the student every --retrain-every events",
    )
    p.add_argument("--retrain-every", type=int, default=20_000, help="with --serving: events between retrainings")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="benchmarks that print figures")
    p.add_argument(
        "target",
        choices=["stream", "serve", "freshness", "quality"],
        help="stream: worker throughput; serve: top-10 latency, ONNX student against the eager "
        "teacher; freshness: event timestamp to recommendation read back; quality: every data "
        "set under every evaluation protocol (docs/protocol.md)",
    )
    _common(p), _kafka_flags(p)
    p.add_argument("--events", type=int, default=200_000, help="stream: events per run")
    p.add_argument("--runs", type=int, default=5, help="stream: median of this many runs (the machine is noisy)")
    p.add_argument("--prequential-every", type=int, help="stream: score ranking learners on every n-th click")
    p.add_argument("--items", type=int, default=100_000, help="serve: catalogue size")
    p.add_argument("--requests", type=int, default=10_000, help="serve: measured requests per model")
    p.add_argument("--rate", type=float, default=1000.0, help="freshness: events per second")
    p.add_argument("--seconds", type=float, default=30.0, help="freshness: how long to produce")
    p.add_argument(
        "--part",
        choices=["development", "evaluation"],
        default="evaluation",
        help="quality: the development part (choose defaults on it) or the evaluation part (report "
        "it once, after the defaults are committed)",
    )
    p.add_argument("--quick", action="store_true", help="quality: small generated worlds only (what tests run)")
    p.add_argument("--no-serving", action="store_true", help="quality: leave out the serving path (no training)")
    p.add_argument("--processes", type=int, default=2, help="quality: data sets evaluated at once")
    p.add_argument("--k", type=int, default=10, help="quality: the K of Recall@K and NDCG@K")
    p.add_argument(
        "--output",
        metavar="JSON",
        help="quality: write the result here (default: "
        "docs/results/quality-PART.json when run from a checkout, except with --quick)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("serve", help="a stream worker that also scores, publishes recommendations and serves HTTP")
    _common(p), _kafka_flags(p)
    p.add_argument("--data-dir", help="snapshots and training log (worker.data_dir)")
    p.add_argument("--registry-root", help="the model registry to serve from (registry.root)")
    p.add_argument("--port", type=int, help="HTTP API port (serving.port; 0 disables the API)")
    p.add_argument("--metrics-port", type=int, help="Prometheus endpoint port, 0 to disable")
    p.add_argument("--idle-exit", type=float, help="exit cleanly after this many seconds without events")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="the whole pipeline on the embedded broker, with figures")
    _common(p), _kafka_flags(p), _source_flags(p)
    p.add_argument("--rate", type=float, default=3000.0, help="producer events per second")
    p.add_argument("--train-every", type=int, default=100_000, help="retrain after this many new logged events")
    p.add_argument(
        "--wait-for-model",
        type=float,
        default=300.0,
        help="once the stream is drained, wait this long for a first model before stopping",
    )
    p.add_argument("--port", type=int, help="HTTP API port (serving.port; 0 disables the API)")
    p.add_argument("--registry-root", help="keep registered models here (default: a temporary dir)")
    p.add_argument("--data-dir", help="keep snapshots and training log here (default: a temporary dir)")
    p.add_argument(
        "--run-record", metavar="PATH", help="at the end, write the run's record (JSON) here for `streamrec report`"
    )
    p.add_argument("--metrics-port", type=int, help="Prometheus endpoint port, 0 to disable")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("report", help="an HTML report of a run (plots embedded) from its run record")
    p.add_argument("run_record", metavar="RUN_RECORD", help="the JSON of `streamrec demo --run-record PATH`")
    p.add_argument(
        "--ablations", metavar="JSON", help="the output of `streamrec train --once --ablations --json`, to include"
    )
    p.add_argument("-o", "--output", metavar="HTML", help="where to write the page (default: RUN_RECORD.html)")
    _common(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("train", help="train the teacher, distil the student, export and register it")
    _common(p), _source_flags(p, default="ml-100k")
    p.add_argument(
        "--once",
        action="store_true",
        help="train once and exit (default: retrain from the training log on train.every_events, "
        "train.every_s or a drift signal)",
    )
    p.add_argument(
        "--from-log",
        action="store_true",
        help="train on the worker's training log (worker.data_dir) instead of --dataset",
    )
    p.add_argument("--no-curriculum", action="store_true", help="plain shuffled epochs (train.curriculum=false)")
    p.add_argument(
        "--seeds",
        type=int,
        default=3,
        metavar="N",
        help="with --once: train and evaluate under N training seeds (train.seed, +1, ...) and report "
        "each figure's mean and spread; the first seed's student is registered (default: 3; "
        "the periodic trainer trains one)",
    )
    p.add_argument(
        "--ablations",
        action="store_true",
        help="with --once: measure the distillation, curriculum and multi-task ablations instead "
        "of registering a model",
    )
    p.add_argument(
        "--warm-start-check",
        action="store_true",
        help="with --once: train on the earlier 70%% of the log, then on all of it cold and warm-started, "
        "and print the epochs each needs",
    )
    p.add_argument("--registry-root", help="the registry directory (registry.root)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("model", help="list, promote and roll back models in the registry")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (
        ("list", "every registered version; * marks the current one"),
        ("promote", "make VERSION current if it verifies and passes the quality gate"),
        ("rollback", "make the previously promoted version current again"),
    ):
        a = actions.add_parser(action, help=text, description=text)
        if action == "promote":
            a.add_argument("version", type=int, metavar="VERSION")
            a.add_argument("--force", action="store_true", help="skip the quality gate (never the verification)")
        if action != "list":
            a.add_argument("--bootstrap-servers", help="announce on kafka.model_updates_topic via this cluster")
        a.add_argument("--registry-root", help="the registry directory (registry.root)")
        a.add_argument("--json", action="store_true", help="print one JSON value")
        _common(a)
        a.set_defaults(func=cmd_model)

    p = sub.add_parser("soak", help="one worker under a steady rate for minutes: memory sampled, state bounds checked")
    _common(p), _kafka_flags(p)
    p.add_argument("--minutes", type=float, default=10.0, help="how long to produce")
    p.add_argument("--rate", type=float, default=1000.0, help="events per second")
    p.add_argument(
        "--warmup-minutes",
        type=float,
        help="memory growth is measured after this (default: until the state can have filled to its "
        "bounds at --rate, at least 2 minutes)",
    )
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between memory and metrics samples")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=cmd_soak)

    p = sub.add_parser("config", help="the configuration reference: every field, its type, default and env var")
    p.add_argument("action", choices=["reference"], help="reference: print it as Markdown (the README's copy)")
    p.set_defaults(func=cmd_config, log_level="WARNING")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    try:
        return args.func(args)
    except (UsageError, ConfigError, SourceError, LogFormatError, DatasetUnavailable) as exc:
        print(f"streamrec {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
