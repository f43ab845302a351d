"""Dense ids: first sight assigns the next index, and copies are independent of the original."""

import copy

from stream.state.ids import IdIndex


def test_ids_are_dense_in_order_of_first_sight():
    index = IdIndex()
    assert [index.add(k) for k in ["a", "b", "a", "c"]] == [0, 1, 0, 2]
    assert index.keys == ["a", "b", "c"] and len(index) == 3
    assert index.get("b") == 1 and index.get("z") is None and len(index) == 3  # get never assigns
    assert IdIndex.from_state(index.to_state()) == index


def test_a_copy_assigns_its_own_ids():
    index = IdIndex()
    index.add("a")
    for twin in (copy.copy(index), copy.deepcopy(index)):
        assert twin.add("b") == 1 and twin.keys == ["a", "b"]
        assert index.keys == ["a"] and index.get("b") is None
