"""Snapshots are atomic, checksummed, pickle-free, and fall back past a corrupt file."""

import pytest

from stream.snapshot import MAGIC, SnapshotStore


def test_latest_round_trips_state_and_offset(tmp_path):
    store = SnapshotStore(tmp_path)
    store.write("events", 0, 10, {"a": [1, 2], "b": b"\x00"})
    store.write("events", 0, 20, {"a": [3]})
    snap = store.latest("events", 0)
    assert snap.offset == 20 and snap.state == {"a": [3]}
    assert store.latest("events", 1) is None


def test_keeps_only_the_newest(tmp_path):
    store = SnapshotStore(tmp_path, keep=2)
    for offset in (1, 2, 3, 4):
        store.write("events", 3, offset, {})
    assert sorted(p.name for p in (tmp_path / "events" / "3").iterdir()) == [f"{3:020d}.snap", f"{4:020d}.snap"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "magic"])
def test_corrupt_newest_falls_back_to_previous(tmp_path, damage):
    store = SnapshotStore(tmp_path)
    store.write("events", 0, 5, {"ok": True})
    newest = store.write("events", 0, 9, {"ok": False})
    blob = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(blob[: len(blob) // 2])
    elif damage == "flip":
        newest.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    else:
        newest.write_bytes(b"PICKLE!!" + blob[len(MAGIC) :])
    snap = store.latest("events", 0)
    assert snap.offset == 5 and snap.state == {"ok": True}


def test_snapshot_of_another_partition_is_not_used(tmp_path):
    store = SnapshotStore(tmp_path)
    path = store.write("events", 1, 7, {})
    (tmp_path / "events" / "2").mkdir()
    path.rename(tmp_path / "events" / "2" / path.name)
    assert store.latest("events", 2) is None


def test_no_temporary_files_are_left(tmp_path):
    SnapshotStore(tmp_path).write("events", 0, 1, {"x": 1})
    assert [p.name for p in (tmp_path / "events" / "0").iterdir()] == [f"{1:020d}.snap"]
