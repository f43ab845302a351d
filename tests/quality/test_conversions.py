"""Protocol (a) for conversions: each conversion takes the ranks of the latest scored click of the
same user and item before it, and the figures are the clicks' figures on those rows."""

import numpy as np
import pytest

from stream.config import load_config
from stream.events import Event
from streamrec.quality.clicks import RankLog
from streamrec.quality.conversions import ConversionLog
from streamrec.quality.replay import NextClicks, replay

T0 = 1_700_000_000_000


def event(n: int, kind: str, user: str, item: str, value: float | None = None, event_id: str | None = None) -> Event:
    return Event(event_id=event_id or f"e{n}", ts=T0 + 1000 * n, user_id=user, item_id=item, type=kind, value=value)


def test_a_conversion_takes_the_latest_click_of_its_user_and_item():
    log, conversions = RankLog(["popularity", "other"]), ConversionLog()
    clicks = [("u1", "a", 0), ("u2", "a", None), ("u1", "b", None), ("u1", "c", 3)]
    for user, item, rank in clicks:
        log.add(user, {"popularity": rank, "other": None})
        conversions.click(event(len(log), "click", user, item), len(log) - 1)
    conversions.conversion(event(10, "conversion", "u1", "a", 10.0), len(log))  # u1's click on a: a hit
    log.add("u1", {"popularity": None, "other": 0})  # u1 clicks a again: now excluded as seen, a miss
    conversions.click(event(11, "click", "u1", "a"), len(log) - 1)
    conversions.conversion(event(12, "conversion", "u1", "a", 30.0), len(log))  # the re-click: a miss
    conversions.conversion(event(13, "conversion", "u3", "c"), len(log))  # c was clicked by u1 only

    assert list(conversions.rows) == [0, 4] and len(conversions.unmatched) == 1
    figures = conversions.figures(log, k=10, resamples=99)
    assert figures["conversions"] == 2 and figures["unmatched"] == 1 and figures["valued"]
    popularity, other = figures["rankers"]["popularity"], figures["rankers"]["other"]
    assert popularity["recall@10"] == 0.5 and popularity["ndcg@10"] == 0.5
    assert popularity["value_recall@10"] == pytest.approx(10 / 40)
    assert other["recall@10"] == 0.5 and other["value_recall@10"] == pytest.approx(30 / 40)
    assert other["recall@10_lead_over_popularity"]["lead"] == 0.0


def test_the_reported_part_holds_the_conversions_of_its_clicks():
    log, conversions = RankLog(["popularity"]), ConversionLog()
    for n, rank in enumerate([0, None, None, 1]):
        log.add(f"u{n}", {"popularity": rank})
        conversions.click(event(n, "click", f"u{n}", "a"), n)
        conversions.conversion(event(10 + n, "conversion", f"u{n}", "a"), n + 1)
    conversions.conversion(event(20, "conversion", "u9", "a"), 4)
    first, second = (conversions.figures(log, 10, part, resamples=99) for part in (slice(0, 2), slice(2, 4)))
    assert (first["conversions"], first["unmatched"], second["conversions"], second["unmatched"]) == (2, 0, 2, 1)
    assert first["rankers"]["popularity"]["recall@10"] == second["rankers"]["popularity"]["recall@10"] == 0.5


def test_a_replay_matches_only_applied_clicks_and_conversions():
    events = [
        event(1, "click", "u1", "a"),
        event(2, "click", "u2", "b"),
        event(3, "click", "u1", "b"),
        event(4, "conversion", "u1", "a", 5.0),
        event(5, "conversion", "u1", "a", 5.0, event_id="e4"),  # a duplicate: not counted
        event(6, "click", "u2", "a", event_id="e1"),  # a duplicate click: never scored
        event(7, "conversion", "u2", "a"),  # so this conversion has no click
        event(8, "conversion", "u2", "b"),
    ]
    clicks = NextClicks({})
    replay(events, load_config(env={}), [clicks])
    assert len(clicks.log) == 3
    assert list(clicks.conversions.rows) == [0, 1] and list(clicks.conversions.values) == [5.0, 0.0]
    assert list(clicks.conversions.unmatched) == [3]
    assert np.frombuffer(clicks.log.select(np.array([1, 1])).users, dtype=np.int64).tolist() == [1, 1]
