"""The sequence teacher on the exported global temporal split, evaluated as RecBole evaluates SASRec.

The split is ``streamrec.quality.recbole_split``'s (RecBole 1.2.1's global temporal 8:1:1 over the
clicks, the atomic files every RecBole model of the side-by-side reads). A sequential model is
evaluated otherwise than a general one (``recbole/data/dataset/sequential_dataset.py``,
``FullSortEvalDataLoader``): every click of a part but a user's very first is a prediction point
whose history is the user's earlier clicks (at most ``MAX_ITEM_LIST_LENGTH`` = 50, from any part);
each point ranks the whole catalogue with nothing masked, and its one relevant item is the item it
clicked, so Recall@k is the hit rate and NDCG@k 1/log2(rank + 2) for a hit. The side-by-side's
RecBole runner writes the same points for SASRec.

Item rows are numbered over the whole log, as RecBole numbers its ids; an item first clicked after
the training part keeps its untrained row (its content tokens still place it), and nothing else
is read from after the training part.

    python -m streamrec.quality.recbole_sequential [--seeds 0,1,2]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from stream.events import Event
from streamrec.quality.clicks import RankLog
from streamrec.quality.recbole_split import split_sizes

if TYPE_CHECKING:
    from offline.sequence_fit import SequenceFitSettings

HISTORY = 50  # RecBole's MAX_ITEM_LIST_LENGTH in the side-by-side
ITEM_TOKEN_WIDTH = 12


@dataclass(frozen=True)
class PartBounds:
    """Log positions (indices of the events in time order, as ``offline.sequences`` numbers them)
    of the first valid and the first test click."""

    valid_from: int
    test_from: int


def part_bounds(events: Sequence[Event]) -> PartBounds:
    """Where ``recbole_split.split_clicks``'s valid and test parts start, as log positions."""
    ordered = sorted(events, key=lambda e: e.ts)  # stable: ties keep log order, as split_clicks
    clicks = [position for position, e in enumerate(ordered) if e.type == "click"]
    train, valid, _ = split_sizes(len(clicks))
    return PartBounds(clicks[train], clicks[train + valid])


@dataclass
class PointRanks:
    """Each test point's user, clicked item id and the 0-based rank of that item in a full sort."""

    users: list[str]
    items: list[str]
    ranks: np.ndarray

    def log(self, name: str) -> RankLog:
        """The ranks as a ``RankLog`` column ``name``: its figures resample users."""
        log = RankLog([name])
        for user, rank in zip(self.users, self.ranks.tolist()):
            log.add(user, {name: rank})
        return log


def fit_and_rank(events: Sequence[Event], settings: SequenceFitSettings) -> tuple[PointRanks, dict[str, Any]]:
    """Train on the train part's points (early-stopped on valid NDCG), rank every test point; the
    ranks and what the fit did. (torch and the offline package are imported here: a module-level
    import would reach every streamrec command.)"""
    import torch

    from offline.samples import Catalogue
    from offline.sequence_fit import fit_sequence_teacher, next_click_logits, target_ranks
    from offline.sequence_teacher import SequenceTeacher
    from offline.sequences import next_clicks, training_windows, user_sequences

    started = time.perf_counter()
    split = part_bounds(events)
    catalogue = Catalogue()
    sequences = user_sequences(events, catalogue)
    train = training_windows(sequences.values(), HISTORY, until=split.valid_from)
    valid = next_clicks(sequences, HISTORY, split.valid_from, split.test_from)
    test = next_clicks(sequences, HISTORY, split.test_from)
    torch.manual_seed(settings.seed)
    tokens = torch.from_numpy(catalogue.item_token_matrix(ITEM_TOKEN_WIDTH))
    model = SequenceTeacher(tokens, len(catalogue.item_tokens), HISTORY)
    fitted = fit_sequence_teacher(model, train, valid, settings)
    ranks = target_ranks(next_click_logits(model, test), test.target)
    items = [catalogue.items.keys[row - 1] for row in test.target.tolist()]
    info = {
        "points": {"train": int((train.target > 0).sum()), "valid": len(valid), "test": len(test)},
        "settings": asdict(settings),
        "fit": asdict(fitted),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return PointRanks(test.user, items, ranks), info


def evaluate_sequence_teacher(
    events: Sequence[Event], settings: SequenceFitSettings, k: int = 10, resamples: int = 9999
) -> dict[str, Any]:
    """``fit_and_rank``'s fit, with test Recall@k and NDCG@k and their user-level intervals."""
    ranks, info = fit_and_rank(events, settings)
    return {**info, **ranks.log("teacher").figures("teacher", k, resamples=resamples)}


def main(argv: Sequence[str] | None = None) -> None:
    from offline.sequence_fit import SequenceFitSettings
    from stream.sources.movielens import movielens_events

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="training seeds, comma-separated")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    events = list(movielens_events())
    for seed in (int(s) for s in args.seeds.split(",")):
        json.dump(evaluate_sequence_teacher(events, SequenceFitSettings(seed=seed, k=args.k), args.k), sys.stdout)
        print(flush=True)


if __name__ == "__main__":
    main()
