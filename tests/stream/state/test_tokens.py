"""Users' token histories in the stream state: the tokens a request reads are the ones the offline
layer trains on for the same moment (item, kind as of that moment, gap to the previous token even
when that one is no longer kept), bounded per user, and a snapshot restores them exactly."""

from __future__ import annotations

import json

import msgspec
import numpy as np

from offline.samples import Catalogue
from offline.sequences import next_clicks, user_sequences
from stream.events import Event
from stream.sources.exposure import ExposureConfig, exposure_events
from stream.state.tokens import CLICK, CONVERTED, IMPRESSION, UserTokens, gap_bucket, gap_buckets

LENGTH = 8


def spread_in_time(events: list[Event], seed: int) -> list[Event]:
    """The events in time order, moved apart by random gaps of up to a day (the generated world's
    events are milliseconds apart, which would leave every gap bucket 0)."""
    ordered = sorted(events, key=lambda e: e.ts)
    steps = np.random.default_rng(seed).exponential(2000.0, len(ordered)) ** 1.5  # ms, heavy-tailed
    stamps = ordered[0].ts + np.cumsum(steps).astype(np.int64)
    return [msgspec.structs.replace(e, ts=int(t)) for e, t in zip(ordered, stamps)]


def test_a_request_reads_the_tokens_offline_training_builds_for_that_moment():
    events = spread_in_time(list(exposure_events(ExposureConfig(seed=3, n_users=30, n_items=50, n_sessions=200))), 0)
    catalogue = Catalogue()
    points = next_clicks(user_sequences(events, catalogue), LENGTH, since=0)
    assert (points.kind == CONVERTED).any() and (points.kind == IMPRESSION).any()
    assert len(np.unique(points.gap)) > 5
    expected = {int(at): n for n, at in enumerate(points.at)}
    tokens, users, rows = UserTokens(LENGTH), {}, {}
    checked = 0
    for position, e in enumerate(events):
        user = users.setdefault(e.user_id, len(users))
        item = rows.setdefault(e.item_id, catalogue.items.get(e.item_id))  # offline's row as the dense id
        if position in expected:  # a click with a history: what a request just before it reads
            n, got = expected[position], tokens.read(user, e.ts)
            length = len(got.item)
            assert length == min(LENGTH, int((points.item[n] > 0).sum()))
            np.testing.assert_array_equal(got.item, points.item[n][:length])
            np.testing.assert_array_equal(got.kind, points.kind[n][:length])
            np.testing.assert_array_equal(got.gap, points.gap[n][:length])
            checked += 1
        tokens.add(user, item, e.type, e.ts)
    assert checked == len(points) > 100


def test_histories_are_bounded_and_conversions_show_from_their_time_on():
    tokens = UserTokens(per_user=3)
    for n, item in enumerate([1, 2, 1, 3]):
        tokens.add(0, item, "click", 1000 * n)
    tokens.add(0, 9, "impression", 3500)
    tokens.add(0, 1, "conversion", 4000)  # marks the latest click of item 1 (the third token)
    before, after = tokens.read(0, 3999), tokens.read(0, 4000)
    assert before.item.tolist() == [1, 3, 9]
    assert before.kind.tolist() == [CLICK, CLICK, IMPRESSION]
    assert after.kind.tolist() == [CONVERTED, CLICK, IMPRESSION]
    assert before.gap.tolist() == [2, 2, 0]  # 1 s (1 + log2(2)), 1 s, 0.5 s after each predecessor
    assert len(tokens.read(7, 0).item) == 0


def test_a_snapshot_restores_every_history():
    tokens = UserTokens(per_user=4)
    rng = np.random.default_rng(0)
    for t in range(200):
        kind = ["impression", "click", "conversion"][int(rng.integers(3))]
        tokens.add(int(rng.integers(5)), int(rng.integers(10)), kind, 700 * t)
    restored = UserTokens(per_user=4)
    restored.load_state(json.loads(json.dumps(tokens.to_state())))
    for user in range(6):
        for a, b in zip(tokens.read(user, 50_000), restored.read(user, 50_000)):
            np.testing.assert_array_equal(a, b)
    for t in (tokens, restored):  # a new token's gap counts from the snapshot's last one
        t.add(0, 3, "click", 400_000)
    assert restored.read(0, 400_000).gap[-1] == tokens.read(0, 400_000).gap[-1] > 0


def test_a_conversion_marks_the_latest_click_of_its_item_once():
    tokens = UserTokens(per_user=5)
    for n, item in enumerate([1, 2, 1]):
        tokens.add(0, item, "click", 1000 * n)
    tokens.add(0, 1, "conversion", 5000)
    tokens.add(0, 1, "conversion", 9000)  # a second conversion does not move the first
    assert tokens.read(0, 6000).kind.tolist() == [CLICK, CLICK, CONVERTED]


def test_one_gap_is_bucketed_as_many_are():
    seconds = np.array([0.0, 0.4, 0.999, 1.0, 1.5, 3.0, 59.0, 3600.0, 86_400.0 * 365, 2.0**40, -5.0])
    assert [gap_bucket(float(s)) for s in seconds] == gap_buckets(seconds).tolist()


def test_a_snapshot_keeps_short_histories_whole_and_a_smaller_bound_keeps_the_newest():
    tokens = UserTokens(per_user=10)
    for n in range(6):
        tokens.add(0, n, "click", 1000 * n)
    snapshot = json.loads(json.dumps(tokens.to_state()))
    same, smaller = UserTokens(per_user=10), UserTokens(per_user=2)
    same.load_state(snapshot)
    smaller.load_state(snapshot)
    assert same.read(0, 0).item.tolist() == [0, 1, 2, 3, 4, 5]
    assert smaller.read(0, 0).item.tolist() == [4, 5]
