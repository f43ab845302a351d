"""offline.sequences: a log becomes each user's token sequence, training windows and prediction points.

The contract, as these tests read it: a token is an impression or a click (a conversion marks its
click, and only from the moment it was logged); a prediction point's history holds only tokens
logged before it, the most recent last; a training window's position j is taught the item of token
j + 1 when that token is a click, and nothing otherwise; every token is an input of one window.
"""

from __future__ import annotations

import numpy as np

from offline.samples import Catalogue
from offline.sequences import next_clicks, training_windows, user_sequences
from stream.sources.exposure import ExposureConfig, exposure_events
from stream.state.tokens import CLICK, CONVERTED, IMPRESSION, PAD
from tests.offline.test_samples import Log


def small_log() -> Log:
    log = Log()
    log.click(0, "u1", "a")
    log.conversion(0.5, "u1", "a")
    log.impression(1, "u1", "b")
    log.click(2, "u1", "c")
    log.click(3, "u2", "a")
    log.click(4, "u1", "d")
    log.conversion(5, "u1", "d")
    return log


def test_tokens_are_impressions_and_clicks_and_a_conversion_marks_its_click():
    catalogue = Catalogue()
    seqs = user_sequences(small_log().events, catalogue)
    u1 = seqs["u1"]
    assert [catalogue.items.keys[i - 1] for i in u1.items] == ["a", "b", "c", "d"]
    assert u1.kinds.tolist() == [CLICK, IMPRESSION, CLICK, CLICK]
    assert (u1.converted_at[[0, 3]] < np.iinfo(np.int64).max).all()
    assert u1.order.tolist() == sorted(u1.order.tolist())


def test_a_prediction_point_sees_only_what_was_logged_before_it():
    catalogue = Catalogue()
    seqs = user_sequences(small_log().events, catalogue)
    points = next_clicks(seqs, length=4, since=0)
    row = catalogue.items.index
    # u1's clicks on c and d are points (its first click, and u2's only one, have no history)
    assert sorted(points.user) == ["u1", "u1"]
    at_d = points.target.tolist().index(row["d"])
    assert points.item[at_d].tolist() == [row["a"], row["b"], row["c"], PAD]
    # a's conversion was logged before the click on d; d's own conversion is not in any history
    assert points.kind[at_d].tolist() == [CONVERTED, IMPRESSION, CLICK, PAD]


def test_a_conversion_logged_later_does_not_mark_an_earlier_history():
    log = Log()
    log.click(0, "u1", "a")
    log.click(1, "u1", "b")
    log.conversion(2, "u1", "a")
    log.click(3, "u1", "c")
    catalogue = Catalogue()
    points = next_clicks(user_sequences(log.events, catalogue), length=3, since=0)
    kinds = dict(zip(points.target.tolist(), points.kind.tolist()))
    assert kinds[catalogue.items.index["b"]] == [CLICK, PAD, PAD]
    assert kinds[catalogue.items.index["c"]] == [CONVERTED, CLICK, PAD]


def test_windows_teach_the_next_click_at_each_position_and_skip_those_without_one():
    catalogue = Catalogue()
    seqs = user_sequences(small_log().events, catalogue)
    w = training_windows(seqs.values(), length=2)
    row = catalogue.items.index
    inputs = sorted(int(i) for i in w.item[w.item > 0])
    # u1's tokens but its last, less the window (a) -> (b) that predicts no click; u2 has one token
    assert inputs == sorted([row["b"], row["c"]])
    pairs = {(int(i), int(t)) for i, t in zip(w.item.ravel(), w.target.ravel()) if i}
    assert pairs == {(row["b"], row["c"]), (row["c"], row["d"])}
    assert len(training_windows(seqs.values(), length=3).item) == 1  # (a, b, c) -> (b, c, d) keeps a
    converted = {int(t): bool(c) for t, c in zip(w.target.ravel(), w.converted.ravel()) if t}
    assert converted == {row["c"]: False, row["d"]: True}


def test_a_history_is_the_last_tokens_before_its_point_on_a_generated_log():
    events = list(exposure_events(ExposureConfig(seed=3, n_users=40, n_items=60, n_sessions=300)))
    seqs = user_sequences(events, Catalogue())
    points = next_clicks(seqs, length=8, since=len(events) // 2)
    assert len(points) > 20
    for user, at, history in zip(points.user, points.at, points.item):
        s = seqs[user]
        assert history[history > 0].tolist() == s.items[s.order < at][-8:].tolist()


def test_windows_up_to_a_position_are_those_of_the_log_cut_there():
    events = sorted(exposure_events(ExposureConfig(seed=3, n_users=40, n_items=60, n_sessions=300)), key=lambda e: e.ts)
    cut = len(events) // 2
    whole = training_windows(user_sequences(events, Catalogue()).values(), length=8, until=cut)
    part = training_windows(user_sequences(events[:cut], Catalogue()).values(), length=8)
    for name in ("item", "kind", "gap", "target", "converted"):
        assert np.array_equal(getattr(whole, name), getattr(part, name)), name
