"""The training log: every applied event, as Parquet segments that offline training reads.

Segments are ``<dir>/<topic>/p<partition>/<first offset>-<end offset>.parquet`` and are written
just before the snapshot at ``end offset`` (worker.py gives the order), so the log holds each applied
event exactly once: on restore, segments starting at or after the snapshot offset are removed
because the events in them will be applied (and logged) again. Retention is by stream time: a
segment whose newest event is older than ``retention_s`` before the newest event seen is deleted.
Training reads closed segments only (``read_training_log``); the stream never waits for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from stream.events import Event

SCHEMA = pa.schema([
    ("offset", pa.int64()), ("event_id", pa.string()), ("ts", pa.int64()), ("user_id", pa.string()),
    ("item_id", pa.string()), ("type", pa.string()), ("position", pa.int32()), ("surface", pa.string()),
    ("item_category", pa.string()), ("item_tags", pa.list_(pa.string())), ("user_attrs", pa.string()),
])


class TrainingLog:
    def __init__(self, root: str | os.PathLike[str], topic: str, retention_s: float) -> None:
        self.root = Path(root) / topic
        self.retention_ms = int(retention_s * 1000)
        self._rows: dict[int, list[tuple[int, Event]]] = {}

    def _dir(self, partition: int) -> Path:
        return self.root / f"p{partition}"

    def append(self, partition: int, offset: int, event: Event) -> None:
        self._rows.setdefault(partition, []).append((offset, event))

    def flush(self, partition: int, end_offset: int) -> Path | None:
        """Write buffered rows of ``partition`` as one segment ending at ``end_offset`` (exclusive)."""
        rows = self._rows.pop(partition, [])
        if not rows:
            return None
        table = pa.table({
            "offset": [o for o, _ in rows], "event_id": [e.event_id for _, e in rows],
            "ts": [e.ts for _, e in rows], "user_id": [e.user_id for _, e in rows],
            "item_id": [e.item_id for _, e in rows], "type": [e.type for _, e in rows],
            "position": [e.context.position if e.context else None for _, e in rows],
            "surface": [e.context.surface if e.context else None for _, e in rows],
            "item_category": [e.item.category if e.item else None for _, e in rows],
            "item_tags": [e.item.tags if e.item else [] for _, e in rows],
            "user_attrs": [msgspec.json.encode(e.user).decode() if e.user else None for _, e in rows],
        }, schema=SCHEMA)
        folder = self._dir(partition)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{rows[0][0]:020d}-{end_offset:020d}.parquet"
        tmp = folder / f".{final.name}.tmp"
        pq.write_table(table, tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return final

    def discard_from(self, partition: int, offset: int) -> None:
        """Forget what will be replayed: buffered rows and segments starting at or after ``offset``."""
        self._rows.pop(partition, None)
        for seg in self._dir(partition).glob("*.parquet"):
            if int(seg.name.split("-")[0]) >= offset:
                seg.unlink()

    def prune(self, partition: int, newest_ts_ms: int) -> int:
        """Delete segments entirely older than the retention window; returns how many."""
        removed = 0
        horizon = newest_ts_ms - self.retention_ms
        for seg in sorted(self._dir(partition).glob("*.parquet")):
            meta = pq.read_metadata(seg)
            stats = meta.row_group(0).column(SCHEMA.get_field_index("ts")).statistics
            if stats is not None and stats.has_min_max and stats.max < horizon:
                seg.unlink()
                removed += 1
        return removed


def read_training_log(root: str | os.PathLike[str], topic: str) -> pa.Table:
    """All closed segments of ``topic``, ordered by (partition, offset)."""
    segments = sorted((Path(root) / topic).glob("p*/*.parquet"))
    if not segments:
        return SCHEMA.empty_table()
    tables = []
    for seg in segments:
        t = pq.read_table(seg, schema=SCHEMA)
        tables.append(t.append_column("partition", pa.array([int(seg.parent.name[1:])] * len(t), pa.int32())))
    return pa.concat_tables(tables)
