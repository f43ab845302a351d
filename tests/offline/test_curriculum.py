"""offline.curriculum: easy groups first, the whole set by the end of the ramp.

* the share of rows an epoch draws from starts at ``start``, grows linearly over ``ramp_epochs`` and
  stays at 1.0 after; a disabled curriculum is plain shuffled epochs over every row;
* an epoch trains on the easiest ``share`` of the rows, in shuffled order;
* popularity difficulty: a click on a rare item is harder than a click on a popular one, a non-click
  on a popular item is harder than a non-click on a rare one; a group (a click and its negatives)
  is as hard as its click, whatever its negatives.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from offline.curriculum import Curriculum, next_click_difficulty, popularity_difficulty
from offline.samples import Groups, Rows


def make_rows(items: list[int], clicks: list[int], group: list[int] | None = None) -> Rows:
    """Rows, each its own group unless ``group`` says otherwise."""
    n = len(items)
    return Rows(
        user=np.ones(n, dtype=np.int64),
        item=np.asarray(items, dtype=np.int64),
        recent=np.zeros((n, 3), dtype=np.int64),
        click=np.asarray(clicks, dtype=np.float32),
        conversion=np.zeros(n, dtype=np.float32),
        ts=np.arange(n, dtype=np.int64),
        group=np.asarray(group if group is not None else range(n), dtype=np.int64),
    )


def _difficulty(rows: Rows) -> np.ndarray:
    return popularity_difficulty(rows, Groups.of(rows))


# -- schedule ---------------------------------------------------------------------------------------


def test_share_starts_at_start_ramps_linearly_and_stays_at_one():
    c = Curriculum(start=0.4, ramp_epochs=3)
    assert [c.share(e) for e in range(6)] == pytest.approx([0.4, 0.6, 0.8, 1.0, 1.0, 1.0])
    assert c.share(100) == 1.0


def test_share_never_decreases_and_never_exceeds_one():
    c = Curriculum(start=0.25, ramp_epochs=5)
    shares = [c.share(e) for e in range(12)]
    assert all(a <= b for a, b in itertools.pairwise(shares))
    assert max(shares) == 1.0 and min(shares) == 0.25


def test_disabled_curriculum_is_every_row_every_epoch_shuffled():
    c = Curriculum(enabled=False, start=0.1)
    rng = np.random.default_rng(0)
    difficulty = np.linspace(0, 1, 50)
    orders = [c.epoch_order(difficulty, e, rng) for e in range(3)]
    for e, order in enumerate(orders):
        assert c.share(e) == 1.0
        assert sorted(order.tolist()) == list(range(50))  # a full permutation
    assert orders[0].tolist() != list(range(50)) and orders[0].tolist() != orders[1].tolist()


@pytest.mark.parametrize("epoch", [0, 1, 2, 3, 7])
def test_an_epoch_trains_on_the_easiest_share_shuffled(epoch):
    c = Curriculum(start=0.4, ramp_epochs=3)
    n = 200
    difficulty = np.random.default_rng(1).random(n)
    order = c.epoch_order(difficulty, epoch, np.random.default_rng(2))
    assert len(order) == round(c.share(epoch) * n)
    assert len(set(order.tolist())) == len(order)  # no row twice
    chosen = np.zeros(n, dtype=bool)
    chosen[order] = True
    if not chosen.all():
        assert difficulty[chosen].max() <= difficulty[~chosen].min()  # the easiest, none skipped
    assert not (np.diff(difficulty[order]) >= 0).all()  # shuffled, not served easiest-first


def test_epoch_order_is_reproducible_from_the_generator_seed():
    c = Curriculum()
    difficulty = np.random.default_rng(3).random(40)
    a = c.epoch_order(difficulty, 1, np.random.default_rng(9))
    b = c.epoch_order(difficulty, 1, np.random.default_rng(9))
    assert a.tolist() == b.tolist()


def test_an_epoch_always_has_at_least_one_row():
    order = Curriculum(start=0.0, ramp_epochs=10).epoch_order(np.array([0.3, 0.1, 0.2]), 0, np.random.default_rng(0))
    assert order.tolist() == [1]


# -- popularity difficulty --------------------------------------------------------------------------


def test_clicks_on_rare_items_and_non_clicks_on_popular_items_are_hard():
    popular, rare = 1, 2
    items = [popular] * 5 + [rare] + [popular, rare]
    clicks = [1] * 5 + [1] + [0, 0]
    d = _difficulty(make_rows(items, clicks))
    assert ((d >= 0) & (d <= 1)).all()
    click_popular, click_rare, skip_popular, skip_rare = d[:5].max(), d[5], d[6], d[7]
    assert click_rare > click_popular
    assert skip_popular > skip_rare
    assert click_rare > skip_rare and skip_popular > click_popular  # the surprising ones are hardest


def test_popularity_counts_clicks_not_impressions():
    shown_a_lot, clicked = 1, 2
    items = [shown_a_lot] * 6 + [clicked] * 2 + [shown_a_lot, clicked]
    clicks = [0] * 6 + [1] * 2 + [0, 0]
    d = _difficulty(make_rows(items, clicks))
    assert d[9] > d[8]  # not clicking the clicked item is harder than not clicking the merely shown one


def test_rows_with_the_same_item_and_label_are_equally_hard():
    items = [1, 1, 1, 2, 1, 2, 3, 3]
    clicks = [1, 1, 1, 1, 0, 0, 0, 0]
    d = _difficulty(make_rows(items, clicks))
    assert d[0] == d[1] == d[2]  # three clicks on the same item
    assert d[6] == d[7]  # two non-clicks on the same item


def test_a_group_is_as_hard_as_its_click_whatever_its_negatives():
    popular, rare = 1, 2
    items = [popular] * 4 + [rare, popular, popular] + [popular, rare, rare]
    clicks = [1] * 4 + [1, 0, 0] + [1, 0, 0]
    rows = make_rows(items, clicks, group=[0, 1, 2, 3, 4, 4, 4, 5, 5, 5])
    d = _difficulty(rows)
    assert len(d) == 6
    assert d[4] > d[5]  # the rare click is the hard choice, though its negatives are the popular ones
    assert d[5] == pytest.approx(d[0])  # a popular click is as easy with negatives as alone


# -- next-click difficulty (sequence windows) -------------------------------------------------------


def test_a_window_of_rare_clicks_is_harder_than_one_of_popular_clicks():
    popular, rare, other = 1, 2, 3
    targets = np.array(
        [
            [popular, popular, 0],
            [rare, 0, 0],
            [popular, rare, 0],
            [popular, popular, other],
            [popular, other, other],
        ]
    )
    d = next_click_difficulty(targets)
    assert ((d >= 0) & (d <= 1)).all()
    assert d[1] > d[2] > d[0]  # all rare, half rare, all popular


def test_padding_is_not_a_click_and_a_window_without_clicks_is_easiest():
    targets = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0]])
    d = next_click_difficulty(targets)
    assert d[0] == d[1]  # the same clicks, whatever the padding after them
    assert d[3] == 0.0 and d[3] < d[2]
