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

Ids and content come from the training window alone (the events before the first validation
group): ``Catalogue`` holds the users, items and tokens the model has rows for and exports. An id
first logged later is numbered on after them (``Catalogue.later_users`` / ``later_items``) so that
later rows and clicks can name it, and takes serving's cold path (``serving/model_inputs.py``):
model index 0, a later item described by its category token alone (the content serving's state
keeps), a later user by its history alone (serving keeps no demographics). ``recent`` holds model
indices: items the model has no row for are dropped from it, as serving drops them.
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
    """The training window's ids and content: what the model has rows for, exported with it.

    ``later_users`` / ``later_items`` name the ids first logged after the training window; their
    row indices continue after the catalogue's own (``user_index`` / ``item_index``), and no model
    table has a row for them (``ContentTables`` maps them to index 0, as serving does).
    """

    users: Vocab = field(default_factory=Vocab)
    items: Vocab = field(default_factory=Vocab)
    item_tokens: Vocab = field(default_factory=Vocab)  # category and tags, e.g. "cat:drama"
    user_tokens: Vocab = field(default_factory=Vocab)  # demographics, e.g. "age:24"
    tokens_of_item: dict[int, list[int]] = field(default_factory=dict)
    tokens_of_user: dict[int, list[int]] = field(default_factory=dict)
    later_users: Vocab = field(default_factory=Vocab)
    later_items: Vocab = field(default_factory=Vocab)
    category_of_later_item: dict[int, int] = field(default_factory=dict)  # later_items index -> token (0: unknown)

    def observe(self, event: Event) -> tuple[int, int]:
        """A training-window event: its ids and content join the model's tables."""
        user, item = self.users.add(event.user_id), self.items.add(event.item_id)
        if item not in self.tokens_of_item and event.item is not None:
            toks = [f"cat:{event.item.category}"] if event.item.category else []
            toks += [f"tag:{t}" for t in event.item.tags]
            self.tokens_of_item[item] = [self.item_tokens.add(t) for t in toks]
        if user not in self.tokens_of_user and event.user:
            self.tokens_of_user[user] = [self.user_tokens.add(f"{k}:{v}") for k, v in sorted(event.user.items())]
        return user, item

    def observe_later(self, event: Event) -> tuple[int, int]:
        """An event after the training window: new ids are numbered on and no table grows. A new item
        keeps its category (the first one logged for it), as a token of the training window's."""
        if event.user_id not in self.users.index:
            self.later_users.add(event.user_id)
        if event.item_id not in self.items.index:
            later = self.later_items.add(event.item_id)
            if later not in self.category_of_later_item and event.item is not None and event.item.category:
                self.category_of_later_item[later] = self.item_tokens.get(f"cat:{event.item.category}")
        return self.user_index(event.user_id), self.item_index(event.item_id)

    def user_index(self, key: str) -> int:
        """Row index of a user over the catalogue and then the later users; 0 if never logged."""
        return _index(self.users, self.later_users, key)

    def item_index(self, key: str) -> int:
        """Row index of an item over the catalogue and then the later items; 0 if never logged."""
        return _index(self.items, self.later_items, key)

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

    def later_item_token_matrix(self, width: int) -> np.ndarray:
        """(n_later_items, width): each later item's category token, what serving scores it with."""
        out = np.zeros((len(self.later_items) - 1, width), dtype=np.int64)
        for later, token in self.category_of_later_item.items():
            out[later - 1, 0] = token
        return out


def _index(own: Vocab, later: Vocab, key: str) -> int:
    index = own.get(key)
    if index != PAD:
        return index
    index = later.get(key)
    return len(own) - 1 + index if index != PAD else PAD


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
    """A click of a later window, with what was logged just before it.

    ``user`` and ``item`` are catalogue row indices, numbered on for later ids; ``recent`` holds
    model indices (items the model has no row for dropped). The click is ranked against the items
    logged before it, rows 1..``known``, less ``seen``: a click on an item first logged by this very
    click cannot be recommended and is a miss, as in the stream learners' test-then-learn.
    """

    user: int
    item: int
    recent: np.ndarray  # (L,)
    seen: np.ndarray  # (k,) items clicked before: excluded from the ranking
    known: int  # items logged before the click: rows 1..known
    clicks_before: int  # clicks logged before it: Dataset.click_log[:clicks_before]
    at: int  # its event's index in the log in time order (where a sequence model reads its history)


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
    click_log: np.ndarray  # (clicks,) item row of every logged click, in time order
    train_events: int  # the training window: the first ``train_events`` events in time order


def build_dataset(
    events: Iterable[Event],
    recent_len: int = 20,
    negatives: int = 4,
    validation_share: float = 0.1,
    test_share: float = 0.1,
    attribution_ms: int = 30 * 60_000,
    seed: int = 7,
) -> Dataset:
    """Label, featurise and split a time-ordered event log (see the module docstring)."""
    events = sorted(events, key=lambda e: e.ts)  # stable: ties keep log order
    if not events:
        raise ValueError("the log is empty: nothing to train on")
    has_impressions = any(e.type == "impression" for e in events)
    group_of = _group_of(events, has_impressions)
    n_groups = int(group_of.max()) + 1
    if n_groups < 10:
        raise ValueError(f"only {n_groups} labelled groups in the log: too few to split for training")
    train_end = int(n_groups * (1 - validation_share - test_share))
    val_end = int(n_groups * (1 - test_share))
    opened = np.flatnonzero(group_of >= train_end)
    boundary = int(opened[0]) if len(opened) else len(events)
    cat = Catalogue()
    ids = [cat.observe(e) for e in events[:boundary]] + [cat.observe_later(e) for e in events[boundary:]]
    clicked, converted = _attribute(events, has_impressions, attribution_ms)
    rows, clicks, click_log = _featurise(
        events,
        ids,
        group_of,
        clicked,
        converted,
        has_impressions,
        _History(recent_len, len(cat.items) - 1),
        negatives,
        seed,
    )
    split = np.searchsorted(rows.group, [train_end, val_end])
    validation_clicks = [c for g, c in clicks if train_end <= g < val_end]
    test_clicks = [c for g, c in clicks if g >= val_end]
    return Dataset(
        cat,
        rows.take(np.arange(split[0])),
        rows.take(np.arange(split[0], split[1])),
        rows.take(np.arange(split[1], len(rows))),
        validation_clicks,
        test_clicks,
        (events[0].ts, events[-1].ts),
        len(events),
        has_impressions,
        click_log,
        boundary,
    )


def _group_of(events: list[Event], has_impressions: bool) -> np.ndarray:
    """(n_events,) the group each event's row opens or joins; -1 for events with no row. A group is
    one click (positives-only logs) or one slate: a user's impressions at one timestamp."""
    out = np.full(len(events), -1, dtype=np.int64)
    group, last_slate = -1, None
    for n, e in enumerate(events):
        if has_impressions and e.type == "impression":
            if last_slate != (e.user_id, e.ts):
                group += 1
                last_slate = (e.user_id, e.ts)
            out[n] = group
        elif not has_impressions and e.type == "click":
            group += 1
            out[n] = group
    return out


class _History:
    """What is known just before each event: each user's recent model items and clicked items, and
    how many items the log has shown (row indices follow first appearance, so those are 1..items)."""

    def __init__(self, recent_len: int, model_items: int) -> None:
        self.recent_len, self.model_items = recent_len, model_items
        self.recent: dict[int, list[int]] = {}
        self.seen: dict[int, set[int]] = {}
        self.items = 0

    def recent_of(self, user: int) -> np.ndarray:
        """(L,) the user's newest clicked items the model has rows for, 0-padded."""
        out = np.zeros(self.recent_len, dtype=np.int64)
        past = self.recent.get(user, [])
        out[: len(past)] = past
        return out

    def seen_of(self, user: int) -> set[int]:
        return self.seen.get(user, set())

    def click(self, user: int, item: int) -> None:
        if item <= self.model_items:
            recent = self.recent.setdefault(user, [])
            recent.insert(0, item)
            del recent[self.recent_len :]
        self.seen.setdefault(user, set()).add(item)

    def logged(self, item: int) -> None:
        self.items = max(self.items, item)


def _featurise(
    events: list[Event],
    ids: list[tuple[int, int]],
    group_of: np.ndarray,
    clicked: set[int],
    converted: set[int],
    has_impressions: bool,
    history: _History,
    negatives: int,
    seed: int,
) -> tuple[Rows, list[tuple[int, TestClick]], np.ndarray]:
    """Every labelled row, every click with its group and what preceded it, and the click log."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list] = {k: [] for k in Rows.__dataclass_fields__}
    clicks: list[tuple[int, TestClick]] = []
    click_log: list[int] = []
    group = -1

    def row(u: int, i: int, hist: np.ndarray, click: float, conv: float, ts: int) -> None:
        for key, value in (
            ("user", u),
            ("item", i),
            ("recent", hist),
            ("click", click),
            ("conversion", conv),
            ("ts", ts),
            ("group", group),
        ):
            cols[key].append(value)

    for n, (e, (u, i)) in enumerate(zip(events, ids)):
        group = max(group, int(group_of[n]))
        hist = history.recent_of(u)
        if has_impressions and e.type == "impression":
            row(u, i, hist, float(n in clicked), float(n in converted), e.ts)
        elif e.type == "click":
            user_seen = history.seen_of(u)
            if not has_impressions:
                row(u, i, hist, 1.0, float(n in converted), e.ts)
                for j in _negatives(rng, history.items, user_seen, i, negatives):
                    row(u, j, hist, 0.0, 0.0, e.ts)
            seen = np.fromiter(user_seen, dtype=np.int64, count=len(user_seen))
            clicks.append((group, TestClick(u, i, hist, seen, history.items, len(click_log), n)))
            click_log.append(i)
            history.click(u, i)
        history.logged(i)
    rows = Rows(
        *(
            np.asarray(cols[k], dtype=dt)
            for k, dt in (
                ("user", np.int64),
                ("item", np.int64),
                ("recent", np.int64),
                ("click", np.float32),
                ("conversion", np.float32),
                ("ts", np.int64),
                ("group", np.int64),
            )
        )
    )
    if rows.recent.ndim == 1:  # no rows at all
        rows.recent = rows.recent.reshape(0, history.recent_len)
    return rows, clicks, np.asarray(click_log, dtype=np.int64)


def _negatives(rng: np.random.Generator, logged: int, user_seen: set[int], clicked: int, negatives: int) -> list[int]:
    """Up to ``negatives`` distinct items among rows 1..``logged``, never one the user clicked: a few
    uniform tries per negative, clicked items skipped."""
    drawn: list[int] = []
    tries = (rng.integers(logged, size=negatives * 4) + 1).tolist() if logged else []
    for j in tries:
        if len(drawn) >= negatives:
            break
        if j != clicked and j not in drawn and j not in user_seen:
            drawn.append(j)
    return drawn


def _attribute(events: list[Event], has_impressions: bool, attribution_ms: int) -> tuple[set[int], set[int]]:
    """Indices (into ``events``) of the impressions (or, without impressions, the clicks) that were
    clicked, and of those that converted. Last touch: a click labels the latest earlier impression
    of the same (user, item) within ``attribution_ms``, once; a conversion labels the impression
    (or click) its latest earlier click was attributed to."""
    last_impression: dict[tuple[str, str], int] = {}
    last_click: dict[tuple[str, str], int] = {}  # -> the index that click was attributed to
    clicked: set[int] = set()
    converted: set[int] = set()
    for n, e in enumerate(events):
        key = (e.user_id, e.item_id)
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
