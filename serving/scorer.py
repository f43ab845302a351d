"""Top-k for one user: candidates -> one batched model call -> blend with the online learners.

The blend's weights are the partition's :class:`~stream.learners.blend.OnlineBlend`, which
:meth:`Scorer.learn_click` teaches from each click before the worker applies it.

The model in use is one attribute, replaced whole by :meth:`Scorer.swap` (a new session is built
beside the old one first); a request reads it once, so it is scored by exactly one version and the
response names that version. Failure contract:

* no model loaded            -> the online learners' blend, ``fallback="no_model"``;
* the model raises           -> the same, ``fallback="model_error"`` (the model stays loaded);
* no candidates at all       -> an empty list, ``fallback="no_candidates"``.

Pointwise scoring (``model.score`` on candidate rows) is the only model call: full-catalogue
scoring stays in the learners' evaluation code.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from contextlib import AbstractContextManager, nullcontext
from typing import NamedTuple, Protocol

import msgspec
import numpy as np

from serving.candidates import CandidateGenerator
from serving.metrics import ServingMetrics
from serving.model_inputs import ModelVocabulary
from serving.sequence_inputs import SequenceVocabulary, is_sequence_model
from stream.config import ServingConfig
from stream.events import Event
from stream.learners.exposure import SIGNALS as EXPOSURE_SIGNALS
from stream.model_artifact import Manifest, parse_utc_timestamp
from stream.processor import PartitionProcessor
from stream.state.features import FeatureState

log = logging.getLogger(__name__)


class PointwiseModel(Protocol):
    """What the scorer needs of a model: its manifest, and (B,) logits for named (B, ...) inputs."""

    manifest: Manifest

    def score(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...


class InputBuilder(Protocol):
    def build(self, user_id: str, user: int | None, items: np.ndarray) -> dict[str, np.ndarray]: ...


class Vocabulary(Protocol):
    """A model's id maps: what turns one partition's state into the model's named inputs."""

    def for_partition(self, state: FeatureState) -> InputBuilder: ...


def vocabulary(manifest: Manifest) -> Vocabulary:
    """The input builder a manifest's graph takes: a sequence model's tokens, or pointwise rows."""
    return SequenceVocabulary(manifest) if is_sequence_model(manifest) else ModelVocabulary(manifest)


class LoadedModel(NamedTuple):
    model: PointwiseModel
    vocab: Vocabulary

    @property
    def version(self) -> int:
        return self.model.manifest.version


class Scored(NamedTuple):
    """One request's candidates and signals, before blending."""

    items: np.ndarray  # (m,) stream item ids
    signals: dict[str, np.ndarray]  # signal name (stream.learners.blend.SIGNALS) -> (m,) scores
    keys: list[str]  # stream item id -> external id
    version: int | None  # the model version that scored them, None if none did
    fallback: str | None
    generated: dict[str, int]


class Recommendation(msgspec.Struct, kw_only=True):
    user_id: str
    items: list[str]
    scores: list[float]  # blended score of each item, best first
    model_version: int | None  # None: served by the online learners alone
    fallback: str | None = None  # why the model was not used (see the module docstring)
    candidates: int = 0


def rank_of_item(scores: np.ndarray, items: np.ndarray, item: int) -> int | None:
    """0-based rank ``top_k_order`` gives ``item`` among (m,) candidates; None if not a candidate."""
    at = np.flatnonzero(items == item)
    if not len(at):
        return None
    s = scores[at[0]]
    return int(np.count_nonzero(scores > s) + np.count_nonzero((scores == s) & (items < item)))


def top_k_order(scores: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k best (m,) scores, best first; ties go to the lower item id."""
    k = min(k, len(scores))
    if k < len(scores):  # everything tied with the k-th best competes for the last places
        kth = scores[np.argpartition(-scores, k - 1)[k - 1]]
        part = np.flatnonzero(scores >= kth)
    else:
        part = np.arange(len(scores))
    return part[np.lexsort((items[part], -scores[part]))][:k]


class Scorer:
    def __init__(self, cfg: ServingConfig, metrics: ServingMetrics | None = None) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.candidates = CandidateGenerator(cfg)
        self.current: LoadedModel | None = None
        # The latest computation times (s), for summaries that quote exact p50/p99 (the histogram
        # only resolves its buckets).
        self.recent_seconds: deque[float] = deque(maxlen=100_000)
        self.blend_failures = 0

    @property
    def version(self) -> int | None:
        current = self.current
        return current.version if current else None

    def swap(self, model: PointwiseModel) -> None:
        """Serve ``model`` from the next request on (its id maps are prepared before the switch)."""
        loaded = LoadedModel(model, vocabulary(model.manifest))  # may raise ArtifactError: nothing changes
        self.current = loaded
        if self.metrics:
            self.metrics.model_version.set(loaded.version)
            self.metrics.model_info.info({"name": model.manifest.name, "version": str(loaded.version)})
            self.metrics.model_created.set(parse_utc_timestamp(model.manifest.created_at))

    def score(
        self,
        processor: PartitionProcessor,
        user_id: str,
        exclude: tuple[str, ...] = (),
        lock: AbstractContextManager[object] | None = None,
    ) -> Scored:
        """Every candidate of ``user_id`` with each signal: the model's logits (one batched call)
        and the learners' scores. ``lock`` guards the partition's state against its worker while
        state is read; the model runs outside it."""
        current = self.current  # read once: one version serves the whole request
        with lock or nullcontext():
            state = processor.state
            user = state.users.get(user_id)
            cands = self.candidates.generate(state, processor.knn, processor.mf, user, exclude)
            items = cands.items
            signals: dict[str, np.ndarray] = {}
            inputs = None
            if len(items):
                signals["item_knn"] = cands.knn
                signals["isgd_mf"] = processor.mf.score_items(user, items)
                signals["popularity"] = np.log1p(processor.popularity.score_items(user, items))
                exposure = processor.exposure.signals(user, items)
                signals.update({name: exposure[name] for name in EXPOSURE_SIGNALS})
                signals["click_model"] = processor.click_model.score_items(
                    user, items, cands.knn, signals["isgd_mf"], exposure
                )
                if current is not None:
                    inputs = current.vocab.for_partition(state).build(user_id, user, items)
            keys = state.items.keys  # append-only: safe to read after the lock
        fallback = None
        if not len(items):
            fallback = "no_candidates"
        elif current is None or inputs is None:
            fallback = "no_model"
        else:
            try:
                signals["student"] = current.model.score(inputs)
            except Exception as exc:
                log.warning("model v%d failed to score (%s); serving from the online learners", current.version, exc)
                fallback = "model_error"
        version = current.version if current is not None and "student" in signals else None
        return Scored(items, signals, keys, version, fallback, cands.generated)

    def recommend(
        self,
        processor: PartitionProcessor,
        user_id: str,
        k: int,
        exclude: tuple[str, ...] = (),
        lock: AbstractContextManager[object] | None = None,
    ) -> Recommendation:
        """Top ``k`` unseen items for ``user_id`` from the partition ``processor`` holds."""
        started = time.perf_counter()
        scored = self.score(processor, user_id, exclude, lock)
        items = scored.items
        if len(items):
            scores = processor.blend.score(scored.signals)
            order = top_k_order(scores, items, k)
            top_items, top_scores = [scored.keys[i] for i in items[order].tolist()], scores[order].tolist()
        else:
            top_items, top_scores = [], []
        rec = Recommendation(
            user_id=user_id,
            items=top_items,
            scores=top_scores,
            model_version=scored.version,
            fallback=scored.fallback,
            candidates=len(items),
        )
        took = time.perf_counter() - started
        self.recent_seconds.append(took)
        if self.metrics:
            m = self.metrics
            m.scoring_seconds.observe(took)
            m.candidates.observe(len(items))
            for source, count in scored.generated.items():
                m.candidates_by_source.labels(source).inc(count)
            if scored.fallback:
                m.fallbacks.labels(scored.fallback).inc()
        return rec

    def learn_click(
        self, processor: PartitionProcessor, event: Event, lock: AbstractContextManager[object] | None = None
    ) -> None:
        """Test-then-learn of the partition's blend on a click about to be applied: the candidates
        this user would have been offered, and where the clicked item stood among them. Called by
        the worker, the partition's only writer, before it applies the click: ``lock`` guards the
        state while candidates are built (as for a request), the model runs outside it. A failure
        here costs one learning step, never the event: it is counted and the click applied as usual.
        If the model fails, the step is taken without the student (its weight waits)."""
        if not processor.blend.samples(event.event_id):  # not sampled, or fixed weights: spare the scoring
            return
        try:
            item = processor.state.items.get(event.item_id)
            if item is None:  # an item first seen now: no candidate list could have held it
                return
            scored = self.score(processor, event.user_id, lock=lock)  # a new user gets trending items
            at = np.flatnonzero(scored.items == item)
            if len(at):  # an item outside the candidates: no ranking of them could have had it
                processor.blend.learn_one(scored.signals, int(at[0]))
                if self.metrics:
                    self.metrics.blend_updates.inc()
        except Exception:
            self.blend_failures += 1
            if self.metrics:
                self.metrics.blend_failures.inc()
            if self.blend_failures == 1:  # the first with its traceback; a repeat would flood the log per click
                log.exception(
                    "could not learn the blend from the event %s (further failures are only counted)", event.event_id
                )
