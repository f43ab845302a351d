"""Forward-decay counters equal the closed form sum of 2^(-(t - t_k)/half_life)."""

import numpy as np
import pytest

from stream.state.counters import DecayedCounters


def closed_form(times, now, half_life):
    return sum(2 ** (-(now - t) / half_life) for t in times)


def test_matches_closed_form_for_each_half_life():
    c = DecayedCounters([10.0, 100.0])
    times = [0.0, 5.0, 7.5, 40.0]
    for t in times:
        c.add(3, t)
    got = c.get_many(np.array([3]), 50.0)[:, 0]
    assert got == pytest.approx([closed_form(times, 50.0, 10.0), closed_form(times, 50.0, 100.0)], rel=1e-12)
    assert c.get_one(3, 50.0, 1) == pytest.approx(got[1])


def test_rebase_after_long_gaps_keeps_values():
    c = DecayedCounters([1.0])
    c.add(0, 0.0)
    c.add(0, 500.0)  # exponent 500*ln2 > rebase threshold
    c.add(1, 1000.0)
    assert c.get_one(0, 1000.0, 0) == pytest.approx(closed_form([0.0, 500.0], 1000.0, 1.0), rel=1e-12)
    assert c.get_one(1, 1000.0, 0) == pytest.approx(1.0)


def test_late_event_weighs_by_its_age_and_unknown_keys_are_zero():
    c = DecayedCounters([10.0])
    c.add(0, 100.0)
    c.add(0, 90.0)
    assert c.get_one(0, 100.0, 0) == pytest.approx(1.0 + 0.5)
    assert c.get_one(99, 100.0, 0) == 0.0
    assert c.get_many(np.array([99]), 100.0).tolist() == [[0.0]]


def test_snapshot_round_trip():
    c = DecayedCounters([10.0, 20.0])
    for k in range(100):
        c.add(k % 7, float(k))
    back = DecayedCounters.from_state(c.to_state())
    keys = np.arange(7)
    assert np.array_equal(back.get_many(keys, 200.0), c.get_many(keys, 200.0))


def test_one_half_life_read_equals_that_row_of_the_full_read():
    c = DecayedCounters([10.0, 100.0, 1000.0])
    assert c.get_row(np.array([0, 1]), 5.0, 0).tolist() == [0.0, 0.0]  # nothing counted yet
    for k in range(40):
        c.add(k % 9, float(k))
    inside, mixed = np.arange(9)[::-1], np.array([2, 99, 0, 9, 8])  # the second: keys never counted
    for keys in (inside, mixed, np.array([], dtype=np.int64)):
        full = c.get_many(keys, 60.0)
        for h in (0, 1, 2, -1):
            assert np.array_equal(c.get_row(keys, 60.0, h), full[h])
        one_by_one = [[c.get_one(k, 60.0, h) for k in keys[keys < 9]] for h in range(3)]
        assert np.array_equal(full[:, keys < 9], np.array(one_by_one).reshape(3, -1))
    assert not c.get_many(mixed, 60.0)[:, [1, 3]].any()
