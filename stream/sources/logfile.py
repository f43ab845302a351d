"""Replay a user's own click log (CSV or JSONL) with column-mapping, in timestamp order."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from pathlib import Path

import msgspec

from stream.events import EVENT_TYPES, Event


class ColumnMap(msgspec.Struct, kw_only=True, frozen=True):
    user: str = "user_id"
    item: str = "item_id"
    time: str = "ts"
    type: str | None = None  # absent: every row is a click
    event_id: str | None = None  # absent: a stable hash of the row
    time_unit: str = "ms"  # "s" or "ms"


class LogFormatError(ValueError):
    pass


def _records(path: Path) -> Iterator[dict]:
    if path.suffix in (".jsonl", ".ndjson"):
        with path.open("rb") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield msgspec.json.decode(line)
                    except msgspec.DecodeError as exc:
                        raise LogFormatError(f"{path}:{n}: not JSON ({exc})") from None
    else:
        with path.open(newline="") as fh:
            yield from csv.DictReader(fh)


def logfile_events(path: str | Path, columns: ColumnMap | None = None) -> Iterator[Event]:
    path, columns = Path(path), columns or ColumnMap()
    if not path.is_file():
        raise LogFormatError(f"{path} is not a readable file; check --path")
    if columns.time_unit not in ("s", "ms"):
        raise LogFormatError(f"time unit {columns.time_unit!r}: use 's' or 'ms'")
    scale = 1000 if columns.time_unit == "s" else 1
    rows = []
    for n, rec in enumerate(_records(path)):
        try:
            user, item, ts = str(rec[columns.user]), str(rec[columns.item]), float(rec[columns.time])
        except KeyError as exc:
            raise LogFormatError(f"{path}: row {n + 1} has no column {exc}; map it with --user-col/--item-col/--time-col") from None
        except ValueError:
            raise LogFormatError(f"{path}: row {n + 1}: time {rec[columns.time]!r} is not a number") from None
        etype = str(rec[columns.type]) if columns.type else "click"
        if etype not in EVENT_TYPES:
            raise LogFormatError(f"{path}: row {n + 1}: type {etype!r} is not one of {EVENT_TYPES}")
        eid = str(rec[columns.event_id]) if columns.event_id else hashlib.blake2b(
            f"{path.name}:{n}:{user}:{item}:{ts}".encode(), digest_size=12).hexdigest()
        rows.append((int(ts * scale), n, eid, user, item, etype))
    rows.sort(key=lambda r: (r[0], r[1]))
    for ts, _, eid, user, item, etype in rows:
        yield Event(event_id=eid, ts=ts, user_id=user, item_id=item, type=etype)
