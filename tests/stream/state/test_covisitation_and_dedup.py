"""Co-visitation stays bounded; the de-duplication window remembers exactly the last N ids."""

from stream.state.covisitation import CoVisitation
from stream.state.dedup import DedupWindow


def test_covisitation_weights_by_distance_and_is_symmetric():
    cv = CoVisitation(max_neighbours=10, window=3)
    cv.add(9, [1, 2, 3, 4])  # newest first; 4 is outside the window
    assert cv.of(9) == {1: 1.0, 2: 0.5, 3: 1 / 3}
    assert cv.of(1) == {9: 1.0} and 4 not in cv.of(9)
    cv.add(9, [1])
    assert cv.of(9)[1] == cv.of(1)[9] == 2.0


def test_covisitation_prunes_to_strongest_neighbours():
    cv = CoVisitation(max_neighbours=3, window=1)
    for other in range(20):
        for _ in range(other):  # neighbour `other` co-occurs `other` times
            cv.add(100, [other])
    assert len(cv.of(100)) <= 6
    assert {17, 18, 19} <= set(cv.of(100))
    assert CoVisitation.from_state(cv.to_state()).to_state() == cv.to_state()


def test_dedup_window_is_bounded_and_forgets_the_oldest():
    w = DedupWindow(capacity=3)
    assert [w.seen_before(i) for i in "abcab"] == [False, False, False, True, True]
    w.seen_before("d")  # evicts "a"
    assert len(w) == 3 and not w.seen_before("a")
    back = DedupWindow.from_state(w.to_state())
    assert back.seen_before("d") and back.to_state() == w.to_state()
