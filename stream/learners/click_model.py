"""Online click model: logistic regression over features built from state.

It estimates P(click | shown): calibrated per impression (its log-loss is measured against the
constant click-through rate's). What a catalogue ranking is asked is another quantity, the
probability that the user takes the item next: on an impression log that is how likely the item is
to be seen times how likely it is to be taken, so ``score_catalogue`` adds the exposure ranker's log
exposure (``ExposureRanker.seen``) to log P(click | shown). On a log of clicks alone (sampled
negatives) the model's P already compares a click with a random item, and ranks as it is.

Pointwise by nature, so ranking is two-stage: candidates are the union of the top
``candidates_per_source`` items of popularity, item-kNN, MF and the exposure ranker, then each
candidate is scored.

Training examples, learned after being scored (test-then-learn):
* a click is a positive;
* a non-clicked impression is a negative, kept with probability ``negative_rate`` and weighted
  ``1 / negative_rate`` (negative down-sampling with importance weights);
* while a partition has seen no impression at all (a positives-only log such as MovieLens),
  ``sampled_negatives`` items per click, drawn uniformly from the catalogue.
Impressions that are later clicked are learned as a negative and then as a positive ("fake
negative" training, Ktena et al. 2019): the model's odds p/(1-p) estimate the CTR.

The features are standardised online (running mean and variance) and the weights learn by
AdaGrad (step 0.1): river's ``StandardScaler | LogisticRegression``, step for step, on feature
lists rather than dictionaries (``stream.learners.logistic``, for speed). The features' scales
differ by orders of magnitude (log popularity against a CTR), so no one SGD step fit them all:
0.05 ranked MovieLens but was overconfident per impression, 0.002 was calibrated but lost
MovieLens recall. Development figures, ``streamrec bench quality`` (docs/explanation/learners.md
has the alternatives tried):

=========================  =============  ==================  ==================  ==================
click model                ML-100K        exposure recall@10  per-visit GAUC      log-loss per
                           recall@10      seeds 1-3           seeds 1-3           impression (1-3)
=========================  =============  ==================  ==================  ==================
SGD 0.002                  0.120          0.228 0.217 0.187   0.677 0.680 0.696   0.265 0.307 0.345
standardised, AdaGrad 0.1  0.183          0.257 0.241 0.210   0.692 0.694 0.714   0.260 0.303 0.338
=========================  =============  ==================  ==================  ==================

(The constant click-through rate's log-loss: 0.287 0.329 0.377; SGD 0.05: ML 0.147, log-loss 0.40
on seed 1.) The scaler's statistics and AdaGrad's accumulated squared gradients are model state:
``to_state`` carries them, so a restored model goes on learning exactly as the original would have.
"""

from __future__ import annotations

import logging
import math
import zlib
from typing import Any

import numpy as np

from stream.learners.base import top_k
from stream.learners.exposure import ExposureRanker
from stream.learners.item_knn import ItemKNN
from stream.learners.logistic import Optimiser, StandardisedLogistic
from stream.learners.mf import IncrementalMF
from stream.learners.popularity import Popularity
from stream.state.exposure import SIGNALS
from stream.state.features import FeatureState, Interaction

FEATURES = ("pop", "trend", "ctr", "cat_affinity", "knn", "mf", "position", *SIGNALS)
POSITION = FEATURES.index("position")

log = logging.getLogger(__name__)


class ClickModel:
    name = "click_model"

    def __init__(
        self,
        state: FeatureState,
        popularity: Popularity,
        knn: ItemKNN,
        mf: IncrementalMF,
        exposure: ExposureRanker,
        learning_rate: float = 0.1,
        l2: float = 0.0,
        negative_rate: float = 0.1,
        sampled_negatives: int = 1,
        candidates_per_source: int = 50,
        optimiser: Optimiser = "adagrad",
        standardise: bool = True,
    ) -> None:
        self.state = state
        self.popularity = popularity
        self.knn = knn
        self.mf = mf
        self.exposure = exposure
        self.negative_rate = negative_rate
        self.sampled_negatives = sampled_negatives
        self.candidates_per_source = candidates_per_source
        self.model = StandardisedLogistic(FEATURES, optimiser, learning_rate, l2, standardise)

    # -- features ------------------------------------------------------------------------------

    def features(self, user: int, item: int, ts_s: float, position: int = -1) -> list[float]:
        """One example's features in ``FEATURES`` order, from state as it is now (before learning)."""
        st = self.state
        shown, category_exposure, category_lift = st.exposure.signals_one(user, item, st.item_category[item])
        return [
            math.log1p(self.popularity.score_one(user, item)),
            math.log1p(st.item_counters["click"].get_one(item, ts_s, 0)),
            st.item_ctr_one(item, ts_s),
            st.category_affinity_one(user, item),
            self._squash(self.knn.similarity(user, item)),
            self.mf.score_one(user, item),
            math.log1p(position) if position >= 0 else 0.0,
            shown,
            category_exposure,
            category_lift,
        ]

    @staticmethod
    def _squash(knn: float) -> float:
        return knn / (1.0 + knn)

    def _feature_matrix(
        self,
        user: int,
        items: np.ndarray,
        ts_s: float,
        knn: np.ndarray,
        mf: np.ndarray,
        exposure: dict[str, np.ndarray],
    ) -> np.ndarray:
        """(m,) candidates -> (m, len(FEATURES)), the same features as ``features`` row by row;
        ``exposure``: the exposure ranker's (m,) signals of the candidates."""
        st = self.state
        clicks = self.popularity.score_items(user, items)
        trend = st.item_counters["click"].get_many(items, ts_s)[0]
        return np.column_stack(
            [
                np.log1p(clicks),
                np.log1p(trend),
                st.item_ctr(items, ts_s),
                st.category_affinity(user, items),
                knn / (1.0 + knn),
                mf,
                np.zeros(len(items)),
                *(exposure[name] for name in SIGNALS),
            ]
        )

    # -- learn / predict -----------------------------------------------------------------------

    def predict_proba_one(self, x: list[float]) -> float:
        return self.model.predict_proba_one(x)

    def click_probability(self, user: int, item: int, position: int = -1) -> float:
        """P(click | shown) of showing ``item`` to ``user`` now (-1: position unknown)."""
        return self.predict_proba_one(self.features(user, item, self.state.max_ts_ms / 1000.0, position))

    def score_one(self, user: int, item: int) -> float:
        """Pointwise, ranked as ``score_catalogue`` ranks: log P(seen) + log P(click | shown) on an
        impression log, P(click) on a log of clicks alone."""
        return self.score_features(user, item, self.features(user, item, self.state.max_ts_ms / 1000.0))

    def score_features(self, user: int, item: int, features: list[float]) -> float:
        """``score_one`` from the item's features, already built."""
        p = self.predict_proba_one(features)
        if not self.state.exposure.impressions:
            return p
        return self.exposure.seen_one(user, item) + math.log(max(p, 1e-300))  # p underflows to 0 when saturated

    def examples(self, x: Interaction) -> list[tuple[list[float], bool, float]]:
        """The (features, label, weight) examples this interaction teaches, built before learning."""
        out: list[tuple[list[float], bool, float]] = []
        if x.type == "click":
            out.append((self.features(x.user, x.item, x.ts_s, x.position), True, 1.0))
            n = self.state.n_items
            h = zlib.crc32(x.event.event_id.encode())
            sampled = self.sampled_negatives if n > 1 and not self.state.has_impressions else 0
            for k in range(sampled):
                j = (h * 2246822519 + k * 3266489917 + 1) % n
                if j != x.item:
                    out.append((self.features(x.user, j, x.ts_s), False, 1.0))
        # A deterministic coin (hash of the event id), so replays keep the same sample.
        elif (
            x.type == "impression"
            and self.negative_rate > 0
            and (zlib.crc32(x.event.event_id.encode()) % 10_000) < self.negative_rate * 10_000
        ):
            out.append((self.features(x.user, x.item, x.ts_s, x.position), False, 1.0 / self.negative_rate))
        return out

    def learn_one(self, x: Interaction) -> None:
        for features, label, weight in self.examples(x):
            self.model.learn_one(features, label, w=weight)

    # -- ranking -------------------------------------------------------------------------------

    def candidates(self, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Union of each source's top items: (m,) items and their (m,) knn and (m,) mf scores."""
        c = self.candidates_per_source
        knn_all = self.knn.score_catalogue(user)
        mf_all = self.mf.score_catalogue(user)
        pop_all = self.popularity.score_catalogue(user)
        sources = [pop_all, knn_all, mf_all]
        if self.state.exposure.impressions:
            sources.append(self.exposure.score_catalogue(user))  # memoised: the scores reuse it
        excluded = self.state.excluded_items(user)
        items = np.unique(np.concatenate([top_k(s, c, excluded) for s in sources]))
        # knn_all carries a 1e-9 popularity tie-breaker; strip it so features match ``features``.
        return items, knn_all[items] - pop_all[items] * 1e-9, mf_all[items]

    def score_items(
        self,
        user: int | None,
        items: np.ndarray,
        knn: np.ndarray,
        mf: np.ndarray,
        exposure: dict[str, np.ndarray] | None = None,
    ) -> np.ndarray:
        """(m,) of the (ascending) ``items`` whose item-kNN and MF scores are ``knn`` and ``mf``
        (and exposure ranker's signals ``exposure``, computed here if not given): log P(seen) +
        log P(click | shown) on an impression log, the logit of P(click) on a log of clicks alone
        (the same order as P)."""
        if user is None or not len(items):
            return np.zeros(len(items))
        exposure = exposure if exposure is not None else self.exposure.signals(user, items)
        logit = self.model.logits(self._feature_matrix(user, items, self.state.max_ts_ms / 1000.0, knn, mf, exposure))
        if not self.state.exposure.impressions:
            return logit
        scores: np.ndarray = exposure["seen"] - np.logaddexp(0.0, -logit)
        return scores

    def score_catalogue(self, user: int) -> np.ndarray:
        """(n_items,): candidates get ``score_items``; everything else -inf."""
        scores = np.full(self.state.n_items, -np.inf)
        items, knn, mf = self.candidates(user)
        exposure = None
        if self.state.exposure.impressions:  # the exposure ranker's catalogue, already scored for candidates
            exposure = {name: s[items] for name, s in self.exposure.catalogue_signals(user).items()}
        scores[items] = self.score_items(user, items, knn, mf, exposure)
        return scores

    def recommend(self, user: int, k: int) -> np.ndarray:
        return top_k(self.score_catalogue(user), k, self.state.excluded_items(user))

    # -- snapshots -----------------------------------------------------------------------------

    def _kind(self) -> dict[str, Any]:
        return {"optimiser": self.model.optimiser, "standardise": self.model.standardise}

    def to_state(self) -> dict[str, Any]:
        """Everything the next prediction and the next step depend on: the weights, AdaGrad's
        accumulated squared gradients, the scaler's running statistics."""
        return {**self._kind(), **self.model.to_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore ``to_state``; a snapshot of another kind of model (another optimiser, scaled or
        not; snapshots older than these keys were plain SGD on raw features) leaves this one fresh:
        its weights belong to other feature scales."""
        kind = {"optimiser": state.get("optimiser", "sgd"), "standardise": state.get("standardise", False)}
        if kind != self._kind():
            log.warning("click model snapshot is %s, configured %s: starting it afresh", kind, self._kind())
            return
        self.model.load_state(state)
