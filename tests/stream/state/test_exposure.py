"""Exposure evidence: what a visit shows counts once the visit is over; the vectorised signals equal the
one-item ones; snapshots round-trip exactly; memory stays bounded."""

import math

import msgspec
import numpy as np
import pytest

from stream.config import load_config
from stream.events import Context, Event, ItemAttributes
from stream.processor import PartitionProcessor
from stream.sources.exposure import ExposureConfig, exposure_events
from stream.state.exposure import SIGNALS, ExposureEvidence


def event(n: int, kind: str, user: str, item: str, request: str | None, category: str = "c0") -> Event:
    return Event(
        event_id=f"e{n}",
        ts=1_700_000_000_000 + n,
        user_id=user,
        item_id=item,
        type=kind,
        context=Context(request_id=request, position=0),
        item=ItemAttributes(category=category),
    )


def feed(processor: PartitionProcessor, events: list[Event]) -> None:
    for e in events:
        processor.process(e)


def test_a_visits_slate_counts_only_once_the_user_starts_another_request():
    proc = PartitionProcessor(load_config(env={}))
    st = proc.state
    feed(proc, [event(0, "impression", "u", "a", "r1"), event(1, "impression", "u", "b", "r1")])
    user, a = st.users.get("u"), st.items.get("a")
    # Within the visit, what is on screen is not evidence yet: a test of its click must not see it.
    assert st.exposure.signals_one(user, a, st.item_category[a]) == (0.0, 0.0, 0.0)
    feed(proc, [event(2, "click", "u", "a", "r1")])
    assert st.exposure.signals_one(user, a, st.item_category[a])[0] == 0.0
    feed(proc, [event(3, "impression", "u", "c", "r2")])  # the next request closes r1
    shown, _, lift = st.exposure.signals_one(user, a, st.item_category[a])
    assert shown == pytest.approx(math.log(2.0)) and lift > 0  # shown once; took 1 of 2 in c0
    assert st.exposure.user_impressions[user] == 2 and st.exposure.impressions == 2


def test_everyone_s_impressions_leave_out_the_visit_under_test():
    """``seen`` reads everyone's impression counts, which grow as impressions arrive: the user's own
    open slate must not be among them (it would tell the test of the visit's clicks what is on
    screen), while another user's open slate is evidence like any other."""
    proc = PartitionProcessor(load_config(env={}))
    st = proc.state
    feed(proc, [event(0, "impression", "v", "a", "r0"), event(1, "impression", "v", "b", "r0")])
    feed(proc, [event(2, "impression", "u", "a", "r1"), event(3, "impression", "u", "c", "r1")])
    u, v = st.users.get("u"), st.users.get("v")
    items = np.array(sorted(st.items.get(i) for i in "abc"))
    now = st.max_ts_ms / 1000.0
    everyone = st.item_counters["impression"].get_many(items, now)[0]
    mine = st.others_impressions(u, items, now, 0)
    theirs = st.others_impressions(v, items, now, 0)
    a, b, c = everyone
    assert mine == pytest.approx([a - 1, b, 0.0], abs=1e-3) and mine[0] > 0  # v's impression of a stays
    assert theirs == pytest.approx([a - 1, 0.0, c], abs=1e-3)
    assert [st.others_impressions_one(u, int(i), now, 0) for i in items] == pytest.approx(mine)
    ranker = proc.exposure
    assert ranker.signals(u, items)["seen"] == pytest.approx([ranker.seen_one(u, int(i)) for i in items])


def test_a_snapshot_without_open_impression_times_still_loads():
    proc = PartitionProcessor(load_config(env={}))
    st = proc.state
    feed(proc, [event(0, "impression", "u", "a", "r1")])
    saved = st.exposure.to_state()
    saved["open"] = [[u, key, [e[:3] for e in events]] for u, key, events in saved["open"]]
    st.exposure.load_state(saved)
    u, a = st.users.get("u"), st.items.get("a")
    assert st.exposure.open_impressions(u) == [(a, -math.inf)]
    assert st.others_impressions_one(u, a, st.max_ts_ms / 1000.0, 0) == pytest.approx(1.0)


def test_without_request_ids_impressions_open_requests_and_clicks_join_them():
    """A click is logged after its slate, at a later timestamp: it must not close (count) the slate."""
    ev = ExposureEvidence()
    ev.add(0, 1, 0, event(0, "impression", "u", "a", None))
    ev.add(0, 2, 0, msgspec.structs.replace(event(0, "impression", "u", "b", None), event_id="x"))
    ev.add(0, 1, 0, event(5, "click", "u", "a", None))
    assert not ev.shown  # same timestamp and a click: one request, still open
    ev.add(0, 3, 0, event(9, "impression", "u", "c", None))
    assert set(ev.shown[0]) == {1, 2} and ev.user_category[0][0] == [1.0, 2.0]


def test_a_user_without_evidence_gets_neutral_signals(exposure_processor):
    ev, st = exposure_processor.state.exposure, exposure_processor.state
    stranger = len(st.users) + 10
    items = np.arange(st.n_items)
    signals = ev.signals(stranger, items, st.categories_of(items))
    assert all(np.abs(v).max() < 1e-12 for v in signals.values())


def test_a_log_of_clicks_alone_gives_no_exposure_signals():
    proc = PartitionProcessor(load_config(env={}))
    feed(proc, [event(n, "click", "u", f"i{n % 3}", None) for n in range(6)])
    st = proc.state
    signals = st.exposure.signals(0, np.arange(st.n_items), np.asarray(st.item_category))
    assert all(not v.any() for v in signals.values())
    assert not st.exposure.impressions


@pytest.fixture(scope="module")
def exposure_processor():
    proc = PartitionProcessor(load_config(env={}))
    feed(proc, list(exposure_events(ExposureConfig(seed=5, n_users=150, n_items=120, n_sessions=900))))
    return proc


def test_vectorised_signals_equal_the_one_item_signals(exposure_processor):
    st = exposure_processor.state
    items, categories = np.arange(st.n_items), np.asarray(st.item_category, dtype=np.int64)
    categories[:5] = categories.max() + 1  # a category nobody was shown yet: neutral in both
    checked = 0
    for user in list(st.exposure.shown)[:40]:
        vectorised = st.exposure.signals(user, items, categories)
        for i in items.tolist():
            one = st.exposure.signals_one(user, i, int(categories[i]))
            np.testing.assert_allclose(one, [vectorised[name][i] for name in SIGNALS], rtol=1e-12, atol=1e-12)
            checked += 1
    assert checked > 1000 and any(vectorised["category_lift"] != 0)


def test_the_evidence_round_trips_a_snapshot_exactly_with_requests_open(exposure_processor):
    ev = exposure_processor.state.exposure
    assert ev.open  # the last visits are still open
    again = ExposureEvidence(ev.max_items, ev.decay)
    again.load_state(msgspec.msgpack.decode(msgspec.msgpack.encode(ev.to_state())))
    assert again.to_state() == ev.to_state()
    assert again.open == ev.open


def test_each_user_keeps_at_most_max_items_the_most_recently_shown():
    ev = ExposureEvidence(max_items=3)
    for n, item in enumerate([1, 2, 3, 4, 1]):
        ev.add(0, item, 0, event(n, "impression", "u", str(item), f"r{n}"))
    ev.add(0, 9, 0, event(9, "impression", "u", "9", "last"))
    assert list(ev.shown[0]) == [3, 4, 1]


def test_decay_shrinks_a_users_counts_per_closed_request():
    ev = ExposureEvidence(decay=0.5)
    for n in range(3):
        ev.add(0, 1, 0, event(n, "impression", "u", "a", f"r{n}"))
    # Two requests closed: the first impression halved once, then one more added.
    assert ev.shown[0][1] == pytest.approx(1.5) and ev.user_impressions[0] == pytest.approx(1.5)
