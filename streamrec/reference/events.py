"""The event schema page, read from ``stream.events.Event`` with ``msgspec.inspect``.

Types and bounds come from the Structs themselves, so the page cannot disagree with what the worker
decodes; what a field means is kept here, and a test fails when a field has no description.
"""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi

from stream.events import REJECT_REASONS, SCHEMA_VERSION, Event

DESCRIPTIONS = {
    "v": "Schema version. Any other value is dead-lettered as `unsupported_version`.",
    "event_id": "Unique id of the event: the de-duplication key (a repeat within `state.dedup_window` is dropped).",
    "ts": "When the event happened, in milliseconds since the epoch (seconds or microseconds are refused). "
    "Freshness is measured from it.",
    "user_id": "The user; also the Kafka message key, so one user's events stay in one partition, in order.",
    "item_id": "The item shown, clicked or converted on.",
    "type": "What happened: an item shown, clicked, or a conversion after a click.",
    "value": "A conversion's value (revenue), for value-weighted counterfactual estimates.",
    "context": "Where and how the item was shown.",
    "context.position": "Rank at which the item was shown (0 = top); a click model feature.",
    "context.surface": "The page or widget that showed it (free text, e.g. `home`); not used for ranking.",
    "context.request_id": "Groups the impressions shown together (one visit); without it, a user's impressions "
    "at one timestamp form the visit.",
    "context.propensity": "Probability that the logging policy showed this item in this visit; counterfactual "
    "estimates divide by it (0 would mean it could not have been shown).",
    "item": "Content of the item, learned by the content candidates and the offline models.",
    "item.category": "The item's category: the cold-start path ranks by it.",
    "item.tags": "Content tokens (genres, year, ...).",
    "item.title": "Display title; carried with the event, not used for ranking by any learner.",
    "user": "User attributes (e.g. `age`, `gender`) as strings: the offline models' demographics.",
}

EXAMPLE = b"""{"v": 1, "event_id": "e-1", "ts": 1700000000000, "user_id": "u1", "item_id": "i9", "type": "click",
 "context": {"position": 3, "surface": "home", "request_id": "r-77", "propensity": 0.25},
 "item": {"category": "drama", "tags": ["1995"], "title": "Heat"},
 "user": {"age": "24", "gender": "M"}}"""


def _bounds(t: Any) -> str:
    parts = []
    for attr, symbol in (("min_length", "length ≥"), ("max_length", "length ≤"), ("ge", "≥"), ("gt", ">")):
        parts += [f"{symbol} {getattr(t, attr):,}"] if getattr(t, attr, None) is not None else []
    for attr, symbol in (("le", "≤"), ("lt", "<")):
        parts += [f"{symbol} {getattr(t, attr):,}"] if getattr(t, attr, None) is not None else []
    return ", ".join(parts)


def describe_type(t: Any) -> tuple[str, str]:
    """(type name, bounds) of a msgspec type, dropping the ``| None`` of optional fields."""
    if isinstance(t, mi.UnionType):
        (t,) = [member for member in t.types if not isinstance(member, mi.NoneType)]
    if isinstance(t, mi.LiteralType):
        return "string" if isinstance(t.values[0], str) else "integer", "one of " + ", ".join(
            f"`{v}`" for v in sorted(t.values, key=str)
        )
    if isinstance(t, mi.ListType):
        item, item_bounds = describe_type(t.item_type)
        bounds = [b for b in (_bounds(t).replace("length", "items"), f"each {item_bounds}" if item_bounds else "") if b]
        return f"list of {item}", ", ".join(bounds)
    if isinstance(t, mi.DictType):
        key, key_bounds = describe_type(t.key_type)
        value, value_bounds = describe_type(t.value_type)
        bounds = [_bounds(t).replace("length", "entries"), f"keys {key_bounds}", f"values {value_bounds}"]
        return f"object of {key} to {value}", ", ".join(b for b in bounds if not b.endswith(" "))
    if isinstance(t, mi.StructType):
        return "object", "unknown fields refused" if t.forbid_unknown_fields else ""
    names: dict[type, str] = {
        mi.StrType: "string",
        mi.IntType: "integer",
        mi.FloatType: "number",
        mi.BoolType: "boolean",
    }
    return names[type(t)], _bounds(t)


def fields(struct: Any = None, prefix: str = "") -> list[tuple[str, Any, bool]]:
    """Every field of the schema as (dotted name, msgspec type, required), nested Structs included."""
    struct = struct or mi.type_info(Event)
    out: list[tuple[str, Any, bool]] = []
    for field in struct.fields:
        out.append((prefix + field.name, field.type, field.required))
        inner = field.type
        if isinstance(inner, mi.UnionType):
            inner = next((m for m in inner.types if isinstance(m, mi.StructType)), inner)
        if isinstance(inner, mi.StructType):
            out += fields(inner, f"{prefix}{field.name}.")
    return out


def render() -> str:
    """The event schema as Markdown: every field with its type, bounds and meaning."""
    rows = []
    for name, t, required in fields():
        type_name, bounds = describe_type(t)
        description = DESCRIPTIONS.get(name)
        if description is None:
            raise KeyError(f"event field {name!r} has no description: add it to DESCRIPTIONS in {__name__}")
        rows.append(f"| `{name}` | {type_name} | {'yes' if required else 'no'} | {bounds} | {description} |")
    msgspec.json.decode(EXAMPLE, type=Event)
    reasons = ", ".join(f"`{r}`" for r in REJECT_REASONS)
    return "\n".join(
        [
            f"# Event schema (version {SCHEMA_VERSION})",
            "",
            "Generated from `stream/events.py`. One JSON object per Kafka message on the events topic, keyed by "
            "`user_id`; the same body is what `POST /v1/events` takes.",
            "",
            "| field | type | required | bounds | meaning |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "Unknown fields are refused at every level, and the whole message may be at most `events.max_bytes` "
            "(8 KiB by default). A rejected message goes to `<events topic>.dlq` with its original key, value and "
            f"headers plus `streamrec.dlq.reason` (one of {reasons}), `streamrec.dlq.detail` (where it failed) and "
            "`streamrec.source.topic/partition/offset`. Events older than `events.allowed_lateness_ms` (24 h) "
            "behind the newest in their partition are dead-lettered as `late`; within it they are applied. "
            "The worker never stops on bad input.",
            "",
            "An example:",
            "",
            "```json",
            EXAMPLE.decode(),
            "```",
            "",
        ]
    )
