"""Logged events -> each user's event sequence: what the sequence teacher reads and predicts.

A user's log becomes one sequence of tokens in time order (ties keep log order), one per
impression or click; a conversion is not a token but marks its click. The tokens are the stream
state's (``stream.state.tokens``, which a request reads); each is three ids:

* ``item``: the item's row in the ``Catalogue`` (0 is padding), whose tables hold its content tokens;
* ``kind``: ``IMPRESSION``, ``CLICK`` or ``CONVERTED`` -- a click whose conversion was logged by the
  time the token is read (so a history never holds a conversion from after the moment it predicts);
* ``gap``: the time since the user's previous token, in log2-second buckets (0: none or under a second).

The task is the next click: at every token followed by a click, the model predicts that click's
item over the catalogue, and whether it converts. Shapes: ``(users,)`` ragged lists of arrays,
batches ``(B, L)`` with the oldest token first and padding (item 0) on the right, as SASRec has them:
under a causal mask no real token then attends to padding, and a token's state does not depend on
how much padding follows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from offline.samples import Catalogue
from stream.events import Event
from stream.state.tokens import CLICK, CONVERTED, IMPRESSION, NEVER, PAD, gap_buckets


@dataclass
class UserSequence:
    """One user's tokens: (n,) item rows, base kinds (IMPRESSION or CLICK), ms timestamps, the ms
    timestamp of each click's conversion (NEVER if none), and each token's place in the whole log
    (its event's index in time order: parts of a split are cut by it)."""

    items: np.ndarray
    kinds: np.ndarray
    ts: np.ndarray
    converted_at: np.ndarray
    order: np.ndarray

    def kinds_at(self, idx: np.ndarray, now_ms: np.ndarray) -> np.ndarray:
        """Kinds of tokens ``idx`` as read at ``now_ms`` (same shape): a click is CONVERTED once its
        conversion is logged."""
        kinds = self.kinds[idx]
        return np.where((kinds == CLICK) & (self.converted_at[idx] <= now_ms), CONVERTED, kinds)

    def gaps(self) -> np.ndarray:
        """(n,) gap bucket of each token."""
        return gap_buckets(np.diff(self.ts, prepend=self.ts[:1]) / 1000.0)


def user_sequences(events: Iterable[Event], catalogue: Catalogue, grow: bool = True) -> dict[str, UserSequence]:
    """Every user's sequence from events in time order. A conversion marks the user's latest click
    on its item; impressions and clicks become tokens; other events are ignored. Items are the
    catalogue's rows; ``grow=False`` reads a finished catalogue, where an item it has no row for is
    numbered past its table (``Catalogue.item_index``), as a split's later items are."""
    items: dict[str, list[int]] = {}
    kinds: dict[str, list[int]] = {}
    stamps: dict[str, list[int]] = {}
    orders: dict[str, list[int]] = {}
    converted: dict[str, dict[int, int]] = {}  # user -> token index -> conversion ts
    last_click: dict[tuple[str, int], int] = {}
    for n, e in enumerate(sorted(events, key=lambda e: e.ts)):
        if e.type not in ("impression", "click", "conversion"):
            continue
        row = catalogue.observe(e)[1] if grow else catalogue.item_index(e.item_id)
        if e.type == "conversion":
            at = last_click.get((e.user_id, row))
            if at is not None:
                converted.setdefault(e.user_id, {}).setdefault(at, e.ts)
            continue
        seq = items.setdefault(e.user_id, [])
        if e.type == "click":
            last_click[(e.user_id, row)] = len(seq)
        seq.append(row)
        kinds.setdefault(e.user_id, []).append(CLICK if e.type == "click" else IMPRESSION)
        stamps.setdefault(e.user_id, []).append(e.ts)
        orders.setdefault(e.user_id, []).append(n)
    out = {}
    for user, seq in items.items():
        conv = np.full(len(seq), NEVER, dtype=np.int64)
        for at, ts in converted.get(user, {}).items():
            conv[at] = ts
        out[user] = UserSequence(
            np.array(seq, dtype=np.int64),
            np.array(kinds[user], dtype=np.int64),
            np.array(stamps[user], dtype=np.int64),
            conv,
            np.array(orders[user], dtype=np.int64),
        )
    return out


@dataclass
class Windows:
    """Training windows: (N, L) input tokens (item, kind, gap), right-padded, and per position the next
    click's (N, L) item (0: the next token is no click, no loss there) and (N, L) conversion label."""

    item: np.ndarray
    kind: np.ndarray
    gap: np.ndarray
    target: np.ndarray
    converted: np.ndarray

    def __len__(self) -> int:
        return len(self.item)


def training_windows(sequences: Iterable[UserSequence], length: int, until: int = NEVER) -> Windows:
    """Each sequence's tokens before log position ``until`` cut into windows of ``length`` inputs (the last
    window first, so every token is an input once); position j predicts token j + 1 if it is a click.
    A kind is read at the time of the token it predicts. A window that predicts no click trains
    nothing and is left out (an impression-heavy log has many)."""
    rows: list[tuple[np.ndarray, ...]] = []
    for s in sequences:
        n = int(np.searchsorted(s.order, until, side="left"))
        gaps = s.gaps()
        for end in range(n - 1, 0, -length):  # inputs [start, end), targets [start + 1, end + 1)
            start = max(end - length, 0)
            inputs, nexts = np.arange(start, end), np.arange(start + 1, end + 1)
            is_click = s.kinds[nexts] == CLICK
            if not is_click.any():
                continue
            rows.append(
                (
                    s.items[inputs],
                    s.kinds_at(inputs, s.ts[nexts]),
                    gaps[inputs],
                    np.where(is_click, s.items[nexts], PAD),
                    is_click & (s.converted_at[nexts] < NEVER),
                )
            )
    return Windows(*(right_pad([r[k] for r in rows], length) for k in range(5)))


def right_pad(arrays: list[np.ndarray], length: int) -> np.ndarray:
    """Ragged (n_i,) arrays -> (len, length): each one's last ``length`` values first, zeros after."""
    out = np.zeros((len(arrays), length), dtype=np.int64)
    for i, a in enumerate(arrays):
        a = a[-length:]
        out[i, : len(a)] = a
    return out


@dataclass
class NextClicks:
    """Prediction points: for each, the (N, L) history tokens before it, its (N,) clicked item, its
    user and its (N,) log position."""

    item: np.ndarray
    kind: np.ndarray
    gap: np.ndarray
    target: np.ndarray
    user: list[str]
    at: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


def next_clicks(sequences: dict[str, UserSequence], length: int, since: int, until: int = NEVER) -> NextClicks:
    """Every click at log positions [since, until) with at least one token before it, and its history."""
    items, kinds, gaps, targets, users, at = [], [], [], [], [], []
    for user, s in sequences.items():
        g = s.gaps()
        for j in np.flatnonzero((s.kinds == CLICK) & (s.order >= since) & (s.order < until)).tolist():
            if j == 0:
                continue
            idx = np.arange(max(j - length, 0), j)
            items.append(s.items[idx])
            kinds.append(s.kinds_at(idx, np.full(len(idx), s.ts[j])))
            gaps.append(g[idx])
            targets.append(s.items[j])
            users.append(user)
            at.append(s.order[j])
    return NextClicks(
        right_pad(items, length),
        right_pad(kinds, length),
        right_pad(gaps, length),
        np.array(targets, dtype=np.int64),
        users,
        np.array(at, dtype=np.int64),
    )
