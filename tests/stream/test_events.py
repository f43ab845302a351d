"""The event schema: strict, versioned, size-limited; every rejection names a reason."""

import msgspec
import pytest

from stream.events import REJECT_REASONS, Event, EventCodec, InvalidEvent

VALID = {
    "v": 1,
    "event_id": "e1",
    "ts": 1_767_225_600_000,
    "user_id": "u1",
    "item_id": "i1",
    "type": "click",
    "context": {"position": 2, "surface": "home"},
    "item": {"category": "drama", "tags": ["a"]},
    "user": {"age": "30"},
}


def enc(obj) -> bytes:
    return msgspec.json.encode(obj)


def test_valid_event_round_trips():
    codec = EventCodec()
    event = codec.decode(enc(VALID))
    assert event.item.category == "drama" and event.context.position == 2
    assert codec.decode(codec.encode(event)) == event


def test_optional_parts_may_be_absent():
    minimal = {k: VALID[k] for k in ("event_id", "ts", "user_id", "item_id", "type")}
    event = EventCodec().decode(enc(minimal))
    assert event.v == 1 and event.context is None


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"{not json", "malformed_json"),
        (b"\xff\xfe\x00", "malformed_json"),
        (None, "malformed_json"),
        (enc({**VALID, "type": "purchase"}), "schema"),
        (enc({**VALID, "ts": "yesterday"}), "schema"),
        (enc({**VALID, "ts": 1_700_000_000}), "schema"),  # seconds, not milliseconds
        (enc({**VALID, "user_id": ""}), "schema"),
        (enc({**VALID, "user_id": "u" * 129}), "schema"),
        (enc({**VALID, "extra": 1}), "schema"),
        (enc({k: v for k, v in VALID.items() if k != "item_id"}), "schema"),
        (enc({**VALID, "item": {"tags": ["t"] * 65}}), "schema"),
        (enc({**VALID, "context": {"position": {"deep": [[[]]]}}}), "schema"),
        (enc({**VALID, "v": 2}), "unsupported_version"),
        (enc({**VALID, "item": {"title": "x" * 9000}}), "oversized"),
    ],
)
def test_rejections_carry_a_known_reason(payload, reason):
    with pytest.raises(InvalidEvent) as err:
        EventCodec(max_bytes=8192).decode(payload)
    assert err.value.reason == reason
    assert reason in REJECT_REASONS
    assert err.value.detail


def test_schema_error_says_where():
    with pytest.raises(InvalidEvent, match=r"\$\.ts"):
        EventCodec().decode(enc({**VALID, "ts": "x"}))


def test_events_are_immutable():
    event = EventCodec().decode(enc(VALID))
    with pytest.raises(AttributeError):
        event.user_id = "other"
    assert isinstance(event, Event)
