"""How far could a learner get on the exposure world? A ranker that knows everything but the users.

The oracle (``ExposureOracle``) knows every user's taste, which no learner can. This ranker knows
everything else -- the world's item vectors, popularity, logging policy, click model and drift
point -- and infers each user's taste from their earlier visits: a posterior over ``samples`` draws
from the world's prior of tastes (shared by all users; importance weights per user). Each closed
visit multiplies a user's weights by the likelihood of what it showed (the policy's inclusion
probabilities, as a pseudo-likelihood of the slate) and of which shown items were clicked; at the
drift point every user's weights start afresh. A click is ranked, before its visit is learnt, by
the posterior mean of inclusion x P(click | shown) over the items logged so far, less the user's
earlier clicks (the served rule).

Its recall is a ceiling for learners that is reachable in principle (the oracle's is not): what
is left between the serving path and it is what better estimates of the world and of users could
still win. ``--ablation`` adds posteriors that learn from the clicks alone, the slates alone and
nothing at all (the prior): which evidence carries the ceiling; and a posterior that knows each
item only by its category (every item vector replaced by its category's mean vector): what is left
of the ceiling to a learner that cannot tell the items of a category apart. Development figures
(seeds 1-3) are in docs/explanation/learners.md.

    python -m streamrec.quality.ceiling --seeds 1,2,3 [--ablation]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from stream.learners.base import rank_of
from stream.sources.exposure import (
    ExposureConfig,
    ExposureWorld,
    Visit,
    click_ts,
    first_clicks,
    masked_softmax,
    simulate,
)
from stream.sources.synthetic import user_key
from streamrec.quality.clicks import RankLog

# Posteriors by the evidence they learn from (slates, clicks) and whether they know items only by
# their category. The ablation adds every one after the first.
POSTERIORS = {
    "posterior": (True, True, False),
    "posterior, clicks only": (False, True, False),
    "posterior, slates only": (True, False, False),
    "posterior, no user evidence": (False, False, False),
    "posterior, items known by category": (True, True, True),
}


def category_means(world: ExposureWorld) -> NDArray[np.float64]:
    """(items, dim) each item's vector replaced by the mean vector of its category's items."""
    latent = world.latent
    category = latent.item_category
    sums = np.zeros((world.cfg.n_categories, world.cfg.dim))
    np.add.at(sums, category, latent.item_vec)
    counts = np.bincount(category, minlength=world.cfg.n_categories)
    means: NDArray[np.float64] = sums[category] / counts[category, None]
    return means


class TasteDraws:
    """Prior draws of a user's taste vector and, per visit, what the world makes of each draw; the
    posteriors of one replay share them (they differ only in the evidence they weigh).
    ``item_vectors``: (items, dim) what the posterior takes the items to be (the world's, by default)."""

    def __init__(
        self, world: ExposureWorld, samples: int, seed: int = 0, item_vectors: NDArray[np.float64] | None = None
    ) -> None:
        cfg, latent = world.cfg, world.latent
        rng = np.random.default_rng([cfg.seed, 99, seed])
        first, second = rng.integers(0, cfg.n_categories, (2, samples))
        mix = rng.uniform(0.5, 1.0, (samples, 1))
        draws = mix * latent.centroids[first] + (1 - mix) * latent.centroids[second]
        draws += rng.normal(0, 0.2, (samples, cfg.dim))  # SyntheticWorld._draw_user_vectors' prior
        self.world = world
        self.affinity = draws @ (latent.item_vec if item_vectors is None else item_vectors).T  # (samples, items)
        self._terms: tuple[tuple[int, bool], NDArray[np.float64], NDArray[np.float64]] | None = None

    def terms(self, visit: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(samples, items) inclusion probabilities and click logits at ``visit``, per taste draw."""
        world, cfg = self.world, self.world.cfg
        available = world.available(visit)
        key = (int(available.sum()), visit >= world.latent.drift_session)
        if self._terms is None or self._terms[0] != key:
            bias = world.latent.item_bias(visit)
            popular = masked_softmax(cfg.popularity_temperature * bias, available)
            z = np.where(available, cfg.affinity_temperature * self.affinity, -np.inf)
            liked = np.exp(z - z.max(axis=1, keepdims=True))
            liked /= liked.sum(axis=1, keepdims=True)
            weights = cfg.popularity_share * popular + (1 - cfg.popularity_share) * liked
            inclusion = np.minimum(1.0, cfg.slate_size * weights)  # the policy's cap, not iterated
            logits = cfg.click_bias + cfg.affinity_scale * self.affinity + bias
            self._terms = (key, inclusion, logits)
        return self._terms[1], self._terms[2]


class TastePosterior:
    """Each user's posterior over the draws' tastes, given the world's parameters. ``slates`` /
    ``clicks``: which evidence of a visit it learns from (both, by default; the ablation leaves one
    or both out)."""

    def __init__(self, draws: TasteDraws, slates: bool = True, clicks: bool = True) -> None:
        self.draws, self.world = draws, draws.world
        self.slates, self.clicks = slates, clicks
        self.log_weights: dict[int, NDArray[np.float64]] = {}

    def scores(self, user: int, visit: int) -> NDArray[np.float64]:
        """(items,) posterior mean of inclusion x P(click | shown)."""
        inclusion, logits = self.draws.terms(visit)
        log_w = self.log_weights.get(user)
        w = np.full(len(inclusion), 1.0 / len(inclusion)) if log_w is None else np.exp(log_w - log_w.max())
        w /= w.sum()
        scores: NDArray[np.float64] = w @ (inclusion / (1.0 + np.exp(-logits)))
        return scores

    def learn(self, v: Visit) -> None:
        """Fold one closed visit into its user's weights; at the drift point everyone starts afresh."""
        if v.number == self.world.latent.drift_session:
            self.log_weights.clear()
        inclusion, logits = self.draws.terms(v.number)
        shown = v.items
        logit = logits[:, shown] - self.world.cfg.position_decay * np.arange(len(shown))
        clicked = v.clicked.astype(np.float64)
        log_w = self.log_weights.get(v.user, np.zeros(len(inclusion)))
        if self.slates:
            log_w = log_w + np.log(np.maximum(inclusion[:, shown], 1e-12)).sum(axis=1)
        if self.clicks:
            log_w = log_w - (clicked * np.logaddexp(0.0, -logit) + (1 - clicked) * np.logaddexp(0.0, logit)).sum(axis=1)
        self.log_weights[v.user] = log_w


def replay(cfg: ExposureConfig, samples: int, ablation: bool = False) -> RankLog:
    """Every click of the world's log ranked by popularity (clicks so far), the posterior (with
    ``ablation``, also the posteriors that leave evidence out) and the oracle, over the items logged
    up to the click (its visit's slate included, as in a replay)."""
    world = ExposureWorld(cfg)
    n_items = world.cfg.n_items
    names = list(POSTERIORS) if ablation else ["posterior"]
    draws = {False: TasteDraws(world, samples)}
    if ablation:  # the same taste draws, items known by category
        draws[True] = TasteDraws(world, samples, item_vectors=category_means(world))
    posteriors: dict[str, TastePosterior] = {}
    for name in names:
        from_slates, from_clicks, by_category = POSTERIORS[name]
        posteriors[name] = TastePosterior(draws[by_category], from_slates, from_clicks)
    first = first_clicks(world)
    known = np.zeros(n_items, dtype=bool)
    clicks = np.zeros(n_items)
    log = RankLog(["popularity", *names, "oracle"])
    everything = np.arange(n_items)
    for v in simulate(world):
        known[v.items] = True
        if v.clicked.any():
            ranked = {name: p.scores(v.user, v.number) for name, p in posteriors.items()}
            inclusion = world.inclusion(v.user, v.number)
            for pos in np.flatnonzero(v.clicked).tolist():
                item = int(v.items[pos])
                before = first[v.user] < click_ts(v.ts_ms, pos)
                allowed = known & ~before
                ranks: dict[str, int | None] = dict.fromkeys(log.ranks)
                if allowed[item]:
                    truth = inclusion * world.shown_click_probability(v.user, everything, v.number, before)
                    scores = {"popularity": clicks, **ranked, "oracle": truth}
                    # rank_of: ties go to the lower item id
                    ranks = {name: rank_of(np.where(allowed, x, -np.inf), item, []) for name, x in scores.items()}
                log.add(user_key(v.user), ranks)
                clicks[item] += 1
        for p in posteriors.values():
            p.learn(v)
    return log


def ceiling(cfg: ExposureConfig, samples: int = 500, k: int = 10, ablation: bool = False) -> dict[str, Any]:
    """Recall@k with its user-level interval per ranker, and the share of the popularity-to-oracle
    gap each posterior closes (``gap_closed``: the full posterior's)."""
    started = time.perf_counter()
    log = replay(cfg, samples, ablation)
    figures = {name: log.figures(name, k, resamples=1999) for name in log.ranks}
    recall = {name: float(f[f"recall@{k}"]) for name, f in figures.items()}  # type: ignore[arg-type]
    gaps = {
        name: round((r - recall["popularity"]) / (recall["oracle"] - recall["popularity"]), 3)
        for name, r in recall.items()
        if name in POSTERIORS
    }
    return {
        "seed": cfg.seed,
        "samples": samples,
        "rankers": figures,
        "gap_closed": gaps["posterior"],
        "gaps_closed": gaps,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m streamrec.quality.ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3", help="exposure-world generator seeds (development: 1,2,3)")
    parser.add_argument("--samples", type=int, default=500, help="prior draws of a user's taste")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="one JSON object per seed")
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also posteriors that learn from clicks only, slates only, nothing, and one that knows items by category",
    )
    args = parser.parse_args(argv)
    for seed in (int(s) for s in args.seeds.split(",")):
        result = ceiling(ExposureConfig(seed=seed), args.samples, args.k, args.ablation)
        if args.json:
            print(json.dumps(result), flush=True)
            continue
        metric = f"recall@{args.k}"
        cells = "  ".join(f"{name} {f[metric]:.4f} {f[metric + '_interval']}" for name, f in result["rankers"].items())
        gaps = "  ".join(f"{name} {gap}" for name, gap in result["gaps_closed"].items())
        print(f"exposure/{seed}: {metric}  {cells}  gap closed: {gaps}", flush=True)


if __name__ == "__main__":
    main()
