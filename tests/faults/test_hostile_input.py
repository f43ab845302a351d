"""Poison and hostile input, and duplicate and out-of-order delivery, against a real broker.

Hypothesis generates the messages: valid events (distinct ids, keyed by user) mixed with malformed
JSON, non-UTF-8 bytes, oversized payloads, wrongly-typed fields, unsupported versions, deeply nested
values, huge numbers, NaN/Infinity literals, empty values, odd keys and hostile headers. Every message
carries its expected outcome by construction: applied, counted as a duplicate, or dead-lettered with
one of a set of reasons (a set where the order of the decoder's checks decides). The fast property
tests check those expectations against the decoder alone; the broker tests produce everything in one
go, run one worker subprocess to idle exit, and account for every message:

* the worker exits 0 (no crash, no poison-pill loop);
* every valid event is in its partition's state and training log exactly once;
* every hostile message is in ``<events>.dlq`` exactly once: its original key, value and headers,
  then the reason (among the expected) and where it came from -- except that a message at the
  producer's size limit goes cut to a prefix, and one whose headers confluent-kafka cannot read
  (a key that is not UTF-8) goes without them, each noted in ``streamrec.dlq.truncated``;
* redeliveries are counted as duplicates, never applied twice.

Found by this fuzzer, each of which stopped the worker on the message after every restart: invalid
UTF-8 inside a JSON string (UnicodeDecodeError out of EventCodec.decode); a message at librdkafka's
message.max.bytes (its dead-letter copy raised MSG_SIZE_TOO_LARGE); a header key that is not UTF-8
(msg.headers() raised SystemError, or left the error pending).

Set STREAMREC_FUZZ_SEED to replay a failing run (the seed is in every assertion message).
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import confluent_kafka
import msgspec
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st

from stream.config import EventLimits
from stream.events import EVENT_TYPES, REJECT_REASONS, Event, EventCodec, InvalidEvent
from stream.kafka.clients import make_producer, produce_waiting
from stream.training_log import log_root, read_training_log
from tests.kafka_fixtures import final_states, read_topic

LIMITS = EventLimits()
MAX_BYTES = LIMITS.max_bytes
LATENESS_MS = LIMITS.allowed_lateness_ms
T0 = 1_700_000_000_000  # valid events: [T0, T0 + 1 h], so none is late relative to another
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
TS_MIN, TS_MAX = 631_152_000_000, 4_102_444_800_000  # stream.events.TimestampMs: [min, max)
# librdkafka refuses to produce a message over message.max.bytes (1,000,000 by default); 999,964
# value bytes was the largest the test's producer sent, without key or headers.
PRODUCER_LIMIT = 1_000_000
# Giants: still producible, but not once a dead letter's ~150+ bytes of headers are added.
GIANT_MIN, GIANT_MAX = 999_850, 999_920
DLQ_HEADERS = (
    "streamrec.dlq.reason",
    "streamrec.dlq.detail",
    "streamrec.source.topic",
    "streamrec.source.partition",
    "streamrec.source.offset",
)
TRUNCATED = "streamrec.dlq.truncated"
USERS = [f"u{n}" for n in range(40)]
ITEMS = [f"i{n}" for n in range(60)]
EVENT_FIELDS = set(Event.__struct_fields__)

SCHEMA = frozenset({"schema"})
VERSION = frozenset({"unsupported_version"})
MALFORMED = frozenset({"malformed_json"})
OVERSIZED = frozenset({"oversized"})
ANY_REJECT = frozenset(REJECT_REASONS) - {"late"}


# -- JSON with raw splices ----------------------------------------------------------------------


class Raw(bytes):
    """JSON text spliced in verbatim where a value goes (NaN, 10**5000, bad UTF-8, deep nesting)."""


_TOKEN = "raw-5f0c8e1d9b7a4c26"
STYLES = {
    "compact": lambda o: json.dumps(o, ensure_ascii=False, separators=(",", ":")),
    "ascii": lambda o: json.dumps(o),  # \uXXXX escapes, surrogate pairs for astral characters
    "pretty": lambda o: json.dumps(o, ensure_ascii=False, indent=2),
}


def to_json(obj: Any, style: str = "compact") -> bytes:
    raws: dict[str, bytes] = {}

    def sub(v: Any) -> Any:
        if isinstance(v, Raw):
            token = f"@@{_TOKEN}-{len(raws)}@@"
            raws[token] = bytes(v)
            return token
        if isinstance(v, dict):
            return {k: sub(x) for k, x in v.items()}
        if isinstance(v, list):
            return [sub(x) for x in v]
        return v

    out = STYLES[style](sub(obj)).encode()
    for token, raw in raws.items():
        out = out.replace(f'"{token}"'.encode(), raw)
    return out


def set_path(event: dict, path: tuple, value: Any) -> dict:
    """A copy of ``event`` with ``value`` at ``path`` (making the parent objects it needs)."""
    event = json.loads(json.dumps(event))  # deep copy; events hold no Raw
    node = event
    for name in path[:-1]:
        if not isinstance(node.get(name), dict):
            node[name] = {}
        node = node[name]
    node[path[-1]] = value
    return event


# -- strategies: valid events ---------------------------------------------------------------------


def _opt(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | s


contexts = st.fixed_dictionaries(
    {}, optional={"position": _opt(st.integers(0, 10_000)), "surface": _opt(st.text(max_size=64))}
)
item_attributes = st.fixed_dictionaries(
    {},
    optional={
        "category": _opt(st.text(max_size=128)),
        "tags": st.lists(st.text(max_size=64), max_size=6),
        "title": _opt(st.text(max_size=256)),
    },
)
user_attributes = st.dictionaries(st.text(max_size=64), st.text(max_size=256), max_size=4)
ids = st.text(min_size=1, max_size=128)
# Every field at its limit (ASCII: limits count characters), the whole within max_bytes.
at_limits = st.sampled_from(
    [
        {"event_id": "e" * 128, "user_id": "u" * 128, "item_id": "i" * 128},
        {"context": {"position": 10_000, "surface": "s" * 64}},
        {"context": {"position": 0, "surface": ""}},
        {"item": {"category": "c" * 128, "title": "t" * 256, "tags": ["g" * 64] * 64}},
        {"item": {"category": "", "title": "", "tags": [""] * 64}},
        {"user": {f"{n:02d}".ljust(64, "k"): "v" * 256 for n in range(18)}},
        {"user": {f"k{n}": "" for n in range(32)}},
        {"event_id": "\x00", "user_id": "\u2028", "item_id": "\U0001f600" * 128},
    ]
)


event_fields = st.fixed_dictionaries(
    {
        "event_id": ids,
        "ts": st.integers(T0, T0 + HOUR_MS),
        "user_id": st.sampled_from(USERS) | ids,
        "item_id": st.sampled_from(ITEMS) | ids,
        "type": st.sampled_from(EVENT_TYPES),
    },
    optional={"v": st.just(1), "context": _opt(contexts), "item": _opt(item_attributes), "user": _opt(user_attributes)},
)
orders = {n: st.permutations(range(n)) for n in range(5, len(EVENT_FIELDS) + 1)}


@st.composite
def valid_events(draw) -> dict:
    event = draw(event_fields)
    if draw(st.integers(0, 9)) == 0:
        event.update(draw(at_limits))
    items = list(event.items())
    return {items[n][0]: items[n][1] for n in draw(orders[len(items)])}  # field order is free


VALID = valid_events()


# -- strategies: hostile parts ---------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
)
json_values = st.recursive(
    json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=16
)
not_none = json_values.filter(lambda v: v is not None)
not_str = json_values.filter(lambda v: not isinstance(v, str))
not_dict = not_none.filter(lambda v: not isinstance(v, dict))
not_list = json_values.filter(lambda v: not isinstance(v, list))


def _is_int_in(v: Any, lo: int, hi: int) -> bool:
    return type(v) is int and lo <= v <= hi  # bool is an int in Python, never in the schema


def _too_long(n: int) -> st.SearchStrategy:
    return st.text(min_size=n + 1, max_size=n + 8)


def _unknown_key(known: set[str]) -> st.SearchStrategy:
    return st.text(max_size=12).filter(lambda k: k not in known)


unknown_event_field = _unknown_key(EVENT_FIELDS)
STRING_PATHS = [
    ("event_id",),
    ("user_id",),
    ("item_id",),
    ("type",),
    ("context", "surface"),
    ("item", "category"),
    ("item", "title"),
]
# Values each field rejects: wrong JSON types, out-of-range numbers, over-long strings, empties.
WRONG = {
    ("event_id",): not_str | st.just("") | _too_long(128),
    ("user_id",): not_str | st.just("") | _too_long(128),
    ("item_id",): not_str | st.just("") | _too_long(128),
    ("ts",): (
        json_values.filter(lambda v: not _is_int_in(v, TS_MIN, TS_MAX - 1))
        | st.integers(max_value=TS_MIN - 1)
        | st.integers(min_value=TS_MAX)
        | st.sampled_from([TS_MIN - 1, TS_MAX, 1_700_000_000, 1_700_000_000_000_000, float(T0)])
    ),
    ("type",): json_values.filter(lambda v: v not in EVENT_TYPES) | st.sampled_from(["", "Click", "purchase"]),
    ("context",): not_dict | st.dictionaries(_unknown_key({"position", "surface"}), json_values, min_size=1),
    ("context", "position"): (
        not_none.filter(lambda v: not _is_int_in(v, 0, 10_000)) | st.sampled_from([-1, 10_001, 3.0, True])
    ),
    ("context", "surface"): not_none.filter(lambda v: not isinstance(v, str)) | _too_long(64),
    ("item",): not_dict | st.dictionaries(_unknown_key({"category", "tags", "title"}), json_values, min_size=1),
    ("item", "category"): not_none.filter(lambda v: not isinstance(v, str)) | _too_long(128),
    ("item", "tags"): (
        not_list
        | st.lists(not_str, min_size=1, max_size=3)
        | st.lists(st.just("t"), min_size=65, max_size=70)
        | _too_long(64).map(lambda t: [t])
    ),
    ("item", "title"): not_none.filter(lambda v: not isinstance(v, str)) | _too_long(256),
    ("user",): (
        not_dict
        | st.dictionaries(st.text(max_size=8), not_str, min_size=1, max_size=3)
        | st.dictionaries(_too_long(64), st.just("x"), min_size=1, max_size=2)
        | st.dictionaries(st.text(max_size=6), st.just(""), min_size=33, max_size=36)
        | st.dictionaries(st.text(max_size=6), _too_long(256), min_size=1, max_size=1)
    ),
    ("v",): json_values.filter(lambda v: not (type(v) is int and v == 1)) | st.sampled_from([0, 2, 1.0, "1", True]),
}
NUMBER_PATHS = [("ts",), ("v",), ("context", "position")]
ALL_PATHS = list(WRONG)

# Invalid wherever it appears: a byte no UTF-8 sequence starts with (a lone continuation byte,
# C0/C1 overlong leads, F5..FF), then anything but the quote and backslash that would end or
# escape the string it is spliced into; or a known-bad sequence (a surrogate, past U+10FFFF, ...).
invalid_utf8 = st.sampled_from(
    [b"\xc0\x80", b"\xc3", b"\xe0\x80", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80"]
) | st.builds(
    lambda lead, tail: bytes([lead]) + tail.replace(b'"', b"q").replace(b"\\", b"b"),
    st.sampled_from([*range(0x80, 0xC2), *range(0xF5, 0x100)]),
    st.binary(max_size=7),
)


def _reason_at(path: tuple) -> frozenset:
    return VERSION if path == ("v",) else SCHEMA


def _repeat(lo: int, hi: int) -> st.SearchStrategy:
    """Big bytes, cheaply: a drawn pattern repeated to a drawn length."""
    return st.builds(
        lambda n, pattern: (pattern * (n // len(pattern) + 1))[:n],
        st.integers(lo, hi),
        st.binary(min_size=1, max_size=16),
    )


odd_keys = (
    st.none()
    | st.just(b"")
    | st.binary(max_size=32)
    | invalid_utf8
    | st.text(max_size=32).map(str.encode)
    | _repeat(1024, 16_384)
)
header_keys = st.text(max_size=24) | st.sampled_from([*DLQ_HEADERS, TRUNCATED, ""])
header_values = (
    st.none()
    | st.binary(max_size=48)
    | invalid_utf8
    | st.text(max_size=24).map(str.encode)
    | st.sampled_from([b"", b"\x00", b"reject", b"late"])
)


few_headers = st.lists(st.tuples(header_keys, header_values), max_size=5)
huge_headers = st.lists(st.tuples(header_keys, _repeat(1024, 16_384)), min_size=1, max_size=2)


@st.composite
def hostile_headers(draw) -> list | None:
    roll = draw(st.integers(0, 19))
    if roll < 10:
        return None
    if roll < 17:
        return draw(few_headers)
    if roll < 19:  # huge values
        return draw(huge_headers)
    n = draw(st.integers(100, 600))  # many headers
    return [(f"h{i}", b"x") for i in range(n)] + draw(few_headers)


HEADERS = hostile_headers()


# -- strategies: units (what to send), assembled into messages -------------------------------------


@dataclass
class Unit:
    kind: str  # "valid", "late", "dup" or a hostile category
    key: bytes | None = None
    headers: list | None = None
    value: bytes | None = None  # hostile: the payload as sent
    reasons: frozenset = frozenset()  # hostile: the acceptable dead-letter reasons
    event: dict | None = None  # valid / late: encoded at assembly (ids made distinct there)
    style: str = "compact"
    pick: int = 0  # dup: which earlier valid event is sent again; late: how old
    raw: bool = False  # headers with keys that are not UTF-8: sent through librdkafka itself


styles = st.sampled_from(sorted(STYLES))


garbage = st.binary(min_size=1, max_size=16).filter(lambda g: g[:1] not in b" \t\r\n")
arbitrary_bytes = st.binary(max_size=300) | st.text(max_size=300).map(str.encode)
SYNTAX = ["comma", "quotes", "comment", "colon", "python", "bom", "unclosed"]


@st.composite
def malformed_json(draw) -> tuple[bytes, frozenset]:
    good = to_json(draw(VALID), draw(styles))
    how = draw(st.sampled_from(["truncated", "trailing", "syntax", "random"]))
    if how == "truncated":  # the cut may end a number early: validation can come first
        return good[: draw(st.integers(0, len(good) - 1))], MALFORMED | SCHEMA
    if how == "trailing":
        return good + draw(garbage), MALFORMED
    if how == "syntax":
        variant = draw(st.sampled_from(SYNTAX))
        return {
            "comma": good.rstrip()[:-1] + b",}",
            "quotes": good.replace(b'"', b"'"),
            "comment": b"/* x */" + good,
            "colon": good.replace(b'":', b'" ', 1),
            "python": repr(json.loads(good)).encode(),
            "bom": b"\xef\xbb\xbf" + good,
            "unclosed": good.rstrip()[:-1],
        }[variant], MALFORMED
    return draw(arbitrary_bytes), ANY_REJECT  # arbitrary bytes: usually malformed, sometimes JSON of the wrong shape


@st.composite
def non_utf8(draw) -> tuple[bytes, frozenset]:
    event = draw(VALID)
    bad = draw(invalid_utf8)
    how = draw(st.sampled_from(["value", "tag", "attribute", "key", "front", "utf16", "utf32", "latin1"]))
    if how in ("value", "tag", "attribute"):
        # A quote would end the string early, and the bytes would no longer be inside it.
        inside = st.text(st.characters(codec="utf-8", exclude_characters='"\\'), max_size=8)
        text = Raw(b'"' + draw(inside).encode() + bad + draw(inside).encode() + b'"')
        if how == "value":
            event = set_path(event, draw(st.sampled_from(STRING_PATHS)), text)
        elif how == "tag":
            event = set_path(event, ("item", "tags"), [text])
        else:
            event = set_path(event, ("user", "attr"), text)
        return to_json(event, draw(styles)), MALFORMED
    good = to_json(event, draw(styles))
    if how == "key":  # a field name: decoded before it is matched
        return good.replace(b'"type"', b'"ty' + bad + b'pe"', 1), MALFORMED | SCHEMA
    if how == "front":
        return bad + good, MALFORMED
    text = json.dumps({**event, "event_id": "caf\u00e9-" + event["event_id"]}, ensure_ascii=False)
    codec = {
        "utf16": draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be"])),
        "utf32": draw(st.sampled_from(["utf-32", "utf-32-le", "utf-32-be"])),
        "latin1": "latin-1",
    }[how]
    return text.encode(codec, errors="replace"), MALFORMED


@st.composite
def oversized(draw) -> tuple[bytes, frozenset]:
    good = to_json(draw(VALID), draw(styles))
    n = draw(st.integers(MAX_BYTES + 1, 4 * MAX_BYTES))
    how = draw(st.sampled_from(["padded", "field", "random", "deep"]))
    if how == "padded":  # a valid event, but too many bytes
        return good + b" " * max(0, n - len(good)), OVERSIZED
    if how == "field":
        return good.rstrip()[:-1] + b',"title":"' + b"x" * n + b'"}', OVERSIZED
    if how == "random":
        return draw(_repeat(n, n)), OVERSIZED
    return b"[" * n + b"]" * n, OVERSIZED


@st.composite
def wrong_type(draw) -> tuple[bytes, frozenset]:
    event = draw(VALID)
    how = draw(st.sampled_from(["field", "field", "field", "missing", "unknown", "shape"]))
    if how == "field":
        path = draw(st.sampled_from(ALL_PATHS))
        return to_json(set_path(event, path, draw(WRONG[path])), draw(styles)), _reason_at(path)
    if how == "missing":
        required = draw(st.sampled_from(["event_id", "ts", "user_id", "item_id", "type"]))
        return to_json({k: v for k, v in event.items() if k != required}, draw(styles)), SCHEMA
    if how == "unknown":
        key = draw(unknown_event_field)
        return to_json(set_path(event, (key,), draw(json_values)), draw(styles)), SCHEMA
    top = draw(not_dict | st.just({}) | st.dictionaries(st.text(max_size=6), json_values, max_size=3))
    reasons = VERSION | SCHEMA if isinstance(top, dict) and "v" in top else SCHEMA
    return to_json(top, draw(styles)), reasons


@st.composite
def bad_version(draw) -> tuple[bytes, frozenset]:
    event = set_path(draw(VALID), ("v",), draw(WRONG[("v",)]))
    return to_json(event, draw(styles)), VERSION


nested_lists = st.recursive(json_scalars, lambda c: st.lists(c, min_size=1, max_size=2), max_leaves=64).filter(
    lambda v: isinstance(v, list)
)


@st.composite
def deep(draw) -> tuple[bytes, frozenset]:
    depth = draw(st.integers(2, 3_000))
    kind = draw(st.sampled_from(["list", "object", "mixed", "unclosed"]))
    nested = Raw(
        {
            "list": b"[" * depth + b"]" * depth,
            "object": b'{"a":' * depth + b"1" + b"}" * depth,
            "mixed": b'[{"a":' * (depth // 2) + b"null" + b"}]" * (depth // 2),
            "unclosed": b"[" * depth,
        }[kind]
    )
    maybe_malformed = MALFORMED if kind == "unclosed" else frozenset()
    where = draw(st.sampled_from(["top", "field", "unknown", "attribute", "recursive"]))
    if where == "top":
        return bytes(nested), SCHEMA | maybe_malformed
    event = draw(VALID)
    if where == "field":
        path = draw(st.sampled_from(ALL_PATHS))
        return to_json(set_path(event, path, nested), draw(styles)), _reason_at(path) | maybe_malformed
    if where == "unknown":
        return to_json(set_path(event, (draw(unknown_event_field),), nested)), SCHEMA | maybe_malformed
    if where == "attribute":
        return to_json(set_path(event, ("user", "a"), nested)), SCHEMA | maybe_malformed
    value = draw(nested_lists)  # st.recursive's own nesting, at tags' place
    return to_json(set_path(event, ("item", "tags"), [value])), SCHEMA


@st.composite
def huge_number(draw) -> tuple[bytes, frozenset]:
    digits = draw(st.integers(19, 7_000))
    literal = draw(
        st.sampled_from(
            [
                b"1" + b"0" * digits,
                b"-9" + b"9" * digits,
                b"1" + b"0" * digits + b".5",
                b"1e" + str(digits).encode(),
                b"-1e" + str(digits).encode(),
                b"1" * digits + b"e-999",
            ]
        )
    )
    path = draw(st.sampled_from(NUMBER_PATHS + STRING_PATHS + [("user",), ("item", "tags")]))
    return to_json(set_path(draw(VALID), path, Raw(literal)), draw(styles)), _reason_at(path)


@st.composite
def nan_inf(draw) -> tuple[bytes, frozenset]:
    path = draw(st.sampled_from(ALL_PATHS))
    literal = draw(
        st.sampled_from(
            [
                b"NaN",
                b"Infinity",
                b"-Infinity",
                b"nan",
                b"inf",
                b"+1",
                b".5",
                b"undefined",
                b"True",
                b"None",
                b"'x'",
                b"01",
                b"1.",
                b"1e",
                b"00",
                b"--1",
                b"0x10",
                b"-",
            ]
        )
    )
    reasons = MALFORMED
    if literal[:1] in b"-0123456789":  # a number starts: the field's type check may come first
        reasons |= _reason_at(path)
    return to_json(set_path(draw(VALID), path, Raw(literal)), draw(styles)), reasons


@st.composite
def empty(draw) -> tuple[bytes | None, frozenset]:
    whole = [
        (None, MALFORMED),
        (b"", MALFORMED),
        (b" ", MALFORMED),
        (b"\r\n", MALFORMED),
        (b"{}", SCHEMA),
        (b"null", SCHEMA),
        (b"[]", SCHEMA),
        (b'""', SCHEMA),
        (b"0", SCHEMA),
        (b'{"v":null}', VERSION),
    ]
    roll = draw(st.integers(0, len(whole) + 4))
    if roll < len(whole):
        return whole[roll]
    path = draw(st.sampled_from([("event_id",), ("user_id",), ("item_id",), ("type",), ("ts",), ("v",)]))
    value = draw(st.sampled_from([None, "", [], {}]))
    return to_json(set_path(draw(VALID), path, value), draw(styles)), _reason_at(path)


HOSTILE = {
    "malformed_json": malformed_json(),
    "non_utf8": non_utf8(),
    "oversized": oversized(),
    "wrong_type": wrong_type(),
    "bad_version": bad_version(),
    "deep": deep(),
    "huge_number": huge_number(),
    "nan_inf": nan_inf(),
    "empty": empty(),
}
# About 40% valid events, 5% redeliveries, 5% late events, the rest hostile.
KINDS = ["valid"] * 8 + ["dup", "late"] + sorted(HOSTILE) * 1


@st.composite
def units(draw) -> Unit:
    kind = draw(st.sampled_from(KINDS))
    if kind == "valid":
        return Unit(kind, headers=draw(HEADERS), event=draw(VALID), style=draw(styles))
    if kind == "dup":
        return Unit(kind, pick=draw(st.integers(0, 10**6)))
    if kind == "late":
        return Unit(
            kind, headers=draw(HEADERS), event=draw(VALID), style=draw(styles), pick=draw(st.integers(1, 30 * DAY_MS))
        )
    value, reasons = draw(HOSTILE[kind])
    return Unit(kind, key=draw(odd_keys), headers=draw(HEADERS), value=value, reasons=reasons)


@st.composite
def giants(draw) -> Unit:
    """Messages at librdkafka's size limit: their dead-letter copy (plus our headers) is over it."""
    n = draw(st.integers(GIANT_MIN, GIANT_MAX))
    where = draw(st.sampled_from(["value", "key", "header"]))
    big = draw(_repeat(n, n))
    if where == "value":
        return Unit("giant_value", value=big, reasons=OVERSIZED)
    if where == "key":
        return Unit("giant_key", key=big, value=b"{not json", reasons=MALFORMED)
    return Unit("giant_header", key=b"k", headers=[("h", big)], value=b"[]", reasons=SCHEMA)


# Header keys that are not UTF-8 (any client but confluent-kafka's Python one can send them).
bad_header_keys = st.builds(
    lambda lead, tail: bytes([lead]) + tail.replace(b"\x00", b"0"),
    st.sampled_from([*range(0x80, 0xC2), *range(0xF5, 0x100)]),
    st.binary(max_size=12),
)
raw_headers = st.lists(
    st.tuples(
        bad_header_keys | st.text(min_size=1, max_size=8).map(str.encode).filter(lambda k: b"\x00" not in k),
        st.binary(max_size=32),
    ),
    max_size=3,
)


@st.composite
def raw_header_units(draw) -> Unit:
    headers = [(draw(bad_header_keys), draw(st.binary(max_size=32))), *draw(raw_headers)]
    headers = [headers[n] for n in draw(st.permutations(range(len(headers))))]
    kind = draw(st.sampled_from(["valid", "valid", *sorted(HOSTILE)]))
    if kind == "valid":
        return Unit(kind, headers=headers, event=draw(VALID), style=draw(styles), raw=True)
    value, reasons = draw(HOSTILE[kind])
    return Unit(kind, key=draw(odd_keys), headers=headers, value=value, reasons=reasons, raw=True)


@dataclass
class Message:
    kind: str
    key: bytes | None
    value: bytes | None
    headers: list | None
    expect: str  # "applied", "duplicate" or "dead"
    reasons: frozenset = frozenset()
    event_id: str | None = None
    raw: bool = False

    def describe(self) -> str:
        value = self.value if self.value is None or len(self.value) < 200 else self.value[:200] + b"..."
        return f"{self.kind} expect={self.expect} {sorted(self.reasons)} value={value!r}"


@dataclass
class Assembler:
    """Turns units into messages in order: distinct event ids, keys by user, dups and late events
    placed after the valid event they refer to (same key, so the same partition, later offset)."""

    messages: list[Message] = field(default_factory=list)
    used_ids: set[str] = field(default_factory=set)
    valid: list[Message] = field(default_factory=list)

    def _distinct(self, event_id: str) -> str:
        if event_id in self.used_ids:
            event_id = f"{event_id[:100]}#{len(self.used_ids)}"
        self.used_ids.add(event_id)
        return event_id

    def _valid(self, unit: Unit, event: dict) -> Message:
        event = {**event, "event_id": self._distinct(event["event_id"])}
        value = to_json(event, unit.style)
        if len(value) > MAX_BYTES:  # every field within its limit, the whole over the payload limit
            msg = Message(
                "valid_oversized", event["user_id"].encode(), value, unit.headers, "dead", OVERSIZED, raw=unit.raw
            )
        else:
            msg = Message(
                unit.kind,
                event["user_id"].encode(),
                value,
                unit.headers,
                "applied",
                event_id=event["event_id"],
                raw=unit.raw,
            )
            if not unit.raw:  # redeliveries and late events refer to these
                self.valid.append(msg)
        self.messages.append(msg)
        return msg

    def add(self, unit: Unit) -> None:
        if unit.kind == "valid":
            self._valid(unit, unit.event)
        elif unit.kind == "dup":
            if self.valid:
                orig = self.valid[unit.pick % len(self.valid)]
                self.messages.append(
                    Message("dup", orig.key, orig.value, orig.headers, "duplicate", event_id=orig.event_id)
                )
        elif unit.kind == "late":
            # After a valid event of the same user: its partition's newest timestamp is >= T0.
            if self.valid:
                user = json.loads(self.valid[-1].value)["user_id"]
            else:  # a small one, so it is valid
                anchor = {
                    "event_id": "anchor",
                    "ts": T0,
                    "user_id": unit.event["user_id"],
                    "item_id": "i0",
                    "type": "click",
                }
                user = self._valid(Unit("valid", style="compact"), anchor).key.decode()
            event = {
                **unit.event,
                "user_id": user,
                "ts": T0 - LATENESS_MS - unit.pick,
                "event_id": self._distinct(unit.event["event_id"]),
            }
            value = to_json(event, unit.style)
            reasons = OVERSIZED if len(value) > MAX_BYTES else frozenset({"late"})
            self.messages.append(Message("late", user.encode(), value, unit.headers, "dead", reasons))
        else:
            reasons = OVERSIZED if unit.value is not None and len(unit.value) > MAX_BYTES else unit.reasons
            self.messages.append(Message(unit.kind, unit.key, unit.value, unit.headers, "dead", reasons, raw=unit.raw))


def draw_many(strategy: st.SearchStrategy, examples: int, fuzz_seed: int) -> list:
    """Generate ``examples`` examples in-process (no shrinking: nothing fails here)."""
    out: list = []

    @seed(fuzz_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example) -> None:
        out.append(example)

    collect()
    return out


def fuzz_seed() -> int:
    return int(os.environ.get("STREAMREC_FUZZ_SEED") or random.SystemRandom().randrange(2**32))


# -- fast properties: the decoder alone ----------------------------------------------------------

codec = EventCodec(MAX_BYTES)


def check_decoding(msg: Message) -> None:
    try:
        event = codec.decode(msg.value)
    except InvalidEvent as exc:
        assert exc.reason in REJECT_REASONS
        assert msg.expect == "dead" and exc.reason in msg.reasons, (exc.reason, exc.detail, msg.describe())
        exc.detail.encode()  # goes into a header
        return
    # Lateness is the partition's call, not the decoder's.
    assert msg.expect != "dead" or msg.reasons == {"late"}, ("decoded", msg.describe())
    sent = json.loads(msg.value)
    assert event.event_id == sent["event_id"] and event.ts == sent["ts"] and event.user_id == sent["user_id"]
    assert event.item_id == sent["item_id"] and event.type == sent["type"]
    assert msgspec.json.decode(EventCodec.encode(event), type=Event) == event


@settings(max_examples=1_500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(units(), min_size=1, max_size=8))
def test_every_generated_message_decodes_to_its_expected_outcome(batch):
    assembler = Assembler()
    for unit in batch:
        assembler.add(unit)
    for msg in assembler.messages:
        check_decoding(msg)


@settings(max_examples=2_500, deadline=None)
# Regression: invalid UTF-8 inside a string raised UnicodeDecodeError out of decode(), killing the worker.
@example(b'{"v":1,"event_id":"\xff","ts":1700000000000,"user_id":"u","item_id":"i","type":"click"}')
@example(b'{"event_id":"e\xed\xa0\x80"}')
@given(
    st.none()
    | st.binary(max_size=2 * MAX_BYTES)
    | st.text().map(str.encode)
    | st.one_of(*HOSTILE.values()).map(lambda pair: pair[0])
    | json_values.map(lambda v: to_json(v))
    | st.builds(
        lambda a, b, c: a + b + c,
        st.binary(max_size=64),
        st.sampled_from([to_json({"v": 1, "event_id": "x"})]),
        st.binary(max_size=64),
    )
)
def test_decoding_raises_nothing_but_invalid_event(payload):
    try:
        codec.decode(payload)
    except InvalidEvent as exc:
        assert exc.reason in REJECT_REASONS
        exc.detail.encode()
    # Anything else (UnicodeDecodeError, RecursionError, ...) fails the test: it would stop a worker.


# -- against the broker ----------------------------------------------------------------------------


def produce_all(cfg, messages: list[Message]) -> list[tuple[int, int]]:
    """Produce in order with one producer; returns each message's (partition, offset)."""
    producer = make_producer(cfg.kafka)
    where: list[tuple[int, int] | None] = [None] * len(messages)
    errors: list[str] = []

    def delivered(n: int):
        def callback(err, msg) -> None:
            if err is not None:
                errors.append(f"{n}: {err}")
            else:
                where[n] = (msg.partition(), msg.offset())

        return callback

    for n, msg in enumerate(messages):
        if not msg.raw:
            produce_waiting(
                producer, cfg.kafka.events_topic, msg.value, key=msg.key, headers=msg.headers, on_delivery=delivered(n)
            )
    assert producer.flush(60) == 0
    assert not errors, errors[:5]
    produce_with_raw_header_keys(cfg, [(n, m) for n, m in enumerate(messages) if m.raw], where)
    assert all(w is not None for w in where)
    return where  # type: ignore[return-value]


# confluent-kafka's producer str()s a bytes header key (and cuts a str one at NUL, and crashes on
# a lone surrogate): keys that are not UTF-8 go through the librdkafka its wheel bundles, by ctypes.
class _RdKafkaMessage(ctypes.Structure):  # rd_kafka_message_t
    _fields_ = [
        ("err", ctypes.c_int),
        ("rkt", ctypes.c_void_p),
        ("partition", ctypes.c_int32),
        ("payload", ctypes.c_void_p),
        ("len", ctypes.c_size_t),
        ("key", ctypes.c_void_p),
        ("key_len", ctypes.c_size_t),
        ("offset", ctypes.c_int64),
        ("opaque", ctypes.c_void_p),
    ]


_DeliveryCallback = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(_RdKafkaMessage), ctypes.c_void_p)
# rd_kafka_vtype_t and flags, from rdkafka.h
VT_END, VT_TOPIC, VT_VALUE, VT_KEY, VT_OPAQUE, VT_MSGFLAGS, VT_HEADER = 0, 1, 4, 5, 6, 7, 9
MSG_F_COPY = 2


def librdkafka() -> ctypes.CDLL:
    libs = os.path.join(os.path.dirname(confluent_kafka.__file__), os.pardir, "confluent_kafka.libs")
    found = glob.glob(os.path.join(libs, "librdkafka*.so*")) or glob.glob(os.path.join(libs, "librdkafka*.dylib"))
    assert found, f"no librdkafka in {libs}: send header keys that are not UTF-8 some other way"
    lib = ctypes.CDLL(found[0])
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
    ]
    lib.rd_kafka_conf_set_dr_msg_cb.argtypes = [ctypes.c_void_p, _DeliveryCallback]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_flush.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
    return lib


def produce_with_raw_header_keys(cfg, messages: list[tuple[int, Message]], where: list) -> None:
    if not messages:
        return
    lib = librdkafka()
    conf, err = lib.rd_kafka_conf_new(), ctypes.create_string_buffer(512)
    for name, value in {"bootstrap.servers": cfg.kafka.bootstrap_servers, "partitioner": "murmur2_random"}.items():
        assert lib.rd_kafka_conf_set(conf, name.encode(), value.encode(), err, 512) == 0, err.value
    errors: list[int] = []

    @_DeliveryCallback
    def delivered(rk, message, opaque) -> None:
        m = message.contents
        if m.err:
            errors.append(m.err)
        else:
            where[m.opaque - 1] = (m.partition, m.offset)

    lib.rd_kafka_conf_set_dr_msg_cb(conf, delivered)
    rk = lib.rd_kafka_new(0, conf, err, 512)  # 0: a producer; it owns conf from here
    assert rk, err.value
    try:
        for n, msg in messages:
            args = [
                ctypes.c_int(VT_TOPIC),
                ctypes.c_char_p(cfg.kafka.events_topic.encode()),
                ctypes.c_int(VT_MSGFLAGS),
                ctypes.c_int(MSG_F_COPY),
                ctypes.c_int(VT_OPAQUE),
                ctypes.c_void_p(n + 1),
            ]
            if msg.value is not None:
                args += [ctypes.c_int(VT_VALUE), ctypes.c_char_p(msg.value), ctypes.c_size_t(len(msg.value))]
            if msg.key is not None:
                args += [ctypes.c_int(VT_KEY), ctypes.c_char_p(msg.key), ctypes.c_size_t(len(msg.key))]
            for key, value in msg.headers:
                args += [
                    ctypes.c_int(VT_HEADER),
                    ctypes.c_char_p(key),
                    ctypes.c_char_p(value),
                    ctypes.c_ssize_t(len(value)),
                ]
            assert lib.rd_kafka_producev(ctypes.c_void_p(rk), *args, ctypes.c_int(VT_END)) == 0
        assert lib.rd_kafka_flush(rk, 120_000) == 0  # returns once delivered
    finally:
        lib.rd_kafka_destroy(rk)
    assert not errors, errors[:5]


def run_worker(workers, cfg, context: str) -> float:
    started = time.monotonic()
    worker = workers(cfg, idle_exit=2)
    code = worker.wait_exit(600)  # returns once the worker is idle: a deadline for a slow machine
    assert code == 0, f"worker crashed (exit {code}) {context}:\n{worker.stderr_tail()}"
    return time.monotonic() - started


@dataclass
class Accounting:
    applied: Counter  # (partition, offset) -> times in the training log
    dead: dict  # (partition, offset) -> dead letters read for it
    duplicates: Counter  # partition -> counted by the partition's state
    late: Counter
    state_applied: int
    stored: dict  # (partition, offset) -> the message as the broker stored it


def account(cfg, messages: list[Message], where: list[tuple[int, int]]) -> Accounting:
    stored = {(m.partition(), m.offset()): m for m in read_topic(cfg, cfg.kafka.events_topic, len(messages))}
    assert len(stored) == len(messages), "the broker holds what was produced"
    n_dead = sum(m.expect == "dead" for m in messages)
    dead: dict = defaultdict(list)
    for m in read_topic(cfg, cfg.kafka.dlq_topic, n_dead):
        _, h, _ = split_dead_letter(m.headers())
        dead[(int(h["streamrec.source.partition"]), int(h["streamrec.source.offset"]))].append(m)
    log = read_training_log(log_root(cfg.worker.data_dir), cfg.kafka.events_topic)
    applied = Counter(zip(log.column("partition").to_pylist(), log.column("offset").to_pylist()))
    states = final_states(cfg)
    return Accounting(
        applied,
        dead,
        Counter({p: s.counts["duplicate"] for p, s in states.items()}),
        Counter({p: s.counts["late"] for p, s in states.items()}),
        sum(s.counts["applied"] for s in states.values()),
        stored,
    )


def split_dead_letter(headers: list) -> tuple[list, dict, list]:
    """A dead letter's headers -> (the original's, the five of the worker, its notes of what it cut)."""
    at = max(n for n, (k, _) in enumerate(headers) if k == "streamrec.dlq.reason")
    ours, notes = headers[at : at + 5], headers[at + 5 :]
    assert tuple(k for k, _ in ours) == DLQ_HEADERS, headers[at:]
    assert all(k == TRUNCATED and v for k, v in notes), notes
    return headers[:at], dict(ours), [v for _, v in notes]


def check_dead_letter(cfg, letter, original, msg: Message) -> tuple[str, bool]:
    """The dead letter of ``original`` (as stored): its bytes, then reason and origin.
    -> (reason, whether the copy was cut to fit the producer's size limit)"""
    theirs, ours, notes = split_dead_letter(letter.headers())
    reason = ours["streamrec.dlq.reason"].decode()
    assert reason in msg.reasons, (reason, ours["streamrec.dlq.detail"], msg.describe())
    assert ours["streamrec.dlq.detail"]
    assert ours["streamrec.source.topic"].decode() == cfg.kafka.events_topic
    cut = any(note.startswith(b"value=") for note in notes)
    # Only a copy over the producer's size limit is cut (giants always are), to a prefix.
    assert cut == msg.kind.startswith("giant"), (notes, msg.describe())
    # Headers confluent-kafka cannot read (a key not UTF-8) are left out, and said to be.
    assert (b"headers=unreadable" in notes) == msg.raw, (notes, msg.describe())
    if msg.raw or cut:
        assert theirs == [], theirs
    else:
        assert theirs == (original.headers() or []), msg.describe()
    if not cut:
        assert letter.value() == original.value() and letter.key() == original.key(), msg.describe()
        return reason, False
    size = sum(len(x or b"") for x in (original.value(), original.key()))
    size += sum(len(k) + len(v or b"") for k, v in original.headers() or [])
    assert size > PRODUCER_LIMIT - 4096, ("cut a small dead letter", msg.describe())
    assert (original.value() or b"").startswith(letter.value() or b"")
    assert (original.key() or b"").startswith(letter.key() or b"")
    return reason, True


def tally(cfg, messages: list[Message], where: list[tuple[int, int]], acc: Accounting, context: str) -> dict:
    """Per message: applied once / dead-lettered once / counted as a duplicate, or lost."""
    out = Counter()
    wrong: list[str] = []
    dup_expected = Counter(where[n][0] for n, m in enumerate(messages) if m.expect == "duplicate")
    late_expected = Counter(where[n][0] for n, m in enumerate(messages) if m.expect == "dead" and m.reasons == {"late"})
    reasons = Counter()
    for n, msg in enumerate(messages):
        pos = where[n]
        times_applied, letters = acc.applied.get(pos, 0), acc.dead.get(pos, [])
        if msg.expect == "applied":
            ok = times_applied == 1 and not letters
        elif msg.expect == "duplicate":
            ok = times_applied == 0 and not letters
        else:
            ok = times_applied == 0 and len(letters) == 1
            if letters:
                reason, cut = check_dead_letter(cfg, letters[0], acc.stored[pos], msg)
                reasons[reason] += 1
                out["truncated"] += cut
        out["reflected"] += times_applied > 0 or bool(letters) or msg.expect == "duplicate"
        out["duplicates"] += max(0, times_applied - 1) + max(0, len(letters) - 1)
        out["lost"] += times_applied == 0 and not letters and msg.expect != "duplicate"
        if not ok:
            wrong.append(f"{pos} applied {times_applied}x, dead-lettered {len(letters)}x: {msg.describe()}")
    assert not wrong, f"{len(wrong)} messages mishandled {context}:\n" + "\n".join(wrong[:20])
    # Redeliveries: counted by the state of their partition, as many as were sent.
    assert acc.duplicates == dup_expected, (acc.duplicates, dup_expected, context)
    assert acc.late == late_expected, (acc.late, late_expected, context)
    assert acc.state_applied == sum(m.expect == "applied" for m in messages) == sum(acc.applied.values())
    assert sum(len(v) for v in acc.dead.values()) == sum(m.expect == "dead" for m in messages)
    out["reasons"] = reasons
    return out


# Hypothesis draws at most ~8k choices per example, so messages come in examples of 25..45 units.
FUZZ_MESSAGES = 10_200


def test_fuzzed_hostile_input_never_crashes_a_worker_nor_loses_a_valid_event(kafka_cfg, workers, fault_row):
    cfg = kafka_cfg
    s = fuzz_seed()
    context = f"(STREAMREC_FUZZ_SEED={s})"
    started = time.monotonic()
    assembler = Assembler()
    rounds = 0
    while len(assembler.messages) < FUZZ_MESSAGES:  # ~1 ms per message
        for batch in draw_many(st.lists(units(), min_size=25, max_size=45), 50, s + rounds):
            for unit in batch:
                assembler.add(unit)
        rounds += 1
    for unit in draw_many(giants(), 3, s) + draw_many(raw_header_units(), 40, s):
        assembler.add(unit)
    messages = assembler.messages
    generated_s = time.monotonic() - started
    assert len(messages) >= 10_000, f"only {len(messages)} messages generated {context}"

    where = produce_all(cfg, messages)
    worker_s = run_worker(workers, cfg, context)
    acc = account(cfg, messages, where)
    figures = tally(cfg, messages, where, acc, context)

    kinds = Counter(m.kind for m in messages)
    raw = Counter(m.expect for m in messages if m.raw)
    print(
        f"\nfuzz {context}: {len(messages):,} messages {dict(sorted(kinds.items()))}, of which header keys "
        f"not UTF-8: {dict(raw)}; dead-letter reasons {dict(figures['reasons'])} ({figures['truncated']} cut "
        f"to fit); generated in {generated_s:.1f}s, worker {worker_s:.1f}s"
    )
    row = fault_row(
        "poison and hostile events (fuzzed)",
        "no crash; each bad message dead-lettered with its reason; valid applied once",
        events_in=len(messages),
        reflected=figures["reflected"],
        duplicates=figures["duplicates"],
        lost=figures["lost"],
    )
    assert row.held, (row, context)
    assert sum(m.expect == "applied" for m in messages) > 3_000 and sum(m.expect == "dead" for m in messages) > 3_000
    assert raw["dead"] and raw["applied"] and figures["truncated"] == 3, "the edge cases were exercised"


# -- duplicate and out-of-order delivery ------------------------------------------------------------


@st.composite
def reordered_segments(draw) -> list[tuple]:
    """One segment of users' events in any order within the allowed lateness, with late events
    (older than it) after their user's newest event and redeliveries after their original.

    Items: ("event", user, n, ts, item, type) | ("late", user, age) | ("dup", n)."""
    n_users = draw(st.integers(1, 4))
    events = []
    for user in range(n_users):
        # The newest event (T0 + lateness) and others back to exactly the lateness boundary (T0).
        offsets = [LATENESS_MS, 0, *draw(st.lists(st.integers(0, LATENESS_MS), max_size=12))]
        for off in offsets:
            events.append(
                ("event", user, len(events), T0 + off, draw(st.sampled_from(ITEMS)), draw(st.sampled_from(EVENT_TYPES)))
            )
    stream = list(draw(st.permutations(events)))
    newest = {e[1]: e for e in events if e[3] == T0 + LATENESS_MS}
    ages = st.just(1) | st.integers(1, 30 * DAY_MS)  # 1: just past the boundary
    for user, age in draw(st.lists(st.tuples(st.integers(0, n_users - 1), ages), max_size=4)):
        after = stream.index(newest[user])
        stream.insert(draw(st.integers(after + 1, len(stream))), ("late", user, age))
    for n in draw(st.lists(st.integers(0, len(events) - 1), max_size=6)):
        after = stream.index(events[n])
        stream.insert(draw(st.integers(after + 1, len(stream))), ("dup", n))
    if draw(st.booleans()):  # a replayed stretch, as after a producer's retry from an old position
        start = draw(st.integers(0, len(stream) - 1))
        stream += stream[start : start + draw(st.integers(1, 20))]
    return stream


def test_out_of_order_within_lateness_applied_older_dead_lettered_redeliveries_counted_once(
    kafka_cfg, workers, fault_row
):
    cfg = kafka_cfg
    s = fuzz_seed()
    context = f"(STREAMREC_FUZZ_SEED={s})"
    messages: list[Message] = []
    applied_ids: set[str] = set()
    for segment, stream in enumerate(draw_many(reordered_segments(), 40, s)):
        sent: dict[int, Message] = {}
        for item in stream:
            if item[0] == "event":
                _, user, n, ts, item_id, kind = item
                event = {
                    "event_id": f"s{segment}-e{n}",
                    "ts": ts,
                    "user_id": f"s{segment}-u{user}",
                    "item_id": item_id,
                    "type": kind,
                }
                msg = sent[n] = Message(
                    "in_window", event["user_id"].encode(), to_json(event), None, "applied", event_id=event["event_id"]
                )
                if msg.event_id in applied_ids:  # replayed
                    msg = Message("redelivered", msg.key, msg.value, None, "duplicate", event_id=msg.event_id)
                applied_ids.add(msg.event_id)
            elif item[0] == "late":
                _, user, age = item
                event = {
                    "event_id": f"s{segment}-late{len(messages)}",
                    "ts": T0 - age,
                    "user_id": f"s{segment}-u{user}",
                    "item_id": "i0",
                    "type": "click",
                }
                msg = Message("late", event["user_id"].encode(), to_json(event), None, "dead", frozenset({"late"}))
            else:
                orig = sent[item[1]]
                msg = Message("redelivered", orig.key, orig.value, None, "duplicate", event_id=orig.event_id)
            messages.append(msg)

    where = produce_all(cfg, messages)
    run_worker(workers, cfg, context)
    acc = account(cfg, messages, where)
    figures = tally(cfg, messages, where, acc, context)

    kinds = Counter(m.kind for m in messages)
    print(f"\nreordered {context}: {len(messages):,} messages {dict(sorted(kinds.items()))}")
    row = fault_row(
        "duplicate and out-of-order delivery",
        "within lateness applied once; older dead-lettered late; redeliveries counted once",
        events_in=len(messages),
        reflected=figures["reflected"],
        duplicates=figures["duplicates"],
        lost=figures["lost"],
    )
    assert row.held, (row, context)
    assert kinds["late"] and kinds["redelivered"], "the scenario exercised both"
    stamps = {(m.kind, json.loads(m.value)["ts"]) for m in messages}
    assert ("in_window", T0) in stamps and ("late", T0 - 1) in stamps, "both sides of the lateness boundary"
