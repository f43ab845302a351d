"""Replay a user's own event log (CSV or JSONL), its columns mapped onto the event schema.

``ColumnMap`` names the column holding each field (the CLI flag in brackets):

- user id, item id, time (``--user-col``, ``--item-col``, ``--time-col``): required in every row;
  time is a number of seconds or milliseconds since 1970 (``--time-unit``).
- type (``--type-col``): impression, click or conversion; unmapped or empty, a click.
- event id (``--id-col``): unmapped or empty, a stable hash of the file name, row, user, item and time.
- item category, tags and title (``--category-col``, ``--tags-col``, ``--title-col``): ``Event.item``.
  Tags are a string split on ``tags_sep`` (``--tags-sep``, default ``|``; blanks around and between
  separators are dropped) or, in JSONL, also a list of strings.
- user attributes (``--user-attr-cols a,b``): each column becomes one key of ``Event.user``, its
  value as text.
- display position, request id and propensity (``--position-col``, ``--request-col``,
  ``--propensity-col``): ``Event.context``; a conversion's value (``--value-col``): ``Event.value``.

An empty cell (CSV ``""``, JSON ``null`` or ``""``) in an optional column means the field is absent;
a mapped column missing from a row is an error naming the flag to fix. Every value is checked by
the event schema (``stream.events``, the single source of the bounds); a bad one stops the replay
with a one-line ``LogFormatError`` naming the file, the row (its line number in the file; a CSV's
header is line 1), the column and what the value must be. Nothing is dropped silently.

The whole file is read before the first event is replayed: events come in timestamp order, rows
with equal timestamps in file order.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi

from stream.events import Attributes, Event


class ColumnMap(msgspec.Struct, kw_only=True, frozen=True):
    """Which column of the log holds each event field; None (or empty user_attrs): no such column."""

    user: str = "user_id"
    item: str = "item_id"
    time: str = "ts"
    type: str | None = None  # absent: every row is a click
    event_id: str | None = None  # absent: a stable hash of the row
    time_unit: str = "ms"  # "s" or "ms"
    category: str | None = None
    tags: str | None = None
    tags_sep: str = "|"
    title: str | None = None
    user_attrs: tuple[str, ...] = ()
    position: str | None = None
    request_id: str | None = None
    propensity: str | None = None
    value: str | None = None


class LogFormatError(ValueError):
    """A log or column map the importer cannot use; the message is one line naming the fix."""


class _Field(NamedTuple):
    label: str
    flag: str
    path: str  # where it goes in Event, dotted


_FIELDS: dict[str, _Field] = {
    "user": _Field("user id", "--user-col", "user_id"),
    "item": _Field("item id", "--item-col", "item_id"),
    "time": _Field("time", "--time-col", "ts"),
    "type": _Field("type", "--type-col", "type"),
    "event_id": _Field("event id", "--id-col", "event_id"),
    "category": _Field("category", "--category-col", "item.category"),
    "tags": _Field("tags", "--tags-col", "item.tags"),
    "title": _Field("title", "--title-col", "item.title"),
    "user_attrs": _Field("user attribute", "--user-attr-cols", "user"),
    "position": _Field("position", "--position-col", "context.position"),
    "request_id": _Field("request id", "--request-col", "context.request_id"),
    "propensity": _Field("propensity", "--propensity-col", "context.propensity"),
    "value": _Field("value", "--value-col", "value"),
}
_REQUIRED = ("user", "item", "time")
_NUMERIC = ("position", "propensity", "value")
_BY_PATH = {f.path: name for name, f in _FIELDS.items()}
_PARTS = {name: tuple(f.path.split(".")) for name, f in _FIELDS.items()}
_ERROR_PATH = re.compile(r"`\$\.([\w.]+)")
Record = dict[str, Any]  # one row: JSON values, or a CSV row's text by column
_Mapped = tuple[tuple[str, str], ...]  # (ColumnMap field, column) for each column a row must have


def _jsonl_records(path: Path) -> Iterator[tuple[int, Record]]:
    with path.open("rb") as fh:
        for row, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = msgspec.json.decode(line)
            except (msgspec.DecodeError, UnicodeDecodeError) as exc:
                raise LogFormatError(f"{path}: row {row}: not JSON ({exc})") from None
            if not isinstance(rec, dict):
                raise LogFormatError(f"{path}: row {row}: not a JSON object; write one object per line")
            yield row, rec


def _csv_records(path: Path) -> Iterator[tuple[int, Record]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        try:
            for rec in reader:
                yield reader.line_num, rec
        except csv.Error as exc:
            raise LogFormatError(f"{path}: row {reader.line_num}: not CSV ({exc})") from None
        except UnicodeDecodeError as exc:
            raise LogFormatError(
                f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#x}: {exc.reason}); save the log as UTF-8"
            ) from None


def _records(path: Path) -> Iterator[tuple[int, Record]]:
    """Each record with its line number: what a message can point an editor at."""
    return _jsonl_records(path) if path.suffix in (".jsonl", ".ndjson") else _csv_records(path)


def logfile_events(path: str | Path, columns: ColumnMap | None = None) -> Iterator[Event]:
    """The log's events in timestamp order; reads the whole file first, since logs are rarely sorted."""
    path, columns = Path(path), columns or ColumnMap()
    _check_map(path, columns)
    mapped = tuple(_mapped(columns))
    events = [_event(path, row, n, rec, columns, mapped) for n, (row, rec) in enumerate(_records(path))]
    events.sort(key=lambda e: e.ts)
    yield from events


def _check_map(path: Path, columns: ColumnMap) -> None:
    """Refuse a map no row could satisfy before reading the file."""
    if not path.is_file():
        raise LogFormatError(f"{path} is not a readable file; check --path")
    if columns.time_unit not in ("s", "ms"):
        raise LogFormatError(f"time unit {columns.time_unit!r}: use 's' or 'ms'")
    if not columns.tags_sep:
        raise LogFormatError("the tag separator is empty; pass --tags-sep with one or more characters")
    if not _valid(dict.fromkeys(columns.user_attrs, ""), Attributes):
        raise LogFormatError(
            f"--user-attr-cols names {len(columns.user_attrs)} columns; use {_describe(_schema_type('user'))}"
        )


def _event(path: Path, row: int, n: int, rec: Record, columns: ColumnMap, mapped: _Mapped) -> Event:
    where = f"{path}: row {row}"
    cells = _cells(rec, mapped, where)
    moment, ts = _timestamp(cells["time"], columns, where)
    doc = _document(cells, columns, ts)
    doc.setdefault(
        "event_id",
        hashlib.blake2b(
            f"{path.name}:{n}:{doc['user_id']}:{doc['item_id']}:{moment}".encode(), digest_size=12
        ).hexdigest(),
    )
    try:
        return msgspec.convert(doc, Event, strict=False)
    except msgspec.ValidationError as exc:
        raise _bad_value(str(exc), cells, columns, where, ts) from None


def _mapped(columns: ColumnMap) -> Iterator[tuple[str, str]]:
    for field in _FIELDS:
        if field == "user_attrs":
            yield from ((field, column) for column in columns.user_attrs)
        elif (column := getattr(columns, field)) is not None:
            yield field, column


def _cells(rec: Record, mapped: _Mapped, where: str) -> dict[str, Any]:
    """Each mapped field's raw cell (user attributes: a dict by column); empty optional cells left out."""
    cells: dict[str, Any] = {}
    for field, column in mapped:
        if column not in rec:
            raise LogFormatError(
                f"{where}: no column {column!r} (the {_FIELDS[field].label}); "
                f"name the right one with {_FIELDS[field].flag}"
            )
        raw = rec[column]
        if field in _REQUIRED or raw not in (None, ""):
            if field == "user_attrs":
                cells.setdefault(field, {})[column] = raw
            else:
                cells[field] = raw
    return cells


def _timestamp(raw: Any, columns: ColumnMap, where: str) -> tuple[float, int]:
    """The cell as read (part of the event id's hash) and as epoch milliseconds."""
    try:
        moment = float(raw)
        return moment, int(moment * (1000 if columns.time_unit == "s" else 1))
    except (TypeError, ValueError, OverflowError):
        raise LogFormatError(
            f"{where}: time {_show(raw)} (column {columns.time!r}) must be a number "
            f"({columns.time_unit} since 1970; see --time-unit)"
        ) from None


def _document(cells: dict[str, Any], columns: ColumnMap, ts: int) -> dict[str, Any]:
    """The event as plain data, for msgspec.convert to check against the schema."""
    doc: dict[str, Any] = {"ts": ts, "type": "click"}
    for field, raw in cells.items():
        if field != "time":
            _put(doc, _PARTS[field], _coerce(field, raw, columns))
    return doc


def _put(doc: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    *parents, name = parts
    for parent in parents:
        doc = doc.setdefault(parent, {})
    doc[name] = value


def _coerce(field: str, raw: Any, columns: ColumnMap) -> Any:
    """Text fields as text (JSONL may hold numbers); numbers are left to the schema's lax parsing."""
    if field == "tags":
        return [t.strip() for t in raw.split(columns.tags_sep) if t.strip()] if isinstance(raw, str) else raw
    if field == "user_attrs":
        return {column: _text(value) for column, value in raw.items()}
    return raw if field in _NUMERIC else _text(raw)


def _text(raw: Any) -> Any:
    return str(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else raw


def _valid(obj: Any, schema: Any) -> bool:
    try:
        msgspec.convert(obj, schema, strict=False)
    except msgspec.ValidationError:
        return False
    return True


def _bad_value(message: str, cells: dict[str, Any], columns: ColumnMap, where: str, ts: int) -> LogFormatError:
    """Turn the schema's complaint about an event path into one about the user's column."""
    match = _ERROR_PATH.search(message)
    field = _BY_PATH.get(match.group(1)) if match else None
    if field is None:
        return LogFormatError(f"{where}: {message}")
    schema = _schema_type(_FIELDS[field].path)
    if field == "user_attrs":
        column, raw = _bad_attribute(cells[field])
        assert isinstance(schema, mi.DictType)  # user attributes are a dict of column -> text
        schema = schema.value_type
    else:
        column, raw = getattr(columns, field), cells.get(field)
    hint = f" ms (read as {ts} ms; check --time-unit)" if field == "time" else ""
    return LogFormatError(
        f"{where}: {_FIELDS[field].label} {_show(raw)} (column {column!r}) must be {_describe(schema)}{hint}"
    )


def _bad_attribute(attrs: dict[str, Any]) -> tuple[str, Any]:
    """The user-attribute column the schema refused (its error names no key)."""
    return next(((c, v) for c, v in attrs.items() if not _valid({c: _text(v)}, Attributes)), next(iter(attrs.items())))


def _show(raw: Any) -> str:
    text = "(missing)" if raw is None else repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def _schema_type(path: str) -> mi.Type:
    """The schema's type at a dotted Event path, optional-ness stripped."""
    schema = mi.type_info(Event)
    for name in path.split("."):
        struct = _required(schema)
        assert isinstance(struct, mi.StructType)  # each step of a path but its last is a Struct
        schema = next(f.type for f in struct.fields if f.name == name)
    return _required(schema)


def _required(schema: mi.Type) -> mi.Type:
    if isinstance(schema, mi.UnionType):
        return next(t for t in schema.types if not isinstance(t, mi.NoneType))
    return schema


def _describe(schema: mi.Type) -> str:
    """The schema's bounds in words, so messages cannot drift from what is checked."""
    if isinstance(schema, mi.IntType | mi.FloatType):
        kind = "an integer" if isinstance(schema, mi.IntType) else "a number"
        return f"{kind} in {_interval(schema)}"
    if isinstance(schema, mi.StrType):
        if schema.min_length:
            return f"text of {schema.min_length} to {schema.max_length} characters"
        return f"text of at most {schema.max_length} characters"
    if isinstance(schema, mi.LiteralType):
        return "one of " + ", ".join(map(repr, schema.values))
    if isinstance(schema, mi.ListType):
        return f"at most {schema.max_length} entries, each {_describe(schema.item_type)}"
    if isinstance(schema, mi.DictType):
        return f"at most {schema.max_length} columns, each name {_describe(schema.key_type)}"
    return f"a valid {schema}"


def _interval(schema: mi.IntType | mi.FloatType) -> str:
    low = f"[{_number(schema.ge)}" if schema.ge is not None else f"({_number(schema.gt, '-inf')}"
    high = f"{_number(schema.le)}]" if schema.le is not None else f"{_number(schema.lt, 'inf')})"
    return f"{low}, {high}"


def _number(bound: float | None, unbounded: str = "") -> str:
    return unbounded if bound is None else f"{bound:g}" if isinstance(bound, float) else str(bound)
