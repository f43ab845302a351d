"""offline.evaluate: the offline metrics every model is judged by.

* ``auc`` is the share of (positive, negative) pairs ordered correctly, ties counting one half, and
  nan when only one class is present;
* ``logloss`` is the mean binary cross-entropy, with probabilities clipped away from 0 and 1;
* ``ranking`` scores the whole catalogue for each test click, ranks the clicked item among the items
  logged before the click less those the user clicked before, and reports Recall@K and NDCG@K =
  1/log2(rank + 2) (rank 0-based) averaged over clicks; a re-click of a seen item, or the first
  click of an item nobody had logged, is a miss (the served rule);
* ``click_gains`` are the per-click terms behind NDCG@K, in click order;
* ``popularity_gains`` rank by the clicks logged before each click, the test window's included;
* ``share_interval`` / ``lead_interval`` are paired intervals of a ratio / a difference of two
  models' NDCG on the same clicks that resample users, the bootstrap of ``stream.evaluation.paired``;
* ``sample_clicks`` is a deterministic subsample that keeps time order.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from offline.evaluate import (
    auc,
    click_gains,
    logloss,
    popularity_gains,
    ranking,
    sample_clicks,
    share_interval,
)
from offline.features import ContentTables
from offline.samples import Catalogue
from offline.samples import (
    TestClick as Click,  # aliased: pytest would try to collect "Test*"
)
from stream.evaluation.paired import lead_interval
from stream.events import Event, ItemAttributes

T0 = 1_700_000_000_000

# -- auc --------------------------------------------------------------------------------------------


def brute_force_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = scores[labels > 0.5], scores[labels <= 0.5]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(6))
def test_auc_is_the_share_of_correctly_ordered_pairs_ties_counting_half(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    labels = (rng.random(n) < 0.3).astype(np.float32)
    labels[:2] = [0.0, 1.0]  # both classes present
    scores = np.round(rng.random(n) + 0.3 * labels, 1)  # coarse: plenty of ties
    assert auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels), abs=1e-12)


def test_auc_extremes():
    labels = np.array([0, 0, 1, 1])
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert auc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert auc(np.full(4, 0.5), labels) == 0.5  # all tied: chance


def test_auc_is_nan_with_one_class():
    assert math.isnan(auc(np.array([0.1, 0.9]), np.array([1.0, 1.0])))
    assert math.isnan(auc(np.array([0.1, 0.9]), np.array([0.0, 0.0])))


# -- logloss ----------------------------------------------------------------------------------------


def test_logloss_known_values():
    assert logloss(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == pytest.approx(math.log(2))
    assert logloss(np.array([0.9, 0.2]), np.array([1.0, 0.0])) == pytest.approx(-(math.log(0.9) + math.log(0.8)) / 2)
    assert logloss(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == pytest.approx(0.0, abs=1e-6)


def test_logloss_clips_certain_mistakes_to_a_finite_cost():
    worst = logloss(np.array([0.0]), np.array([1.0]), eps=1e-7)
    assert worst == pytest.approx(-math.log(1e-7))
    assert logloss(np.array([1.0]), np.array([0.0])) == pytest.approx(worst, rel=1e-3)


# -- ranking ----------------------------------------------------------------------------------------


def five_item_catalogue() -> Catalogue:
    cat = Catalogue()
    for k in range(1, 6):
        cat.observe(
            Event(
                event_id=f"e{k}",
                ts=T0 + k,
                user_id=f"u{k % 2}",
                item_id=f"i{k}",
                type="click",
                item=ItemAttributes(category=f"c{k % 2}", tags=[f"t{k}"]),
            )
        )
    return cat  # items i1..i5 have ids 1..5, users u1 -> 1, u0 -> 2


class FakeScorer:
    """Fixed score per item id; records every batch it was asked to score."""

    def __init__(self, by_item: dict[int, float]) -> None:
        self.table = np.zeros(6)
        for item, s in by_item.items():
            self.table[item] = s
        self.batches: list[dict[str, np.ndarray]] = []

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        self.batches.append(inputs)
        return self.table[inputs["item"]]


def click(
    user: int, item: int, seen: list[int] = (), recent: list[int] = (0, 0, 0), known: int = 5, clicks_before: int = 0
) -> Click:
    return Click(
        user=user,
        item=item,
        recent=np.asarray(recent, dtype=np.int64),
        seen=np.asarray(seen, dtype=np.int64),
        known=known,
        clicks_before=clicks_before,
        at=clicks_before,  # where a sequence model would read its history: unused here
    )


def test_ranking_scores_the_whole_catalogue_for_the_clicking_user():
    tables = ContentTables(five_item_catalogue())
    scorer = FakeScorer({k: k for k in range(1, 6)})
    ranking(scorer, [click(2, 3, recent=[4, 1, 0])], tables, k=2)
    (batch,) = scorer.batches
    assert batch["item"].tolist() == [1, 2, 3, 4, 5]  # every item, never padding
    assert (batch["user"] == 2).all()
    assert (batch["recent"] == [4, 1, 0]).all() and batch["recent"].shape == (5, 3)
    assert (batch["item_tokens"] == tables.item_tokens[1:]).all()
    assert (batch["user_tokens"] == tables.user_tokens[2]).all()


def test_ranking_recall_and_ndcg_by_hand():
    tables = ContentTables(five_item_catalogue())
    # scores: item 5 > 4 > 3 > 2 > 1, so item j sits at 0-based rank 5 - j.
    scorer = FakeScorer({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5})
    clicks = [click(1, 5), click(1, 4), click(2, 2), click(2, 1)]  # ranks 0, 1, 3, 4
    out = ranking(scorer, clicks, tables, k=3)
    assert out["recall@3"] == pytest.approx(2 / 4)
    assert out["ndcg@3"] == pytest.approx((1 / math.log2(2) + 1 / math.log2(3)) / 4)
    out = ranking(scorer, clicks, tables, k=5)
    assert out == pytest.approx({"recall@5": 1.0, "ndcg@5": sum(1 / math.log2(r + 2) for r in (0, 1, 3, 4)) / 4})


def test_click_gains_are_each_clicks_ndcg_term_in_click_order():
    tables = ContentTables(five_item_catalogue())
    scorer = FakeScorer({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5})
    gains = click_gains(scorer, [click(2, 1), click(1, 5), click(1, 4)], tables, k=3)  # ranks 4, 0, 1
    assert gains.tolist() == pytest.approx([0.0, 1.0, 1 / math.log2(3)])


def test_ranking_excludes_the_items_the_user_clicked_before():
    tables = ContentTables(five_item_catalogue())
    scorer = FakeScorer({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5})
    assert ranking(scorer, [click(1, 3)], tables, k=1) == {"recall@1": 0.0, "ndcg@1": 0.0}  # rank 2
    out = ranking(scorer, [click(1, 3, seen=[5, 4])], tables, k=1)  # the two ahead were seen
    assert out == {"recall@1": 1.0, "ndcg@1": 1.0}
    out = ranking(scorer, [click(1, 3, seen=[5, 1])], tables, k=1)  # only one of them was
    assert out["recall@1"] == 0.0
    assert ranking(scorer, [click(1, 3, seen=[5, 1])], tables, k=2)["ndcg@2"] == pytest.approx(1 / math.log2(3))


def test_a_re_click_of_a_seen_item_is_a_miss_as_the_served_rule_excludes_it():
    tables = ContentTables(five_item_catalogue())
    scorer = FakeScorer({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5})
    assert ranking(scorer, [click(1, 5, seen=[5])], tables, k=5)["recall@5"] == 0.0


def test_a_click_is_ranked_among_the_items_logged_before_it():
    tables = ContentTables(five_item_catalogue())
    scorer = FakeScorer({1: 0.1, 2: 0.2, 3: 0.3, 4: 0.4, 5: 0.5})
    assert ranking(scorer, [click(1, 3, known=3)], tables, k=1)["recall@1"] == 1.0  # 4 and 5 came later
    assert ranking(scorer, [click(1, 3, known=4)], tables, k=1)["recall@1"] == 0.0
    assert ranking(scorer, [click(1, 5, known=4)], tables, k=5)["recall@5"] == 0.0  # its first appearance


def test_ranking_of_no_clicks_is_zero_not_an_error():
    tables = ContentTables(five_item_catalogue())
    assert ranking(FakeScorer({}), [], tables, k=10) == {"recall@10": 0.0, "ndcg@10": 0.0}


# -- popularity so far ------------------------------------------------------------------------------


def test_popularity_ranks_by_the_clicks_logged_before_each_click():
    click_log = np.array([1, 1, 2, 3, 3, 3, 2, 2, 2, 2])
    clicks = [
        click(1, 2, clicks_before=2, known=3),  # counts 1:2, 2:0, 3:0 -> item 2 second of 3
        click(1, 3, clicks_before=6, known=3),  # 1:2, 2:1, 3:3 -> first
        click(2, 1, clicks_before=10, known=5),
    ]  # 1:2, 2:5, 3:3, 4:0, 5:0 -> third
    gains = popularity_gains(click_log, clicks, k=2)
    assert gains.tolist() == pytest.approx([1 / math.log2(3), 1.0, 0.0])


def test_popularity_counts_the_test_windows_earlier_clicks_and_not_the_click_itself():
    click_log = np.array([2, 1, 1, 1])  # the training window holds the first click; item 1's come after
    first = click(1, 1, clicks_before=1, known=2)  # 2 has one click, 1 none: counting its own click would tie
    later = click(2, 1, clicks_before=3, known=2)  # 1 has two by now, though none in the training window
    assert popularity_gains(click_log, [first, later], k=1).tolist() == [0.0, 1.0]


def test_popularity_gains_refuse_clicks_out_of_time_order():
    with pytest.raises(ValueError, match="time order"):
        popularity_gains(np.array([1, 2, 3]), [click(1, 1, clicks_before=2), click(1, 2, clicks_before=1)])


# -- paired intervals over users --------------------------------------------------------------------


def _losing_a_tenth_of_the_hits(n: int, users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    reference = (rng.random(n) < 0.2) / np.log2(rng.integers(2, 12, n))
    return np.where(rng.random(n) < 0.9, reference, 0.0), reference, rng.integers(0, users, n)


def test_share_interval_holds_the_observed_ratio_and_narrows_with_more_users():
    gains, reference, users = _losing_a_tenth_of_the_hits(500, 50)
    share = share_interval(gains, reference, users)
    assert share.estimate == pytest.approx(gains.sum() / reference.sum())
    assert share.low < share.estimate < share.high <= 1.0 and share.users == 50  # it can only lose hits
    many = share_interval(*_losing_a_tenth_of_the_hits(8000, 800))
    assert many.high - many.low < (share.high - share.low) / 2
    assert many.low < 0.9 < many.high


def test_share_interval_of_identical_gains_is_exactly_one():
    reference = np.array([0.0, 1.0, 0.5, 0.0, 0.63])
    share = share_interval(reference.copy(), reference, np.array([1, 2, 1, 3, 2]))
    assert (share.estimate, share.low, share.high) == (1.0, 1.0, 1.0)


def test_intervals_resample_users_not_clicks():
    # Each user's clicks hit or miss together: with 20 users the evidence is 20 draws, not 400.
    rng = np.random.default_rng(5)
    users = np.repeat(np.arange(20), 20)
    lead = np.repeat(rng.random(20) < 0.5, 20).astype(np.float64)
    clustered = lead_interval(lead, np.zeros(400), users)
    one_each = lead_interval(lead, np.zeros(400), np.arange(400))
    assert clustered.estimate == one_each.estimate == pytest.approx(lead.mean())
    assert clustered.high - clustered.low > 3 * (one_each.high - one_each.low)


def many_clicks(n: int) -> list[Click]:
    return [click(1, 1 + k % 5, recent=[k, 0, 0]) for k in range(n)]  # recent[0] tags the position


def test_sample_clicks_keeps_everything_when_under_the_limit_or_unlimited():
    clicks = many_clicks(10)
    assert sample_clicks(clicks, 0) == clicks
    assert sample_clicks(clicks, 10) == clicks
    assert sample_clicks(clicks, 50) == clicks


def test_sample_clicks_is_a_deterministic_subsequence_in_time_order():
    clicks = many_clicks(200)
    a = sample_clicks(clicks, 30, seed=1)
    b = sample_clicks(clicks, 30, seed=1)
    positions = [int(c.recent[0]) for c in a]
    assert len(a) == 30 and len(set(positions)) == 30
    assert positions == sorted(positions)  # time order kept
    assert [int(c.recent[0]) for c in b] == positions  # same seed, same sample
    assert all(c is clicks[p] for c, p in zip(a, positions))
    assert [int(c.recent[0]) for c in sample_clicks(clicks, 30, seed=2)] != positions
