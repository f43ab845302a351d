"""Logged events -> labelled training rows, with a time-based split and no future in any feature.

One pass over the events in timestamp order keeps, per user, the items clicked so far; every row's
features are read from that state *before* its own event is applied, so nothing after a row's
timestamp reaches its features (labels may look ahead: a click label is the click that followed an
impression).

Rows:
* Logs with impressions (the synthetic stream): one row per impression, ``click`` = the user clicked
  that item within ``attribution_ms`` after it, ``conversion`` = a conversion followed the click.
  Impressions shown together form one group (the ranking loss orders a group).
* Positives-only logs (MovieLens): one row per click (``conversion`` = the log's conversion event
  for it), plus ``negatives`` items drawn uniformly from the items already in the log that the user
  has not clicked. Uniform, not popularity-weighted: the test ranks the whole catalogue, so the
  training task should see the same candidate distribution; popularity then stays a learnable
  signal (the item bias) instead of being sampled away. A click and its negatives form a group.

The split is by time over groups: the earliest ``1 - validation - test`` share trains, the next
share validates (early stopping, the promotion gate), the last share tests.
Shapes: every array has the row axis first; ``recent`` is (rows, L) with 0 as padding, ids shift by
one so that index 0 means "unknown / padding" in every table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from stream.events import Event

PAD = 0


@dataclass
class Vocab:
    """External id -> dense index (1-based; 0 is unknown/padding)."""

    keys: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)

    def add(self, key: str) -> int:
        idx = self.index.get(key)
        if idx is None:
            self.keys.append(key)
            idx = self.index[key] = len(self.keys)
        return idx

    def get(self, key: str) -> int:
        return self.index.get(key, PAD)

    def __len__(self) -> int:
        """Table size including the padding row."""
        return len(self.keys) + 1


@dataclass
class Catalogue:
    """Everything known about ids and content, shared by every row and by the exported model."""

    users: Vocab = field(default_factory=Vocab)
    items: Vocab = field(default_factory=Vocab)
    item_tokens: Vocab = field(default_factory=Vocab)  # category and tags, e.g. "cat:drama"
    user_tokens: Vocab = field(default_factory=Vocab)  # demographics, e.g. "age:24"
    tokens_of_item: dict[int, list[int]] = field(default_factory=dict)
    tokens_of_user: dict[int, list[int]] = field(default_factory=dict)

    def observe(self, event: Event) -> tuple[int, int]:
        user, item = self.users.add(event.user_id), self.items.add(event.item_id)
        if item not in self.tokens_of_item and event.item is not None:
            toks = [f"cat:{event.item.category}"] if event.item.category else []
            toks += [f"tag:{t}" for t in event.item.tags]
            self.tokens_of_item[item] = [self.item_tokens.add(t) for t in toks]
        if user not in self.tokens_of_user and event.user:
            self.tokens_of_user[user] = [self.user_tokens.add(f"{k}:{v}") for k, v in sorted(event.user.items())]
        return user, item

    def item_token_matrix(self, width: int) -> np.ndarray:
        """(n_items + 1, width) token ids per item, 0-padded: the content every item is scored with."""
        out = np.zeros((len(self.items), width), dtype=np.int64)
        for item, toks in self.tokens_of_item.items():
            out[item, : min(width, len(toks))] = toks[:width]
        return out

    def user_token_matrix(self, width: int) -> np.ndarray:
        out = np.zeros((len(self.users), width), dtype=np.int64)
        for user, toks in self.tokens_of_user.items():
            out[user, : min(width, len(toks))] = toks[:width]
        return out


@dataclass
class Rows:
    """Column arrays of labelled rows; ``group`` ties a ranking group together."""

    user: np.ndarray  # (n,) int64
    item: np.ndarray  # (n,) int64
    recent: np.ndarray  # (n, L) int64, newest first
    click: np.ndarray  # (n,) float32
    conversion: np.ndarray  # (n,) float32
    ts: np.ndarray  # (n,) int64 ms
    group: np.ndarray  # (n,) int64, consecutive rows of a group are adjacent

    def __len__(self) -> int:
        return len(self.user)

    def take(self, idx: np.ndarray) -> Rows:
        return Rows(*(getattr(self, f)[idx] for f in Rows.__dataclass_fields__))


@dataclass(frozen=True)
class Groups:
    """The ranking groups of ``Rows`` as row ranges: what training orders and batches whole.

    A group is a click and its sampled negatives, or one shown slate. Kept whole, every batch holds
    the same mix of clicks and non-clicks as the data, and a listwise loss sees each group entire.
    """

    bounds: np.ndarray  # (G + 1,) first row of each group, then the number of rows

    @classmethod
    def of(cls, rows: Rows) -> Groups:
        return cls.from_ids(rows.group)

    @classmethod
    def from_ids(cls, group_ids: np.ndarray) -> Groups:
        """(n,) group ids, equal ids adjacent -> their groups."""
        if not len(group_ids):
            return cls(np.zeros(1, np.int64))
        starts = np.flatnonzero(np.diff(group_ids)) + 1
        return cls(np.concatenate([[0], starts, [len(group_ids)]]).astype(np.int64))

    def __len__(self) -> int:
        return len(self.bounds) - 1

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.bounds)

    def rows(self, groups: np.ndarray) -> np.ndarray:
        """(g,) group indices -> the row indices of those groups, group after group."""
        starts, sizes = self.bounds[groups], self.sizes[groups]
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(sizes)[:-1]]), sizes)
        return offsets + np.arange(int(sizes.sum()))


@dataclass
class TestClick:
    """A click of the test window, with the user's history as it was just before it."""

    user: int
    item: int
    recent: np.ndarray  # (L,)
    seen: np.ndarray  # (k,) items clicked before: excluded from the ranking


@dataclass
class Dataset:
    catalogue: Catalogue
    train: Rows
    validation: Rows
    test: Rows
    validation_clicks: list[TestClick]
    test_clicks: list[TestClick]
    window: tuple[int, int]  # first and last event timestamp (ms) used
    events: int
    has_impressions: bool


def build_dataset(events: Iterable[Event], recent_len: int = 20, negatives: int = 4,
                  validation_share: float = 0.1, test_share: float = 0.1, attribution_ms: int = 30 * 60_000,
                  seed: int = 7) -> Dataset:
    """Label, featurise and split a time-ordered event log (see the module docstring)."""
    events = sorted(events, key=lambda e: e.ts)  # stable: ties keep log order
    if not events:
        raise ValueError("the log is empty: nothing to train on")
    has_impressions = any(e.type == "impression" for e in events)
    cat = Catalogue()
    for e in events:
        cat.observe(e)
    clicked, converted = _attribute(events, cat, has_impressions, attribution_ms)
    rng = np.random.default_rng(seed)

    cols: dict[str, list] = {k: [] for k in ("user", "item", "recent", "click", "conversion", "ts", "group")}
    recent: dict[int, list[int]] = {}
    seen: dict[int, set[int]] = {}
    known_items: list[int] = []
    known_set: set[int] = set()
    click_rows: list[tuple[int, int, int, np.ndarray, np.ndarray]] = []  # (group, user, item, recent, seen)
    group = -1
    last_slate: tuple[int, int] | None = None

    def row(u: int, i: int, hist: np.ndarray, click: float, conv: float, ts: int) -> None:
        for key, value in (("user", u), ("item", i), ("recent", hist), ("click", click),
                           ("conversion", conv), ("ts", ts), ("group", group)):
            cols[key].append(value)

    for n, e in enumerate(events):
        u, i = cat.users.get(e.user_id), cat.items.get(e.item_id)
        hist = np.zeros(recent_len, dtype=np.int64)
        past = recent.get(u, [])[:recent_len]
        hist[: len(past)] = past
        if has_impressions and e.type == "impression":
            if last_slate != (u, e.ts):
                group += 1
                last_slate = (u, e.ts)
            row(u, i, hist, float(n in clicked), float(n in converted), e.ts)
        elif e.type == "click":
            if not has_impressions:
                group += 1
                row(u, i, hist, 1.0, float(n in converted), e.ts)
                user_seen, drawn = seen.get(u, set()), {i}
                tries = rng.integers(len(known_items), size=negatives * 4).tolist() if known_items else []
                for k in tries:  # a few tries per negative: clicked items are skipped
                    if len(drawn) > negatives:
                        break
                    j = known_items[k]
                    if j not in drawn and j not in user_seen:
                        drawn.add(j)
                        row(u, j, hist, 0.0, 0.0, e.ts)
            click_rows.append((group, u, i, hist, np.fromiter(seen.get(u, ()), dtype=np.int64)))
            recent.setdefault(u, []).insert(0, i)
            del recent[u][recent_len:]
            seen.setdefault(u, set()).add(i)
        if i not in known_set:
            known_set.add(i)
            known_items.append(i)

    rows = Rows(*(np.asarray(cols[k], dtype=dt) for k, dt in (
        ("user", np.int64), ("item", np.int64), ("recent", np.int64), ("click", np.float32),
        ("conversion", np.float32), ("ts", np.int64), ("group", np.int64))))
    if rows.recent.ndim == 1:  # no rows at all
        rows.recent = rows.recent.reshape(0, recent_len)
    n_groups = group + 1
    if n_groups < 10:
        raise ValueError(f"only {n_groups} labelled groups in the log: too few to split for training")
    train_end = int(n_groups * (1 - validation_share - test_share))
    val_end = int(n_groups * (1 - test_share))
    split = np.searchsorted(rows.group, [train_end, val_end])
    validation_clicks = [TestClick(u, i, h, s) for g, u, i, h, s in click_rows if train_end <= g < val_end]
    test_clicks = [TestClick(u, i, h, s) for g, u, i, h, s in click_rows if g >= val_end]
    return Dataset(cat, rows.take(np.arange(split[0])), rows.take(np.arange(split[0], split[1])),
                   rows.take(np.arange(split[1], len(rows))), validation_clicks, test_clicks, (events[0].ts, events[-1].ts),
                   len(events), has_impressions)


def _attribute(events: list[Event], cat: Catalogue, has_impressions: bool,
               attribution_ms: int) -> tuple[set[int], set[int]]:
    """Indices (into ``events``) of the impressions (or, without impressions, the clicks) that were
    clicked, and of those that converted. Last touch: a click labels the latest earlier impression
    of the same (user, item) within ``attribution_ms``, once; a conversion labels the impression
    (or click) its latest earlier click was attributed to."""
    last_impression: dict[tuple[int, int], int] = {}
    last_click: dict[tuple[int, int], int] = {}  # -> the index that click was attributed to
    clicked: set[int] = set()
    converted: set[int] = set()
    for n, e in enumerate(events):
        key = (cat.users.get(e.user_id), cat.items.get(e.item_id))
        if e.type == "impression":
            last_impression[key] = n
        elif e.type == "click":
            if not has_impressions:
                clicked.add(n)
                last_click[key] = n
                continue
            shown = last_impression.pop(key, None)
            if shown is not None and e.ts - events[shown].ts <= attribution_ms:
                clicked.add(shown)
                last_click[key] = shown
        elif e.type == "conversion" and key in last_click:
            converted.add(last_click.pop(key))
    return clicked, converted
