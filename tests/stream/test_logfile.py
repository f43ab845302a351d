"""The log importer: every optional column reaches the Event, and every bad value is one line naming
the file, the row and the column, in CSV and JSONL alike."""

import csv
import json
from pathlib import Path

import pytest

from stream.events import Context, Event, ItemAttributes
from stream.sources.logfile import ColumnMap, LogFormatError, logfile_events
from streamrec.cli import main, parse
from streamrec.cli.options import SourceSpec

START = 1_767_225_600  # 2026-01-01, in seconds
BASE = {"user": "u", "item": "i", "time": "t", "time_unit": "s"}
FULL = ColumnMap(
    **BASE,
    type="kind",
    event_id="id",
    category="cat",
    tags="tg",
    title="name",
    user_attrs=("age", "gender"),
    position="pos",
    request_id="req",
    propensity="prop",
    value="rev",
)
FULL_FLAGS = [
    "--user-col",
    "u",
    "--item-col",
    "i",
    "--time-col",
    "t",
    "--time-unit",
    "s",
    "--type-col",
    "kind",
    "--id-col",
    "id",
    "--category-col",
    "cat",
    "--tags-col",
    "tg",
    "--title-col",
    "name",
    "--user-attr-cols",
    "age, gender",
    "--position-col",
    "pos",
    "--request-col",
    "req",
    "--propensity-col",
    "prop",
    "--value-col",
    "rev",
]
FULL_EVENT = Event(
    event_id="e-1",
    ts=(START + 1) * 1000,
    user_id="u1",
    item_id="i9",
    type="conversion",
    value=12.5,
    context=Context(position=3, request_id="r-77", propensity=0.25),
    item=ItemAttributes(category="drama", tags=["1995", "crime"], title="Heat"),
    user={"age": "24", "gender": "M"},
)
EMPTY_CSV = dict.fromkeys(["kind", "id", "cat", "tg", "name", "age", "gender", "pos", "req", "prop", "rev"], "")


def write_log(tmp_path: Path, fmt: str, rows: list[dict]) -> Path:
    path = tmp_path / f"log.{fmt}"
    if fmt == "csv":
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    else:
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def full_rows(fmt: str) -> list[dict]:
    """A row with every field, then an earlier one with every optional cell empty."""
    if fmt == "csv":
        full = {
            "u": "u1",
            "i": "i9",
            "t": START + 1,
            "kind": "conversion",
            "id": "e-1",
            "cat": "drama",
            "tg": "1995| crime",
            "name": "Heat",
            "age": "24",
            "gender": "M",
            "pos": "3",
            "req": "r-77",
            "prop": "0.25",
            "rev": "12.5",
        }
        return [full, {"u": "u2", "i": "i8", "t": START, **EMPTY_CSV}]
    full = {
        "u": "u1",
        "i": "i9",
        "t": START + 1,
        "kind": "conversion",
        "id": "e-1",
        "cat": "drama",
        "tg": ["1995", "crime"],
        "name": "Heat",
        "age": 24,
        "gender": "M",
        "pos": 3,
        "req": "r-77",
        "prop": 0.25,
        "rev": 12.5,
    }
    return [full, {"u": "u2", "i": "i8", "t": START, **dict.fromkeys(EMPTY_CSV, None), "cat": ""}]


def assert_bare(event: Event) -> None:
    assert (event.user_id, event.item_id, event.ts, event.type) == ("u2", "i8", START * 1000, "click")
    assert event.value is event.context is event.item is event.user is None
    assert len(event.event_id) == 24


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_every_column_reaches_the_event_and_empty_cells_are_absent(tmp_path, fmt):
    bare, full = logfile_events(write_log(tmp_path, fmt, full_rows(fmt)), FULL)
    assert full == FULL_EVENT
    assert_bare(bare)


def test_jsonl_tags_may_be_a_string_split_on_the_separator(tmp_path):
    path = write_log(tmp_path, "jsonl", [{"u": "a", "i": "b", "t": START, "tg": "x ; y;;"}])
    [event] = logfile_events(path, ColumnMap(**BASE, tags="tg", tags_sep=";"))
    assert event.item.tags == ["x", "y"]


def test_jsonl_numbers_in_text_columns_become_text(tmp_path):
    path = write_log(tmp_path, "jsonl", [{"u": 1, "i": 2, "t": START, "req": 77, "cat": 5, "name": 1.5}])
    [event] = logfile_events(path, ColumnMap(**BASE, request_id="req", category="cat", title="name"))
    assert (event.user_id, event.item_id, event.context.request_id) == ("1", "2", "77")
    assert (event.item.category, event.item.title) == ("5", "1.5")


def test_rows_replay_in_time_order_ties_in_file_order(tmp_path):
    rows = [{"u": u, "i": "x", "t": START + t} for u, t in [("a", 1), ("b", 0), ("c", 1), ("d", 0)]]
    events = logfile_events(write_log(tmp_path, "csv", rows), ColumnMap(**BASE))
    assert [e.user_id for e in events] == ["b", "d", "a", "c"]


GOOD = {
    "user": "u1",
    "item": "i1",
    "time": START,
    "type": "click",
    "event_id": "e1",
    "category": "c",
    "tags": "a|b",
    "title": "T",
    "user_attrs": "v",
    "position": 1,
    "request_id": "r",
    "propensity": 0.5,
    "value": 1.0,
}
LABELS = {
    "user": "user id",
    "item": "item id",
    "time": "time",
    "type": "type",
    "event_id": "event id",
    "category": "category",
    "tags": "tags",
    "title": "title",
    "user_attrs": "user attribute",
    "position": "position",
    "request_id": "request id",
    "propensity": "propensity",
    "value": "value",
}
BAD = [
    ("propensity", 1.4, "a number in (0, 1]"),
    ("propensity", 0, "a number in (0, 1]"),
    ("propensity", "nan", "a number in (0, 1]"),
    ("propensity", "often", "a number in (0, 1]"),
    ("position", 3.5, "an integer in [0, 10000]"),
    ("position", 10_001, "an integer in [0, 10000]"),
    ("position", -1, "an integer in [0, 10000]"),
    ("value", -1, "a number in [0, 1e+12]"),
    ("value", "inf", "a number in [0, 1e+12]"),
    ("value", "nan", "a number in [0, 1e+12]"),
    ("request_id", "r" * 129, "text of 1 to 128 characters"),
    ("event_id", "e" * 129, "text of 1 to 128 characters"),
    ("category", "c" * 129, "text of at most 128 characters"),
    ("title", "t" * 257, "text of at most 256 characters"),
    ("tags", "|".join("t" * 65), "at most 64 entries, each text of at most 64 characters"),
    ("tags", "t" * 65, "at most 64 entries, each text of at most 64 characters"),
    ("user_attrs", "a" * 257, "text of at most 256 characters"),
    ("type", "buy", "one of 'click', 'conversion', 'impression'"),
    ("user", "", "text of 1 to 128 characters"),
    ("item", "", "text of 1 to 128 characters"),
    (
        "time",
        START * 1000,
        "an integer in [631152000000, 4102444800000) ms (read as 1767225600000000 ms; check --time-unit)",
    ),
    ("time", "soon", "a number (s since 1970; see --time-unit)"),
]


def map_x(field: str) -> ColumnMap:
    return ColumnMap(**{**BASE, field: ("x",) if field == "user_attrs" else "x"})


def bad_log(tmp_path: Path, fmt: str, field: str, bad) -> Path:
    """Two good rows, then the bad value in column x of the third."""
    rows = [{"u": "u1", "i": "i1", "t": START, "x": value} for value in (GOOD[field], GOOD[field], bad)]
    return write_log(tmp_path, fmt, rows)


def bad_row_message(path: Path, columns: ColumnMap) -> str:
    with pytest.raises(LogFormatError) as error:
        list(logfile_events(path, columns))
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("fmt, row", [("csv", 4), ("jsonl", 3)])
@pytest.mark.parametrize("field, bad, requirement", BAD)
def test_bad_value_names_file_row_column_and_bound(tmp_path, fmt, row, field, bad, requirement):
    path = bad_log(tmp_path, fmt, field, bad)
    message = bad_row_message(path, map_x(field))
    assert message.startswith(f"{path}: row {row}: {LABELS[field]} ")
    assert message.endswith(f"(column 'x') must be {requirement}")


@pytest.mark.parametrize(
    "field, bad, fragment",
    [
        ("tags", ["t"] * 65, "must be at most 64 entries"),
        ("tags", ["t" * 65], "must be at most 64 entries, each text of at most 64 characters"),
        ("tags", [1995], "tags [1995] (column 'x')"),
        ("user_attrs", {"nested": 1}, "user attribute {'nested': 1} (column 'x') must be text"),
        ("category", ["a"], "category ['a'] (column 'x') must be text"),
        ("value", True, "value True (column 'x') must be a number"),
    ],
)
def test_bad_jsonl_types_name_the_column(tmp_path, field, bad, fragment):
    path = bad_log(tmp_path, "jsonl", field, bad)
    message = bad_row_message(path, map_x(field))
    assert message.startswith(f"{path}: row 3: ") and fragment in message


def test_bad_user_attribute_names_its_own_column(tmp_path):
    path = write_log(tmp_path, "csv", [{"u": "u", "i": "i", "t": START, "a": "ok", "b": "b" * 257}])
    message = bad_row_message(path, ColumnMap(**BASE, user_attrs=("a", "b")))
    assert "(column 'b')" in message


FLAGS = {
    "user": "--user-col",
    "item": "--item-col",
    "time": "--time-col",
    "type": "--type-col",
    "event_id": "--id-col",
    "category": "--category-col",
    "tags": "--tags-col",
    "title": "--title-col",
    "user_attrs": "--user-attr-cols",
    "position": "--position-col",
    "request_id": "--request-col",
    "propensity": "--propensity-col",
    "value": "--value-col",
}


@pytest.mark.parametrize("fmt, row", [("csv", 2), ("jsonl", 2)])
@pytest.mark.parametrize("field", FLAGS)
def test_a_mapped_column_missing_from_a_row_names_the_flag(tmp_path, fmt, row, field):
    rows = [{"u": "u1", "i": "i1", "t": START}]
    if fmt == "jsonl":
        rows.insert(0, {**rows[0], "nope": GOOD[field]})
    columns = ColumnMap(**{**BASE, field: ("nope",) if field == "user_attrs" else "nope"})
    message = bad_row_message(write_log(tmp_path, fmt, rows), columns)
    assert f": row {row}: no column 'nope'" in message and FLAGS[field] in message
    assert FLAGS[field] in FULL_FLAGS, "the flag a message names is one the CLI takes"


@pytest.mark.parametrize(
    "columns, fragment",
    [
        (ColumnMap(user_attrs=tuple(f"c{n}" for n in range(33))), "--user-attr-cols names 33 columns; use at most 32"),
        (ColumnMap(user_attrs=("a" * 65,)), "each name text of at most 64 characters"),
        (ColumnMap(tags_sep=""), "--tags-sep"),
    ],
)
def test_a_map_no_row_can_satisfy_is_refused_up_front(tmp_path, columns, fragment):
    message = bad_row_message(write_log(tmp_path, "csv", [{"user_id": "u", "item_id": "i", "ts": START}]), columns)
    assert fragment in message


def test_a_jsonl_line_that_is_not_an_object_names_its_row(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"user_id": "u", "item_id": "i", "ts": 1767225600000}\n\n[1, 2]\n')
    assert bad_row_message(path, ColumnMap()).startswith(f"{path}: row 3: not a JSON object")


def test_cli_flags_map_every_column(tmp_path):
    path = write_log(tmp_path, "csv", full_rows("csv"))
    ctx = parse(["eval", "prequential", "--dataset", "file", "--path", str(path), *FULL_FLAGS])
    bare, full = SourceSpec.from_params(ctx.params).open()
    assert full == FULL_EVENT
    assert_bare(bare)


def test_cli_bad_propensity_is_one_line_and_exit_2(tmp_path, capsys):
    rows = [{"u": "u1", "i": "i1", "t": START + n, "cat": "c", "prop": prop} for n, prop in enumerate(["0.5", "1.4"])]
    path = write_log(tmp_path, "csv", rows)
    assert (
        main(
            [
                "eval",
                "prequential",
                "--dataset",
                "file",
                "--path",
                str(path),
                "--user-col",
                "u",
                "--item-col",
                "i",
                "--time-col",
                "t",
                "--time-unit",
                "s",
                "--category-col",
                "cat",
                "--propensity-col",
                "prop",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err == (f"streamrec eval: {path}: row 3: propensity '1.4' (column 'prop') must be a number in (0, 1]")


def test_a_log_that_is_not_utf8_says_so(tmp_path):
    path = tmp_path / "log.csv"
    path.write_bytes(b"user_id,item_id,ts\n\xff,i,1767225600000\n")
    assert "not UTF-8 text" in bad_row_message(path, ColumnMap())
