"""The training log holds each applied event once, survives replays, and honours retention."""

from stream.events import EventCodec
from stream.training_log import TrainingLog, read_events, read_training_log


def test_segments_are_read_back_in_order(tmp_path, small_stream):
    log = TrainingLog(tmp_path, "events", retention_s=1e9)
    for n, event in enumerate(small_stream[:100]):
        log.append(n % 2, n, event, EventCodec.encode(event))
    log.flush(0, 100)
    log.flush(1, 100)
    table = read_training_log(tmp_path, "events")
    assert table.num_rows == 100
    expected = sorted(enumerate(small_stream[:100]), key=lambda ne: (ne[1].ts, ne[0] % 2, ne[0]))
    assert read_events(tmp_path, "events") == [e for _, e in expected]


def test_discard_from_removes_what_will_be_replayed(tmp_path, small_stream):
    log = TrainingLog(tmp_path, "events", retention_s=1e9)
    for n, event in enumerate(small_stream[:30]):
        log.append(0, n, event, EventCodec.encode(event))
        if n in (9, 19):
            log.flush(0, n + 1)
    log.discard_from(0, 10)  # snapshot says offset 10: segment [10, 20) and the buffer go
    assert read_training_log(tmp_path, "events").column("offset").to_pylist() == list(range(10))
    assert log.flush(0, 30) is None


def test_retention_is_by_stream_time(tmp_path, small_stream):
    log = TrainingLog(tmp_path, "events", retention_s=1.0)
    old, new = small_stream[0], small_stream[-1]
    log.append(0, 0, old, EventCodec.encode(old))
    log.flush(0, 1)
    log.append(0, 1, new, EventCodec.encode(new))
    log.flush(0, 2)
    assert log.prune(0, new.ts) == 1
    assert read_training_log(tmp_path, "events").column("offset").to_pylist() == [1]


def test_a_failed_write_keeps_the_rows(tmp_path, small_stream, monkeypatch):
    import pyarrow.parquet as pq
    import pytest

    log = TrainingLog(tmp_path, "events", retention_s=1e9)
    for n, event in enumerate(small_stream[:5]):
        log.append(0, n, event, EventCodec.encode(event))

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(pq, "write_table", disk_full)
        with pytest.raises(OSError):
            log.flush(0, 5)
    assert log.flush(0, 5) is not None
    assert read_training_log(tmp_path, "events").num_rows == 5
