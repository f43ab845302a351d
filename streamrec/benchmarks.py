"""``streamrec bench serve`` and ``streamrec bench freshness``: scripts that print figures.

Latency follows docs/explanation/definitions.md: p50 and p99 over at least 10,000 requests after a warm-up, one request
in flight. Freshness: from an event's producer-set timestamp to the moment its recommendation is
read back from the recommendations topic. Models are untrained (random weights): these figures
measure time, and a trained model of the same shape costs the same.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from serving.freshness import FreshnessProbe
from serving.model import OnnxModel
from serving.scorer import Scorer
from serving.sequence_inputs import is_sequence_model
from stream.config import Config
from stream.events import Event, ItemAttributes
from stream.kafka.clients import make_producer
from stream.processor import PartitionProcessor
from stream.produce import produce_events
from stream.sources.synthetic import (
    START_TS_MS,
    SyntheticConfig,
    SyntheticWorld,
    item_key,
    synthetic_events,
)

log = logging.getLogger(__name__)

CATALOGUE_USER = "catalogue-feed"


def _quantiles_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def catalogue_feed(world: SyntheticWorld, event_type: str = "impression") -> Iterator[Event]:
    """One impression per catalogue item, before any user event: how a catalogue service would
    announce its items, so state and model know all of them (sessions alone reach a fraction).
    Clicks instead give every item a click, each from a user of its own (so that no co-visitation
    comes of them): the worst case of the MF candidate search."""
    for item, (cat, tags) in enumerate(zip(world.item_category.tolist(), world.item_tags)):
        yield Event(
            event_id=f"catalogue-{item}",
            ts=START_TS_MS - 1,
            user_id=CATALOGUE_USER if event_type == "impression" else f"{CATALOGUE_USER}-{item}",
            item_id=item_key(item),
            type=event_type,
            item=ItemAttributes(category=f"cat{cat}", tags=list(tags)),
        )


def _stage_student(events: list[Event], directory: Path):
    """An untrained student (and teacher) over ``events``' catalogue, the student exported and checked."""
    import torch

    from offline.export import stage
    from offline.features import ContentTables
    from offline.pipeline import model_sizes
    from offline.samples import build_dataset
    from offline.student import Student
    from offline.teacher import Teacher

    ds = build_dataset(events)
    tables = ContentTables(ds.catalogue)
    torch.manual_seed(0)
    student, teacher = Student(*model_sizes(ds)).eval(), Teacher(*model_sizes(ds)).eval()
    held_out = tables.arrays(ds.test.user[:512], ds.test.item[:512], ds.test.recent[:512])
    stage(student, "student", directory, ds.catalogue, tables, held_out, ds.window, ds.events, {"validation": {}})
    log.info(
        f"student ({sum(p.numel() for p in student.parameters()):,} params) and teacher "
        f"({sum(p.numel() for p in teacher.parameters()):,} params) over {len(ds.catalogue.items) - 1:,} items"
    )
    return teacher


def _stage_sequence_student(events: list[Event], directory: Path, length: int):
    """An untrained sequence student (and teacher) over ``events``' catalogue reading ``length``
    tokens, the student exported and checked."""
    from offline.samples import build_dataset
    from offline.sequence_export import request_inputs, stage_sequence
    from offline.sequence_model import STUDENT, TEACHER
    from offline.sequence_pipeline import n_params, new_model
    from stream.model_artifact import TrainingWindow

    ds = build_dataset(events)
    student = new_model(ds.catalogue, length, STUDENT, seed=0).eval()
    teacher = new_model(ds.catalogue, length, TEACHER, seed=0).eval()
    history = np.zeros(length, dtype=np.int64)
    history[:3] = [1, 2, 3]
    example = request_inputs(history, np.where(history > 0, 2, 0), np.zeros(length, np.int64), np.arange(1, 101))
    window = TrainingWindow(start_ts_ms=ds.window[0], end_ts_ms=ds.window[1], events=ds.events)
    stage_sequence(student, "student", directory, ds.catalogue, example, window, {"validation": {}})
    log.info(
        f"sequence student ({n_params(student):,} params) and teacher ({n_params(teacher):,} params) over "
        f"{len(ds.catalogue.items) - 1:,} items"
    )
    return teacher


class TorchTeacher:
    """The baseline: a teacher in eager mode behind the scorer's model interface. ``logit``: the
    module the student's graph was exported from, with the teacher's weights; ``names``: its inputs."""

    def __init__(self, logit, names: tuple[str, ...], manifest) -> None:
        import torch

        self.manifest = manifest
        self._torch = torch
        self._names = names
        self._logit = logit.eval()

    def score(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        with self._torch.inference_mode():
            args = (self._torch.from_numpy(np.ascontiguousarray(inputs[n])) for n in self._names)
            return self._logit(*args).numpy()


def _eager_teacher(teacher, manifest) -> TorchTeacher:
    if is_sequence_model(manifest):
        from offline import sequence_export

        return TorchTeacher(sequence_export.SequenceScorer(teacher), sequence_export.INPUT_NAMES, manifest)
    from offline.features import INPUT_NAMES
    from offline.teacher import ClickLogit

    return TorchTeacher(ClickLogit(teacher), INPUT_NAMES, manifest)


def _student_and_baseline(cfg: Config, events: list[Event]) -> tuple[OnnxModel, TorchTeacher]:
    """The ONNX student of ``train.model``'s kind over ``events``' catalogue, and its teacher in eager torch."""
    with tempfile.TemporaryDirectory(prefix="streamrec-bench-") as tmp:
        if cfg.train.model == "sequence":
            teacher = _stage_sequence_student(events, Path(tmp), cfg.state.sequence_tokens)
        else:
            teacher = _stage_student(events, Path(tmp))
        student = OnnxModel.load(Path(tmp), cfg.serving.threads)
    return student, _eager_teacher(teacher, student.manifest)


def _bench_logs(items: int, sessions: int, seed: int, every_item_clicked: bool) -> tuple[list[Event], list[Event]]:
    """The log the serving state replays, and the one the (untrained) models are staged on: the
    catalogue's impressions and the sessions. Staging on 100,000 catalogue clicks would only bloat its
    training rows."""
    # 2,000 users: the generator keeps a (users, items) clicked matrix.
    world_cfg = SyntheticConfig(n_items=items, n_users=2000, n_sessions=sessions, seed=seed)
    world = SyntheticWorld(world_cfg)
    started = time.perf_counter()
    sessions_log = list(synthetic_events(world_cfg, world))
    staged = list(catalogue_feed(world)) + sessions_log
    served = list(catalogue_feed(world, "click")) + sessions_log if every_item_clicked else staged
    log.info(
        f"{len(served):,} events ({items:,} catalogue {'clicks' if every_item_clicked else 'impressions'} + "
        f"{sessions:,} sessions) in {time.perf_counter() - started:.0f} s"
    )
    return served, staged


def bench_serve(
    cfg: Config,
    items: int = 100_000,
    sessions: int = 3000,
    requests: int = 10_000,
    warmup: int = 1000,
    seed: int = 0,
    every_item_clicked: bool = False,
) -> dict[str, Any]:
    """Top-10 latency of candidates + ONNX student + blend, and of the same with the eager teacher."""
    import torch

    torch.set_num_threads(cfg.serving.threads)  # the same thread budget as onnxruntime's session
    served, staged = _bench_logs(items, sessions, seed, every_item_clicked)
    proc = PartitionProcessor(
        msgspec.structs.replace(cfg, worker=msgspec.structs.replace(cfg.worker, prequential_every=10**9))
    )  # state only: the learners' full-catalogue tests are not benched
    for event in served:
        proc.process(event)
    log.info("state: %d items, %d users", proc.state.n_items, len(proc.state.users))
    student, baseline = _student_and_baseline(cfg, staged)
    users = [u for u in proc.state.users.keys if not u.startswith(CATALOGUE_USER)]
    rng = np.random.default_rng(seed)
    asked = [users[i] for i in rng.integers(0, len(users), warmup + requests)]
    results: dict[str, Any] = {
        "model": "sequence" if is_sequence_model(student.manifest) else "pointwise",  # what was staged
        "catalogue_items": proc.state.n_items,
        "requests": requests,
        "k": 10,
        "threads": cfg.serving.threads,
    }
    for name, model in (("onnx_student", student), ("torch_teacher_eager", baseline)):
        scorer = Scorer(cfg.serving)
        scorer.swap(model)
        times, candidates = [], []
        for n, user in enumerate(asked):
            t = time.perf_counter()
            rec = scorer.recommend(proc, user, 10)
            if n >= warmup:
                times.append(time.perf_counter() - t)
                candidates.append(rec.candidates)
        if rec.model_version is None or rec.fallback is not None:  # the model must really have ranked
            raise RuntimeError(f"{name} did not rank the candidates: {rec}")
        results[name] = {**_quantiles_ms(times), "candidates_median": int(statistics.median(candidates))}
        log.info("%s: p50 %.3f ms, p99 %.3f ms", name, results[name]["p50_ms"], results[name]["p99_ms"])
    # The one search that grows with the catalogue covers the items with a click (serving.candidates).
    results["mf_searched_items"] = len(scorer.candidates.item_lists(proc.state, proc.mf).mf_items)
    s, t = results["onnx_student"], results["torch_teacher_eager"]
    results["teacher_over_student_p50"] = round(t["p50_ms"] / s["p50_ms"], 2)
    results["teacher_over_student_p99"] = round(t["p99_ms"] / s["p99_ms"], 2)
    results["p50_ms"], results["p99_ms"] = s["p50_ms"], s["p99_ms"]
    return results


def bench_freshness(cfg: Config, rate: float = 1000.0, seconds: float = 30.0, warmup: float = 0.2) -> dict[str, Any]:
    """Events at ``rate``/s through the embedded broker, the serving worker and back (one process)."""
    from offline.registry import Registry
    from streamrec.stack import ServingStack

    total = int(rate * seconds)
    world = SyntheticConfig(n_sessions=max(total // 10, 100))
    events = list(synthetic_events(world))[:total]
    with tempfile.TemporaryDirectory(prefix="streamrec-freshness-") as tmp:
        registry = Registry(Path(tmp) / "models")
        _stage_student(events, Path(tmp) / "staged")
        registry.register(Path(tmp) / "staged")
        registry.promote(1, None)
        cfg = msgspec.structs.replace(
            cfg,
            worker=msgspec.structs.replace(cfg.worker, data_dir=str(Path(tmp) / "data")),
            serving=msgspec.structs.replace(cfg.serving, port=0),
        )
        stack = ServingStack.build(cfg, registry.root)
        stop = threading.Event()
        runner = threading.Thread(target=stack.run, args=(stop,), name="serving-worker")
        runner.start()
        try:
            if not stack.wait_until_assigned(stop):
                raise RuntimeError("the serving worker joined no group within 60 s; is the broker up?")
            log.info("worker owns partitions %s; model version %s", sorted(stack.worker.owned), stack.scorer.version)
            probe = FreshnessProbe(cfg.kafka)
            probe.start()
            time.sleep(1.0)
            stamped = (msgspec.structs.replace(e, ts=int(time.time() * 1000)) for e in events)
            sent = produce_events(make_producer(cfg.kafka), cfg.kafka.events_topic, stamped, rate=rate)
            time.sleep(2.0)
            probe.stop()
        finally:
            stop.set()
            runner.join(30)
    samples = probe.samples_ms[int(len(probe.samples_ms) * warmup) :]
    if not samples:
        raise RuntimeError("no recommendation was read back from the topic; is the worker running?")
    return {
        "events": sent,
        "rate_per_s": rate,
        "recommendations_read": len(probe.samples_ms),
        "measured_after_warmup": len(samples),
        "model_versions": sorted(v or 0 for v in probe.versions),
        **_quantiles_ms([s / 1000.0 for s in samples]),
        "worker_share_p50_ms": round(
            float(np.percentile(probe.compute_ms[int(len(probe.compute_ms) * warmup) :], 50)), 3
        ),
    }
