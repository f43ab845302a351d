"""Protocol (d)'s second split: RecBole's global temporal 8:1:1 with full ranking (issue 14).

So that our figures can stand beside RecBole's on identical data, the split is RecBole 1.2.1's own
(``eval_args = {split: {RS: [0.8, 0.1, 0.1]}, order: TO, group_by: None, mode: full}``), read from
its source (``recbole/data/dataset/dataset.py``: ``Dataset.build``, ``split_by_ratio``,
``_calcu_split_ids``; ``recbole/data/interaction.py``: ``Interaction.sort``):

* clicks ordered by timestamp with a stable sort, so ties keep file order;
* the last two parts get ``int(ratio * total)`` each, the first the rest, and a part whose share
  is below one interaction gets one taken from the first (while it has more than one).

The parts are written as RecBole atomic files, which RecBole run with ``benchmark_filename:
['train', 'valid', 'test']`` reads as the split itself (``build`` then neither sorts nor splits).

The metrics are RecBole's full-sort Recall@k and NDCG@k (``recbole/evaluator/metrics.py``:
``Recall``, ``NDCG``; ``recbole/data/dataloader/general_dataloader.py``: ``FullSortEvalDataLoader``;
``recbole/sampler/sampler.py``: ``Sampler.get_used_ids``), averaged over the users with test
clicks: ground truth is the user's set of test items; the user's train and valid items that are
not ground truth are masked; NDCG's ideal gain runs over min(|ground truth|, k) hits.

The item set is RecBole's, every item of the data set (its ids cover train, valid and test), so
that the ground truth and its size are the same as RecBole's: an item first clicked in the test
part stays in the truth. Pop ranks it at count 0, as RecBole's Pop does; the stream learners cannot
rank it (they never saw it), so it is a miss for them, as it would be when serving.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from stream.config import Config
from stream.evaluation.paired import cluster_interval, ratio
from stream.events import Event
from stream.learners.base import top_k
from stream.processor import LEARNERS, PartitionProcessor

PARTS = ("train", "valid", "test")
RATIOS = (0.8, 0.1, 0.1)
FIELDS = ("user_id:token", "item_id:token", "timestamp:float")
# RecBole 1.2.1's Config reads a dataset named "ml-100k" from its bundled copy, whatever
# data_path says (configurator.py, Config._set_default_parameters): ours needs another name.
DEFAULT_NAME = "ml-100k-temporal"
RESERVED_NAMES = frozenset({"ml-100k"})
# pandas.read_csv (RecBole's loader) reads these tokens as missing values, and these characters
# as separators or quotes.
NA_TOKENS = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
UNSAFE_CHARS = frozenset('\t\n\r"')

Split = dict[str, list[Event]]
# user id -> (items,) scores over the full-sort item ids; -inf: not rankable.
Scorer = Callable[[str], np.ndarray]


def split_sizes(total: int, ratios: Sequence[float] = RATIOS) -> tuple[int, ...]:
    """Interactions per part, by RecBole's ``_calcu_split_ids`` (same float arithmetic)."""
    whole = sum(ratios)
    shares = [r / whole for r in ratios]
    counts = [int(s * total) for s in shares]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(shares)):
        if counts[0] <= 1:
            break
        if 0 < shares[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return tuple(counts)


def split_clicks(events: Iterable[Event], ratios: Sequence[float] = RATIOS) -> Split:
    """The clicks in timestamp order (ties: given order), cut into consecutive parts by count."""
    clicks = sorted((e for e in events if e.type == "click"), key=lambda e: e.ts)
    bounds = np.cumsum((0, *split_sizes(len(clicks), ratios)))
    return {part: clicks[bounds[i] : bounds[i + 1]] for i, part in enumerate(PARTS)}


@dataclass(frozen=True)
class SplitInfo:
    """What was written, and the RecBole settings that read it back as this split."""

    name: str
    data_path: str
    interactions: dict[str, int]
    users: dict[str, int]
    items: dict[str, int]
    paths: dict[str, str] = field(default_factory=dict)

    def recbole_config(self) -> dict[str, Any]:
        """Settings for RecBole 1.2.1 (``Config(config_dict=...)``) that evaluate exactly this split."""
        return {
            "dataset": self.name,
            "data_path": self.data_path,
            "benchmark_filename": list(PARTS),
            "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
            "eval_args": {"split": {"RS": list(RATIOS)}, "order": "TO", "group_by": None, "mode": "full"},
        }

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recbole_config": self.recbole_config()}


def split_info(
    split: Split, name: str = DEFAULT_NAME, data_path: str = "", paths: dict[str, str] | None = None
) -> SplitInfo:
    """Counts per part and over all parts ("all")."""
    parts = {**split, "all": [e for part in PARTS for e in split[part]]}
    return SplitInfo(
        name,
        data_path,
        {p: len(es) for p, es in parts.items()},
        {p: len({e.user_id for e in es}) for p, es in parts.items()},
        {p: len({e.item_id for e in es}) for p, es in parts.items()},
        paths or {},
    )


def _token(value: str) -> str:
    if value in NA_TOKENS or UNSAFE_CHARS & set(value) or value != value.strip():
        raise ValueError(f"id {value!r} would not read back from a RecBole atomic file")
    return value


def _seconds(ts_ms: int) -> str:
    """Seconds as RecBole's MovieLens files carry them; milliseconds kept exactly when present."""
    return str(ts_ms // 1000) if ts_ms % 1000 == 0 else f"{ts_ms / 1000:.3f}"


def write_atomic(events: Iterable[Event], path: Path) -> None:
    """One ``.inter`` file: a typed header, then one tab-separated line per click."""
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(FIELDS) + "\n")
        for e in events:
            fh.write(f"{_token(e.user_id)}\t{_token(e.item_id)}\t{_seconds(e.ts)}\n")


def export_split(events: Iterable[Event], directory: Path | str, name: str = DEFAULT_NAME) -> SplitInfo:
    """Write ``directory/name/name.{train,valid,test}.inter``: RecBole looks for a dataset's files
    in ``data_path/dataset/``, so ``data_path = directory`` and ``dataset = name`` read them."""
    if name in RESERVED_NAMES:
        raise ValueError(f"RecBole 1.2.1 reads a dataset named {name!r} from its own bundled copy; choose another name")
    split = split_clicks(events)
    folder = Path(directory) / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = {part: folder / f"{name}.{part}.inter" for part in PARTS}
    for part, path in paths.items():
        write_atomic(split[part], path)
    return split_info(split, name, str(Path(directory)), {p: str(path) for p, path in paths.items()})


# -- evaluation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FullSort:
    """The full-sort test: RecBole's item ids (first appearance over train, valid, test), and per
    test user the ground-truth items and the masked history, as item indices."""

    items: list[str]
    users: list[str]
    truth: list[np.ndarray]
    history: list[np.ndarray]


def full_sort(split: Split) -> FullSort:
    """What RecBole's test loader holds: the history is every train and valid item of the user that
    is not also ground truth (``Sampler.get_used_ids`` less the positives)."""
    index: dict[str, int] = {}
    for part in PARTS:
        for e in split[part]:
            index.setdefault(e.item_id, len(index))
    seen: dict[str, set[int]] = {}
    for e in split["train"] + split["valid"]:
        seen.setdefault(e.user_id, set()).add(index[e.item_id])
    tested: dict[str, set[int]] = {}
    for e in split["test"]:
        tested.setdefault(e.user_id, set()).add(index[e.item_id])
    users = sorted(tested)
    return FullSort(
        list(index),
        users,
        [np.array(sorted(tested[u])) for u in users],
        [np.array(sorted(seen.get(u, set()) - tested[u]), dtype=np.int64) for u in users],
    )


def user_metrics(ranked: np.ndarray, truth: np.ndarray, k: int) -> tuple[float, float]:
    """Recall@k and NDCG@k of one user's ranked items (best first), as RecBole computes them."""
    hit = np.isin(ranked[:k], truth)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(len(truth), k)].sum()
    return float(hit.sum() / len(truth)), float(discounts[: len(hit)][hit].sum() / ideal)


def rank_users(scores_of: Scorer, t: FullSort, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(users,) Recall@k and (users,) NDCG@k of the top k unmasked items (ties: lower item id)."""
    recall, ndcg = np.zeros(len(t.users)), np.zeros(len(t.users))
    for n, (user, truth, history) in enumerate(zip(t.users, t.truth, t.history)):
        ranked = top_k(scores_of(user), k, history.tolist())
        recall[n], ndcg[n] = user_metrics(ranked, truth, k)
    return recall, ndcg


def train_counts(split: Split, items: list[str]) -> np.ndarray:
    """RecBole's ``Pop`` as meant: clicks per item over the training part (its scores are these over
    their maximum: the same order). RecBole 1.2.1's ``Pop.calculate_loss`` adds one per item per
    batch (repeats in a batch collapse: RecBole issues 1844, 2198) and, with the default
    ``train_neg_sample_args``, counts the sampled negatives too; ``train_batch_size: 1`` and
    ``train_neg_sample_args: ~`` make it count these."""
    index = {item: i for i, item in enumerate(items)}
    return np.bincount([index[e.item_id] for e in split["train"]], minlength=len(items)).astype(np.float64)


def fit_processor(events: Iterable[Event], cfg: Config) -> PartitionProcessor:
    """The stream learners after replaying ``events`` in order (their per-click ranking test, not
    needed here, runs only on the first click)."""
    cfg = msgspec.structs.replace(cfg, worker=msgspec.structs.replace(cfg.worker, prequential_every=2**62))
    proc = PartitionProcessor(cfg)
    for e in events:
        proc.process(e)
    return proc


def learner_scorer(proc: PartitionProcessor, name: str, items: list[str]) -> Scorer:
    """``scores_of(user_id)`` over ``items`` for one of the processor's learners: items it never
    saw are not rankable; a user it never saw is scored as the learner scores a new user."""
    state = proc.state
    at = np.array([-1 if (i := state.items.get(item)) is None else i for item in items], dtype=np.int64)
    known = at >= 0
    learner = proc.rankers[name]

    def scores_of(user_id: str) -> np.ndarray:
        user = state.users.get(user_id)
        catalogue = learner.score_catalogue(len(state.users) if user is None else user)
        out = np.full(len(items), -np.inf)
        out[known] = catalogue[at[known]]
        return out

    return scores_of


def _figures(recall: np.ndarray, ndcg: np.ndarray, k: int, resamples: int) -> dict[str, Any]:
    """Each mean over users with its 95 % interval from resampling users."""
    ones = np.ones(len(recall))
    return {
        f"{metric}@{k}": cluster_interval((values, ones), ratio, resamples=resamples).to_dict()
        for metric, values in (("recall", recall), ("ndcg", ndcg))
    }


def evaluate_split(
    events: Sequence[Event], cfg: Config, k: int = 10, learners: Sequence[str] | None = None, resamples: int = 9999
) -> dict[str, Any]:
    """Every ranker's full-sort Recall@k and NDCG@k on the test part: ``pop`` (RecBole's Pop,
    fitted on train) and the stream learners, fitted by replaying train and valid: online, they
    have learned from everything before the test, where RecBole's models learn from train only."""
    started = time.perf_counter()
    split = split_clicks(events)
    t = full_sort(split)
    counts = train_counts(split, t.items)
    rankers: dict[str, Scorer] = {"pop": lambda user_id: counts}
    proc = fit_processor(split["train"] + split["valid"], cfg)
    for name in learners if learners is not None else proc.rankers:
        rankers[name] = learner_scorer(proc, name, t.items)
    figures = {name: _figures(*rank_users(scores_of, t, k), k, resamples) for name, scores_of in rankers.items()}
    return {
        "split": split_info(split).to_dict(),
        "k": k,
        "test_users": len(t.users),
        "test": _test_coverage(split),
        "rankers": figures,
        "seconds": round(time.perf_counter() - started, 1),
    }


def _test_coverage(split: Split) -> dict[str, int]:
    """How much of the test part the stream learners cannot know: new users, new items."""
    users = {e.user_id for e in split["train"] + split["valid"]}
    items = {e.item_id for e in split["train"] + split["valid"]}
    test = split["test"]
    return {
        "users_new": len({e.user_id for e in test} - users),
        "clicks_of_new_users": sum(e.user_id not in users for e in test),
        "items_new": len({e.item_id for e in test} - items),
        "clicks_on_new_items": sum(e.item_id not in items for e in test),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """MovieLens-100K: export the split and print every ranker's figures as JSON."""
    from stream.config import load_config
    from stream.sources.movielens import movielens_events

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the RecBole atomic files here")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--skip", nargs="*", default=[], help="stream learners left out")
    args = parser.parse_args(argv)
    events = list(movielens_events())
    result = evaluate_split(events, load_config(env={}), args.k, [n for n in LEARNERS if n not in args.skip])
    if args.out:
        result["split"] = export_split(events, args.out).to_dict()
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
