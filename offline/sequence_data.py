"""A log as the sequence models of ``streamrec train`` learn from it and are judged on it.

The split, the ids and the clicks judged are ``offline.samples.build_dataset``'s, so a sequence
model's figures stand on the same clicks as the pointwise models' and the popularity baseline's:

* training windows (``offline.sequences``) from the tokens of the training part only, items numbered
  by its catalogue (ids and content of the training part: nothing later leaks into a table);
* each validation or test click is a point whose history is the user's tokens before it, as a
  request reads them (``serving.sequence_inputs``): an item the catalogue has no row for is
  dropped from the history, and as a clicked item it scores as row 0 (an untrained row, tied with
  every other such item), as serving scores it: in practice a miss;
* a point's score is the served rule's (``offline.evaluate.gain``): the clicked item's rank among
  the items logged before the click, the user's earlier clicks excluded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from offline.evaluate import gain
from offline.samples import Catalogue, Dataset, TestClick
from offline.sequence_fit import tokens
from offline.sequence_model import SequenceModel
from offline.sequences import UserSequence, Windows, right_pad, training_windows, user_sequences
from stream.events import Event
from stream.state.tokens import CLICK


@dataclass
class ServedPoints:
    """Clicks to rank, each with the (N, L) history tokens a request would read just before it."""

    item: np.ndarray
    kind: np.ndarray
    gap: np.ndarray
    clicks: list[TestClick]

    def __len__(self) -> int:
        return len(self.clicks)

    def users(self) -> np.ndarray:
        """(N,) each click's user row: the clusters a user-level interval resamples."""
        return np.array([c.user for c in self.clicks], dtype=np.int64)


@dataclass
class SequenceData:
    catalogue: Catalogue
    train: Windows
    validation: ServedPoints
    test: ServedPoints


def sequence_data(
    events: Iterable[Event], ds: Dataset, length: int, validation: list[TestClick], test: list[TestClick]
) -> SequenceData:
    """``ds``'s split read as sequences of at most ``length`` tokens; ``validation`` and ``test``:
    the clicks of ``ds`` to rank (all or a sample)."""
    sequences = user_sequences(events, ds.catalogue, grow=False)
    known = len(ds.catalogue.items)  # item rows below this have a table row
    at = _click_tokens(sequences)
    return SequenceData(
        ds.catalogue,
        training_windows(sequences.values(), length, until=ds.train_events),
        served_points(at, validation, length, known),
        served_points(at, test, length, known),
    )


def _click_tokens(sequences: dict[str, UserSequence]) -> dict[int, tuple[UserSequence, int]]:
    """Log position of every click -> its user's sequence and the click's token index."""
    out = {}
    for s in sequences.values():
        for j in np.flatnonzero(s.kinds == CLICK).tolist():
            out[int(s.order[j])] = (s, j)
    return out


def served_points(
    at: dict[int, tuple[UserSequence, int]], clicks: list[TestClick], length: int, known: int
) -> ServedPoints:
    """Each click's history: the user's tokens before it whose item has a row (< ``known``)."""
    items, kinds, gaps = [], [], []
    gaps_of: dict[int, np.ndarray] = {}  # id(sequence) -> its gap buckets, computed once
    for c in clicks:
        s, j = at[c.at]
        idx = np.flatnonzero(s.items[:j] < known)[-length:]
        items.append(s.items[idx])
        kinds.append(s.kinds_at(idx, np.full(len(idx), s.ts[j])))
        gaps.append(gaps_of.setdefault(id(s), s.gaps())[idx])
    return ServedPoints(right_pad(items, length), right_pad(kinds, length), right_pad(gaps, length), clicks)


def served_rows(n_rows: int, points: ServedPoints) -> np.ndarray:
    """The table rows that score the items logged before ``points``' latest click, in log order:
    rows 1..n_rows - 1, then row 0 (no table row, as in serving) for each item logged after the
    training part."""
    logged = max((c.known for c in points.clicks), default=0)
    return np.concatenate([np.arange(1, n_rows), np.zeros(max(logged - (n_rows - 1), 0), dtype=np.int64)])


@torch.no_grad()
def served_gains(model: SequenceModel, points: ServedPoints, k: int = 10, batch: int = 1024) -> np.ndarray:
    """(N,) NDCG@k of each click under the served rule (``offline.evaluate.gain``) over
    ``served_rows``; a point without a history scores from the first position's state."""
    model.eval()
    out = np.zeros(len(points))
    rows = served_rows(len(model.item_tokens), points)
    for start in range(0, len(points), batch):
        s = slice(start, start + batch)
        states = model.last_state(tokens(points.item[s], points.kind[s], points.gap[s]))
        scores = model.click_logits(states).numpy()[:, rows]  # (B, logged): item row r + 1 at r
        for n, click in enumerate(points.clicks[s]):
            out[start + n] = gain(scores[n], click, k)
    return out


class ServedNDCG:
    """``offline.sequence_fit.Validation`` under the served rule: mean ``served_gains``."""

    def __init__(self, points: ServedPoints, k: int = 10) -> None:
        self.points, self.k = points, k

    def __call__(self, model: SequenceModel) -> float:
        return float(served_gains(model, self.points, self.k).mean()) if len(self.points) else 0.0
