"""offline.samples: a logged event stream becomes labelled, featurised, time-split training rows.

The contract, as these tests read it:

* index 0 is padding / unknown in every table; real ids start at 1;
* a row's features (``recent``) are read from the state *before* its own event: a row never sees a
  click that happened at or after it, and a click row never sees its own item;
* positives-only logs (MovieLens-like) give every click up to ``negatives`` sampled rows, drawn from
  the items the log has already shown and never from items the user clicked before;
* impression logs label an impression a click only when a click on the same (user, item) follows it
  within the attribution window, and a conversion only when it follows that click;
* groups are contiguous runs of rows, the split is by time over whole groups, and the test window's
  clicks carry the user's history as it was just before each click;
* ids, content tokens and every table come from the training window alone: a user or item first
  logged in validation or test has no row in the catalogue (the model) and takes serving's cold
  path -- model index 0, a new item described by its category alone, a new user by history alone;
* an empty log or a log with too few groups is refused with a message that says why.
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from offline.features import ContentTables
from offline.samples import PAD, Catalogue, Dataset, Groups, Rows, Vocab, build_dataset
from stream.events import Event, ItemAttributes
from stream.sources.synthetic import SyntheticConfig, synthetic_events

T0 = 1_700_000_000_000  # ms epoch (2023-11-14), well inside the schema's accepted range
MIN = 60_000


class Log:
    """A tiny hand-written event log: ``log.click(3, "u1", "a")`` logs a click at minute 3."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def add(self, minute: float, user: str, item: str, type: str, **extra) -> Event:
        e = Event(
            event_id=f"e{len(self.events)}", ts=T0 + int(minute * MIN), user_id=user, item_id=item, type=type, **extra
        )
        self.events.append(e)
        return e

    def click(self, minute: float, user: str, item: str, **extra) -> Event:
        return self.add(minute, user, item, "click", **extra)

    def impression(self, minute: float, user: str, item: str, **extra) -> Event:
        return self.add(minute, user, item, "impression", **extra)

    def conversion(self, minute: float, user: str, item: str, **extra) -> Event:
        return self.add(minute, user, item, "conversion", **extra)

    def slate(self, minute: float, user: str, items: list[str]) -> None:
        for item in items:
            self.impression(minute, user, item)


def all_rows(ds: Dataset) -> Rows:
    """train + validation + test, in that (time) order."""
    return Rows(
        *(
            np.concatenate([getattr(part, f) for part in (ds.train, ds.validation, ds.test)])
            for f in Rows.__dataclass_fields__
        )
    )


def history(row_recent: np.ndarray) -> list[int]:
    """A ``recent`` row without its padding, newest first."""
    return [int(x) for x in row_recent if x != PAD]


def filler(log: Log, n: int, start: float = 10_000, user: str = "filler") -> None:
    """``n`` more groups late in the log (clicks of a user no test looks at), so the split has enough."""
    for k in range(n):
        log.click(start + k, f"{user}{k}", f"filler-item-{k}")


def positives_only_log(seed: int = 0, n_users: int = 5, n_items: int = 12, n_clicks: int = 60) -> Log:
    """Random clicks, no re-clicks, distinct minutes: a MovieLens-shaped log."""
    rng = random.Random(seed)
    log = Log()
    pairs = rng.sample([(f"u{u}", f"i{i}") for u in range(n_users) for i in range(n_items)], n_clicks)
    for minute, (u, i) in zip(sorted(rng.sample(range(1, 100_000), n_clicks)), pairs):
        log.click(minute, u, i)
    return log


# -- ids --------------------------------------------------------------------------------------------


def test_vocab_is_one_based_and_zero_means_unknown():
    vocab = Vocab()
    assert len(vocab) == 1  # only the padding row
    assert vocab.add("a") == 1 and vocab.add("b") == 2 and vocab.add("a") == 1
    assert vocab.get("b") == 2
    assert vocab.get("never seen") == PAD == 0
    assert len(vocab) == 3  # table size counts the padding row


def test_catalogue_content_tables_leave_row_zero_as_padding():
    cat = Catalogue()
    u, i = cat.observe(
        Event(
            event_id="e",
            ts=T0,
            user_id="u1",
            item_id="i1",
            type="click",
            item=ItemAttributes(category="drama", tags=["1995", "heist"]),
            user={"gender": "F", "age": "24"},
        )
    )
    assert (u, i) == (1, 1)
    assert [cat.item_tokens.keys[t - 1] for t in cat.tokens_of_item[i]] == ["cat:drama", "tag:1995", "tag:heist"]
    assert [cat.user_tokens.keys[t - 1] for t in cat.tokens_of_user[u]] == ["age:24", "gender:F"]
    items = cat.item_token_matrix(width=2)
    assert items.shape == (2, 2) and not items[0].any()
    assert items[1].tolist() == cat.tokens_of_item[i][:2]  # truncated to the width
    users = cat.user_token_matrix(width=4)
    assert users.shape == (2, 4) and not users[0].any()
    assert users[1].tolist() == [*cat.tokens_of_user[u], 0, 0]  # 0-padded


def test_dataset_ids_are_one_based_and_every_row_points_at_a_real_user_and_item():
    ds = build_dataset(positives_only_log().events)
    rows, cat = all_rows(ds), ds.catalogue
    assert rows.user.min() >= 1 and rows.item.min() >= 1
    assert rows.user.max() < len(cat.users) + len(cat.later_users) - 1
    assert rows.item.max() < len(cat.items) + len(cat.later_items) - 1
    assert ds.train.user.max() < len(cat.users) and ds.train.item.max() < len(cat.items)
    assert cat.items.get("no such item") == cat.item_index("no such item") == 0


def later_ids_log() -> Log:
    """16 training-window clicks of three known users on five items, then a user and two items first
    logged in validation/test: one item of a known category, one of a category never seen."""
    log = Log()

    def click(minute: int, user: str, item: str, age: str, category: str, tags: list[str]) -> None:
        log.events.append(
            Event(
                event_id=f"e{len(log.events)}",
                ts=T0 + minute * MIN,
                user_id=user,
                item_id=item,
                type="click",
                user={"age": age},
                item=ItemAttributes(category=category, tags=tags),
            )
        )

    for k in range(16):
        click(k, f"early{k % 3}", f"a{k % 5}", "30", "drama" if k % 5 % 2 else "comedy", ["old"])
    click(20, "late", "late-new", "99", "drama", ["late-only"])  # validation
    click(21, "late", "a0", "99", "comedy", ["old"])  # validation
    click(22, "late", "late-odd", "99", "never", [])  # test
    click(23, "early0", "late-new", "30", "drama", ["late-only"])  # test
    return log


def test_ids_and_content_tables_come_from_the_training_window_alone():
    ds = build_dataset(later_ids_log().events, negatives=0)
    cat = ds.catalogue
    assert cat.users.keys == ["early0", "early1", "early2"] and cat.items.keys == ["a0", "a1", "a2", "a3", "a4"]
    assert "tag:late-only" not in cat.item_tokens.index and "cat:never" not in cat.item_tokens.index
    assert "age:99" not in cat.user_tokens.index
    assert cat.later_users.keys == ["late"] and cat.later_items.keys == ["late-new", "late-odd"]
    assert (cat.user_index("late"), cat.item_index("late-new"), cat.item_index("late-odd")) == (4, 6, 7)
    assert len(ds.train) == 16 and ds.train_events == 16


def test_later_ids_take_servings_cold_path():
    ds = build_dataset(later_ids_log().events, negatives=0)
    cat, tables = ds.catalogue, ContentTables(ds.catalogue)
    late_click, known_user_click = ds.test_clicks
    assert history(late_click.recent) == [cat.items.get("a0")]  # late-new has no model row: dropped
    assert late_click.known == 6 and late_click.item == 7  # late-odd is new: ranked among the 6 before it
    x = tables.catalogue_for(late_click.user, late_click.recent)  # rows for items 1..7
    assert not x["user"].any() and not x["user_tokens"].any()  # no id, no demographics, as serving
    assert x["item"].tolist() == [1, 2, 3, 4, 5, 0, 0]
    assert x["item_tokens"][5].tolist() == [cat.item_tokens.get("cat:drama")] + [0] * (x["item_tokens"].shape[1] - 1)
    assert not x["item_tokens"][6].any()  # a category the training window never saw: no content at all
    assert (x["item_tokens"][:5] == cat.item_token_matrix(x["item_tokens"].shape[1])[1:]).all()
    assert (x["recent"] == late_click.recent).all()
    y = tables.arrays(
        np.array([known_user_click.user]), np.array([known_user_click.item]), known_user_click.recent[None]
    )
    assert y["user"].tolist() == [cat.users.get("early0")] and y["user_tokens"].any()
    assert y["item"].tolist() == [0]


# -- no future in any feature -----------------------------------------------------------------------


def test_click_rows_see_only_the_users_earlier_clicks_newest_first():
    log = positives_only_log(seed=1)
    ds = build_dataset(log.events, recent_len=20, negatives=2)
    rows, cat = all_rows(ds), ds.catalogue
    clicked_before: dict[str, list[int]] = {}
    click_rows = np.flatnonzero(rows.click == 1)
    assert len(click_rows) == len(log.events)
    for r, e in zip(click_rows, sorted(log.events, key=lambda e: e.ts)):
        assert (rows.user[r], rows.item[r], rows.ts[r]) == (cat.user_index(e.user_id), cat.item_index(e.item_id), e.ts)
        expected = clicked_before.get(e.user_id, [])[::-1]  # newest first
        assert history(rows.recent[r]) == [i for i in expected if i < len(cat.items)]  # items the model has rows for
        assert rows.item[r] not in expected  # its own click is not a feature of itself
        clicked_before.setdefault(e.user_id, []).append(cat.item_index(e.item_id))


def test_negative_rows_share_the_features_of_their_click():
    ds = build_dataset(positives_only_log(seed=2).events, negatives=3)
    rows = all_rows(ds)
    for g in np.unique(rows.group):
        idx = np.flatnonzero(rows.group == g)
        assert (rows.recent[idx] == rows.recent[idx[0]]).all()
        assert (rows.ts[idx] == rows.ts[idx[0]]).all() and (rows.user[idx] == rows.user[idx[0]]).all()


def test_recent_is_truncated_to_the_newest_clicks_and_zero_padded():
    log = Log()
    for k in range(5):
        log.click(k, "u", f"i{k}")
    filler(log, 10)
    ds = build_dataset(log.events, recent_len=3, negatives=0)
    rows = all_rows(ds)
    ids = [ds.catalogue.items.get(f"i{k}") for k in range(5)]
    recents = [rows.recent[np.flatnonzero((rows.item == ids[k]) & (rows.click == 1))[0]].tolist() for k in range(5)]
    assert recents == [
        [0, 0, 0],
        [ids[0], 0, 0],
        [ids[1], ids[0], 0],
        [ids[2], ids[1], ids[0]],
        [ids[3], ids[2], ids[1]],
    ]


def test_impression_rows_see_only_clicks_before_the_impression():
    log = Log()
    log.slate(0, "u", ["a", "b", "c"])
    log.click(1, "u", "b")  # the click that labels the first slate
    log.slate(10, "u", ["a", "c", "d"])
    log.click(11, "u", "d")
    log.slate(20, "u", ["a", "c", "e"])
    for k in range(10):
        log.slate(30 + k, f"other{k}", ["a", "c"])
    ds = build_dataset(log.events, recent_len=4)
    rows = all_rows(ds)
    item, user = ds.catalogue.items.get, ds.catalogue.users.get("u")
    mine = rows.user == user
    at = {m: np.flatnonzero(mine & (rows.ts == T0 + m * MIN)) for m in (0, 10, 20)}
    assert all(history(rows.recent[r]) == [] for r in at[0])  # b's click comes after: not visible
    assert all(history(rows.recent[r]) == [item("b")] for r in at[10])
    assert all(history(rows.recent[r]) == [item("d"), item("b")] for r in at[20])


# -- negatives (positives-only logs) ----------------------------------------------------------------


def test_positives_only_clicks_get_negatives_from_seen_items_the_user_never_clicked():
    log = positives_only_log(seed=3, n_users=6, n_items=15, n_clicks=80)
    events = sorted(log.events, key=lambda e: e.ts)
    negatives = 4
    ds = build_dataset(log.events, negatives=negatives)
    rows, cat = all_rows(ds), ds.catalogue
    assert not ds.has_impressions
    n_negative_rows = 0
    for e in events:
        u, i = cat.user_index(e.user_id), cat.item_index(e.item_id)
        group = rows.group[np.flatnonzero((rows.user == u) & (rows.item == i) & (rows.click == 1))]
        assert len(group) == 1
        idx = np.flatnonzero(rows.group == group[0])
        assert rows.click[idx].tolist() == [1.0] + [0.0] * (len(idx) - 1)  # the click leads its group
        drawn = rows.item[idx[1:]].tolist()
        n_negative_rows += len(drawn)
        known_before = {cat.item_index(x.item_id) for x in events if x.ts < e.ts}
        clicked_before = {cat.item_index(x.item_id) for x in events if x.ts < e.ts and x.user_id == e.user_id}
        assert len(drawn) <= negatives
        assert len(set(drawn)) == len(drawn)  # without replacement
        assert i not in drawn
        assert set(drawn) <= known_before  # never an item the log has not shown yet (no future)
        assert not set(drawn) & clicked_before  # never something the user already chose
        assert not rows.conversion[idx[1:]].any()
    assert n_negative_rows > len(events)
    first = np.flatnonzero(rows.group == 0)
    assert len(first) == 1  # the first click of the log has nothing to draw from


def test_no_negatives_when_asked_for_none():
    ds = build_dataset(positives_only_log(seed=4).events, negatives=0)
    rows = all_rows(ds)
    assert (rows.click == 1).all() and len(np.unique(rows.group)) == len(rows)


def test_every_click_gets_exactly_negatives_rows_when_the_catalogue_allows():
    negatives = 4
    for n_known in range(5, 13):
        log = Log()
        for k in range(n_known):  # n_known items already in the log, all clicked by someone else
            log.click(k, "warm", f"w{k}")
        for k in range(10):  # fresh users: every other known item is a valid negative
            log.click(100 + k, f"fresh{k}", f"w{k % n_known}")
        ds = build_dataset(log.events, negatives=negatives)
        rows = all_rows(ds)
        for k in range(10):
            u = ds.catalogue.user_index(f"fresh{k}")
            got = int(((rows.user == u) & (rows.click == 0)).sum())
            assert got == negatives, f"{n_known} known items: fresh{k} got {got} negatives"


# -- labels (impression logs) -----------------------------------------------------------------------


def impression_labels(log: Log, user: str = "u", **kwargs) -> dict[tuple[float, str], tuple[float, float]]:
    """(minute, item) of ``user``'s impressions -> (click, conversion), with filler slates for the split."""
    for k in range(12):
        log.slate(50_000 + k, f"filler{k}", ["zz"])
    ds = build_dataset(log.events, **kwargs)
    rows, cat = all_rows(ds), ds.catalogue
    out = {}
    for r in np.flatnonzero(rows.user == cat.users.get(user)):
        key = ((int(rows.ts[r]) - T0) / MIN, cat.items.keys[rows.item[r] - 1])
        out[key] = (float(rows.click[r]), float(rows.conversion[r]))
    return out


def test_an_impression_is_a_click_only_if_the_click_follows_within_the_window():
    log = Log()
    log.slate(0, "u", ["soon", "late", "never", "before"])
    log.click(-5, "u", "before")  # clicked, but before it was shown
    log.click(10, "u", "soon")  # 10 min later: inside the 30 min window
    log.click(45, "u", "late")  # 45 min later: outside
    log.click(12, "v", "never")  # another user's click on the item does not count
    labels = impression_labels(log, attribution_ms=30 * MIN)
    assert labels == {
        (0, "soon"): (1.0, 0.0),
        (0, "late"): (0.0, 0.0),
        (0, "never"): (0.0, 0.0),
        (0, "before"): (0.0, 0.0),
    }


def test_the_attribution_window_is_a_parameter():
    log = Log()
    log.slate(0, "u", ["a"])
    log.click(45, "u", "a")
    assert impression_labels(log, attribution_ms=60 * MIN)[(0, "a")] == (1.0, 0.0)


def test_a_conversion_counts_only_on_a_clicked_impression():
    log = Log()
    log.slate(0, "u", ["bought", "unclicked"])
    log.click(1, "u", "bought")
    log.conversion(2, "u", "bought")
    log.conversion(3, "u", "unclicked")  # a conversion without a click is no label
    labels = impression_labels(log)
    assert labels == {(0, "bought"): (1.0, 1.0), (0, "unclicked"): (0.0, 0.0)}


def test_a_conversion_before_the_click_is_no_conversion():
    log = Log()
    log.slate(0, "u", ["a"])
    log.conversion(1, "u", "a")
    log.click(2, "u", "a")
    assert impression_labels(log)[(0, "a")] == (1.0, 0.0)


def test_a_second_impression_clicked_again_is_a_click_again():
    log = Log()
    log.slate(0, "u", ["a"])
    log.click(1, "u", "a")
    log.slate(120, "u", ["a"])
    log.click(121, "u", "a")
    labels = impression_labels(log)
    assert labels == {(0, "a"): (1.0, 0.0), (120, "a"): (1.0, 0.0)}


def test_one_click_labels_one_impression():
    log = Log()
    log.slate(0, "u", ["a", "b"])
    log.slate(5, "u", ["a", "c"])  # shown again 5 min later, then clicked
    log.click(6, "u", "a")
    labels = impression_labels(log)
    assert labels[(5, "a")] == (1.0, 0.0)  # the impression the click followed
    assert labels[(0, "a")] == (0.0, 0.0)  # the earlier one was not clicked


def test_positives_only_conversion_labels_the_click_it_followed():
    log = Log()
    log.click(0, "u", "bought")
    log.conversion(1, "u", "bought")
    log.click(2, "u", "kept")
    filler(log, 10)
    ds = build_dataset(log.events, negatives=0)
    rows, item = all_rows(ds), ds.catalogue.items.get
    assert rows.conversion[rows.item == item("bought")].tolist() == [1.0]
    assert rows.conversion[rows.item == item("kept")].tolist() == [0.0]


def test_positives_only_conversion_before_the_click_is_no_conversion():
    log = Log()
    log.conversion(0, "u", "a")
    log.click(1, "u", "a")
    filler(log, 10)
    ds = build_dataset(log.events, negatives=0)
    rows = all_rows(ds)
    assert rows.conversion[rows.item == ds.catalogue.items.get("a")].tolist() == [0.0]


# -- groups and the split ---------------------------------------------------------------------------


def assert_groups_contiguous(rows: Rows) -> None:
    assert (np.diff(rows.group) >= 0).all()
    assert (np.diff(rows.group) <= 1).all()  # numbered 0, 1, 2, ... in row order
    starts = np.flatnonzero(np.diff(rows.group)) + 1
    for idx in np.split(np.arange(len(rows)), starts):
        assert len(np.unique(rows.group[idx])) == 1


def test_a_slate_is_one_contiguous_group():
    log = Log()
    for k in range(12):
        log.slate(100 * k, f"u{k % 3}", [f"i{(k + j) % 7}" for j in range(4)])
        if k % 2:
            log.click(100 * k + 1, f"u{k % 3}", f"i{k % 7}")
    ds = build_dataset(log.events)
    rows = all_rows(ds)
    assert ds.has_impressions and len(rows) == 48  # one row per impression, none per click
    assert_groups_contiguous(rows)
    assert rows.group[-1] == 11
    for g in range(12):
        idx = rows.group == g
        assert idx.sum() == 4
        assert len(np.unique(rows.user[idx])) == 1 and len(np.unique(rows.ts[idx])) == 1
    assert rows.click.sum() == 6


def test_a_click_and_its_negatives_are_one_contiguous_group():
    ds = build_dataset(positives_only_log(seed=5).events, negatives=3)
    rows = all_rows(ds)
    assert_groups_contiguous(rows)
    for g in np.unique(rows.group):
        assert rows.click[rows.group == g].sum() == 1


@pytest.mark.parametrize("shares", [(0.1, 0.1), (0.2, 0.3), (0.0, 0.25)])
def test_the_split_is_by_time_over_whole_groups(shares):
    validation_share, test_share = shares
    log = positives_only_log(seed=6, n_users=8, n_items=20, n_clicks=100)
    events = list(log.events)
    random.Random(0).shuffle(events)  # the input order does not matter: the log is sorted by time
    ds = build_dataset(events, negatives=2, validation_share=validation_share, test_share=test_share)
    parts = [ds.train, ds.validation, ds.test]
    non_empty = [p for p in parts if len(p)]
    for earlier, later in itertools.pairwise(non_empty):
        assert earlier.ts.max() <= later.ts.min()
        assert earlier.group.max() < later.group.min()  # no group is cut in two
    n = 100  # one group per click
    assert len(np.unique(ds.train.group)) == int(n * (1 - validation_share - test_share))
    assert len(np.unique(ds.test.group)) == n - int(n * (1 - test_share))
    assert ds.events == 100
    assert ds.window == (min(e.ts for e in events), max(e.ts for e in events))


def test_test_clicks_are_the_test_windows_clicks_with_the_history_before_each():
    log = positives_only_log(seed=7, n_users=3, n_items=20, n_clicks=60)
    events = sorted(log.events, key=lambda e: e.ts)
    ds = build_dataset(log.events, negatives=2, test_share=0.25)
    cat = ds.catalogue
    test_click_rows = np.flatnonzero(ds.test.click == 1)
    assert len(ds.test_clicks) == len(test_click_rows) == 15
    for n, (c, r, e) in enumerate(zip(ds.test_clicks, test_click_rows, events[-15:])):
        assert (c.user, c.item) == (ds.test.user[r], ds.test.item[r])
        assert (c.user, c.item) == (cat.user_index(e.user_id), cat.item_index(e.item_id))
        assert (c.recent == ds.test.recent[r]).all()
        seen = {cat.item_index(x.item_id) for x in events if x.ts < e.ts and x.user_id == e.user_id}
        assert set(c.seen.tolist()) == seen  # includes what the user clicked in the training window
        assert c.item not in seen
        assert c.known == len({x.item_id for x in events if x.ts < e.ts})  # ranked among the items logged so far
        assert c.clicks_before == 45 + n and ds.click_log[c.clicks_before] == c.item


def test_impression_logs_test_clicks_are_the_clicks_after_the_test_window_opens():
    log = Log()
    for k in range(20):
        log.slate(10 * k, f"u{k % 2}", [f"i{(k + j) % 11}" for j in range(3)])
        log.click(10 * k + 1, f"u{k % 2}", f"i{k % 11}")
    ds = build_dataset(log.events, test_share=0.2)
    opens = ds.test.ts.min()
    later = [e for e in log.events if e.type == "click" and e.ts >= opens]
    cat = ds.catalogue
    assert [(c.user, c.item) for c in ds.test_clicks] == [
        (cat.user_index(e.user_id), cat.item_index(e.item_id)) for e in later
    ]
    u0 = cat.user_index("u0")
    c = next(c for c in ds.test_clicks if c.user == u0)
    u0_before = [e for e in log.events if e.type == "click" and e.user_id == "u0" and e.ts < opens]
    assert set(c.seen.tolist()) == {cat.item_index(e.item_id) for e in u0_before}


# -- refusals ---------------------------------------------------------------------------------------


def test_an_empty_log_is_refused():
    with pytest.raises(ValueError, match="empty"):
        build_dataset([])


def test_too_few_groups_are_refused_with_the_count():
    log = Log()
    for k in range(9):
        log.click(k, f"u{k}", f"i{k}")
    with pytest.raises(ValueError, match=r"only 9 labelled groups.*too few"):
        build_dataset(log.events)
    log.click(9, "u9", "i9")
    assert len(all_rows(build_dataset(log.events, negatives=0))) == 10  # ten is enough


def test_a_log_without_clicks_or_impressions_is_refused():
    log = Log()
    for k in range(20):
        log.conversion(k, "u", f"i{k}")
    with pytest.raises(ValueError, match="only 0 labelled groups"):
        build_dataset(log.events)


# -- the real synthetic stream ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> list[Event]:
    return list(synthetic_events(SyntheticConfig(n_users=100, n_items=80, n_sessions=600)))


def test_synthetic_rows_are_one_per_impression_and_split_in_time(synthetic):
    ds = build_dataset(synthetic)
    rows = all_rows(ds)
    assert ds.has_impressions
    assert len(rows) == sum(e.type == "impression" for e in synthetic)
    assert_groups_contiguous(rows)
    assert ds.train.ts.max() <= ds.validation.ts.min() <= ds.validation.ts.max() <= ds.test.ts.min()
    assert ds.test_clicks and all(c.item not in c.seen for c in ds.test_clicks)


def test_synthetic_rows_label_every_logged_click_and_conversion_once(synthetic):
    # The generator clicks an item a few ms after showing it and converts right after the click, so
    # attribution must find every one: the counts are exact.
    ds = build_dataset(synthetic)
    rows = all_rows(ds)
    clicks = sum(e.type == "click" for e in synthetic)
    assert int(rows.click.sum()) == clicks == len(ds.click_log)
    assert int(rows.conversion.sum()) == sum(e.type == "conversion" for e in synthetic)
    assert len(ds.test_clicks) == int(ds.test.click.sum()) and len(ds.validation_clicks) == int(
        ds.validation.click.sum()
    )


# -- groups -----------------------------------------------------------------------------------------


def test_groups_are_the_runs_of_equal_group_ids():
    rows = make_rows_with_groups([5, 5, 5, 6, 8, 8])
    groups = Groups.of(rows)
    assert groups.bounds.tolist() == [0, 3, 4, 6] and len(groups) == 3
    assert groups.sizes.tolist() == [3, 1, 2]
    assert groups.rows(np.array([2, 0])).tolist() == [4, 5, 0, 1, 2]
    assert groups.rows(np.array([], dtype=np.int64)).tolist() == []


def make_rows_with_groups(group: list[int]) -> Rows:
    n = len(group)
    z = np.zeros(n, dtype=np.int64)
    return Rows(
        user=z,
        item=z,
        recent=np.zeros((n, 2), dtype=np.int64),
        click=z.astype(np.float32),
        conversion=z.astype(np.float32),
        ts=z,
        group=np.asarray(group, dtype=np.int64),
    )
