"""Protocols (b) and (c) in a replay: the visits a log showed, and how each ranker would have done.

A visit is known whole before the replay starts (``collect_visits``: the shown items, who clicked
and converted, the logged propensities), since a logging system knew what it showed before any of
it was clicked. When the replay reaches a visit's first impression, nothing of the visit has been
learned yet: each ranker then scores the shown items (protocol b: GAUC, NDCG of the clicked among
the shown, the click model's log-loss against the constant click-through rate) and names its own
top k of the catalogue (protocol c: the self-normalised IPS estimate of the click-through and
conversion rate it would have earned, from the logged propensities).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream.evaluation.counterfactual import SnipsEstimate
from stream.evaluation.slate import LogLossVsConstant, SlateScore
from stream.events import Event
from stream.learners.base import top_k
from stream.processor import Outcome, PartitionProcessor
from streamrec.quality.replay import CatalogueScorer

# (processor, user index, shown item indices (n,), visit) -> (n,) scores of the shown items.
ShownScorer = Callable[[PartitionProcessor, int, np.ndarray, "Visit"], np.ndarray]
# (processor, user index, visit) -> (<=k,) item indices the ranker would have served.
TopK = Callable[[PartitionProcessor, int, "Visit"], np.ndarray]


@dataclass
class Visit:
    """The impressions shown together, and what came of each (all arrays (n_shown,))."""

    user_id: str
    ts: int
    impressions: list[Event] = field(default_factory=list)
    clicked: list[bool] = field(default_factory=list)
    converted: list[bool] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    @property
    def propensities(self) -> np.ndarray | None:
        """(n_shown,) logged propensities; None unless every impression carries one."""
        values = [e.context.propensity if e.context else None for e in self.impressions]
        return None if any(v is None for v in values) else np.array(values, dtype=np.float64)

    @property
    def positions(self) -> np.ndarray:
        return np.array(
            [
                e.context.position if e.context and e.context.position is not None else n
                for n, e in enumerate(self.impressions)
            ]
        )


def _visit_key(event: Event) -> tuple[str, ...]:
    request = event.context.request_id if event.context else None
    return ("request", request) if request else ("user-ts", event.user_id, str(event.ts))


def collect_visits(events: Iterable[Event]) -> dict[str, Visit]:
    """Visits keyed by their first impression's event id. A click or conversion belongs to the
    visit of its request id, or without one, to the user's latest visit that showed the item,
    while no later visit of the user has started."""
    visits: dict[str, Visit] = {}
    by_key: dict[tuple[str, ...], Visit] = {}
    latest: dict[str, Visit] = {}
    for event in events:
        if event.type == "impression":
            key = _visit_key(event)
            visit = by_key.get(key)
            if visit is None:
                visit = by_key[key] = visits[event.event_id] = latest[event.user_id] = Visit(event.user_id, event.ts)
            visit.impressions.append(event)
            for column, default in ((visit.clicked, False), (visit.converted, False), (visit.value, 0.0)):
                column.append(default)
            continue
        request = event.context.request_id if event.context else None
        visit = by_key.get(("request", request)) if request else latest.get(event.user_id)
        shown = [n for n, e in enumerate(visit.impressions) if e.item_id == event.item_id] if visit else []
        for n in shown[:1]:
            if event.type == "click":
                visit.clicked[n] = True
            else:
                visit.converted[n] = True
                visit.value[n] += event.value or 0.0
    return visits


class Slates:
    """Observer: at each visit's first impression, every ranker is tested on the visit."""

    def __init__(
        self,
        visits: dict[str, Visit],
        rankers: dict[str, ShownScorer],
        top_ks: dict[str, TopK],
        k: int = 10,
        click_probability: ShownScorer | None = None,
    ) -> None:
        self.visits = visits
        self.rankers = rankers
        self.top_ks = top_ks
        self.k = k
        self.click_probability = click_probability
        self.slates = {name: SlateScore(k) for name in rankers}
        self.snips = {name: SnipsEstimate() for name in top_ks}
        self.logloss = LogLossVsConstant()

    def before(self, proc: PartitionProcessor, event: Event) -> None:
        visit = self.visits.get(event.event_id)
        if visit is None or not proc.accepts(event):
            return
        # The shown items exist for the ranker as they did for the logging system: ids only, nothing learned.
        xs = [proc.state.resolve(e) for e in visit.impressions]
        user, items = xs[0].user, np.array([x.item for x in xs])
        clicked = np.array(visit.clicked)
        for name, scorer in self.rankers.items():
            self.slates[name].add_visit(visit.user_id, scorer(proc, user, items, visit), clicked)
        if self.click_probability is not None:
            self.logloss.add_visit(visit.user_id, self.click_probability(proc, user, items, visit), clicked)
        propensity = visit.propensities
        if propensity is None:
            return
        for name, ranked in self.top_ks.items():
            top = ranked(proc, user, visit)
            self.snips[name].add_visit(
                visit.user_id,
                np.isin(items, top),
                propensity,
                clicked,
                np.array(visit.converted),
                np.array(visit.value),
            )

    def after(self, proc: PartitionProcessor, event: Event, outcome: Outcome) -> None:
        pass

    def summary(self, resamples: int = 9999) -> dict[str, Any]:
        out: dict[str, Any] = {
            "visits": len(self.visits),
            "slate": {name: s.summary(resamples=resamples) for name, s in self.slates.items()},
        }
        if self.logloss.visits:
            out["click_model_logloss"] = self.logloss.summary(resamples=resamples)
        if any(s.visits for s in self.snips.values()):
            out["counterfactual"] = {name: s.summary(resamples=resamples) for name, s in self.snips.items()}
        return out


# -- how each kind of ranker scores shown items and names its top k -------------------------------


def learner_scores(name: str) -> ShownScorer:
    """A processor learner's pointwise scores of the shown items (ranked like its catalogue scores)."""

    def scores(proc: PartitionProcessor, user: int, items: np.ndarray, visit: Visit) -> np.ndarray:
        learner = proc.rankers[name]
        return np.array([learner.score_one(user, int(i)) for i in items.tolist()])

    return scores


def click_probabilities(proc: PartitionProcessor, user: int, items: np.ndarray, visit: Visit) -> np.ndarray:
    """The click model's P(click) of each shown item at its logged position (per impression)."""
    model, ts_s = proc.click_model, visit.ts / 1000.0
    return np.array(
        [
            model.predict_proba_one(model.features(user, int(i), ts_s, int(p)))
            for i, p in zip(items.tolist(), visit.positions.tolist())
        ]
    )


def catalogue_scores(ranker: CatalogueScorer) -> ShownScorer:
    """A catalogue ranker (trending, the oracle) read at the shown items."""

    def scores(proc: PartitionProcessor, user: int, items: np.ndarray, visit: Visit) -> np.ndarray:
        return ranker.scores(proc, visit.impressions[0], proc.state.n_items)[items]

    return scores


def learner_top_k(name: str, k: int) -> TopK:
    def ranked(proc: PartitionProcessor, user: int, visit: Visit) -> np.ndarray:
        return proc.rankers[name].recommend(user, k)

    return ranked


def catalogue_top_k(ranker: CatalogueScorer, k: int) -> TopK:
    """Top k of a catalogue ranker by the served rule, at the moment of the visit."""

    def ranked(proc: PartitionProcessor, user: int, visit: Visit) -> np.ndarray:
        scores = ranker.scores(proc, visit.impressions[0], proc.state.n_items)
        return top_k(scores, k, proc.state.excluded_items(user))

    return ranked
