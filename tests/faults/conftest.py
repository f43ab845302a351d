"""The fault suite: each test injects one fault into real processes and a real broker, then records
a row of the table -- fault, guarantee, events in, events reflected, duplicates, lost, result.

`./run tests` (CI) runs the fast subset; `./run faults` runs every test, including those marked
`slow` (repeated kills, the soak), and prints the table at the end either way. A row is recorded
only after its assertions ran, with `held` computed from the same figures: a failing test shows
its row as "FAILED" because its `record` call is reached with held=False or not at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

TABLE_ENV = "STREAMREC_FAULT_TABLE"  # where ./run faults asks for the table as JSON


@dataclass(frozen=True)
class FaultRow:
    fault: str
    guarantee: str
    events_in: int
    reflected: int
    duplicates: int
    lost: int
    held: bool
    test: str = ""


_rows: list[FaultRow] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--faults-all",
        action="store_true",
        help="also run the slow fault tests (repeated kills, soak); ./run faults sets it",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)
            item.add_marker(pytest.mark.integration)
            if item.get_closest_marker("slow") and not config.getoption("--faults-all"):
                item.add_marker(pytest.mark.skip(reason="slow fault test: ./run faults runs it"))


@pytest.fixture
def fault_row(request: pytest.FixtureRequest):
    """``record(fault, guarantee, events_in, reflected, duplicates, lost)`` -> the row, held or not.

    held is derived, never passed: reflected == events_in with no duplicates and nothing lost.
    Tests assert ``row.held`` after recording, so the table and the verdict cannot disagree.
    """

    def record(fault: str, guarantee: str, events_in: int, reflected: int, duplicates: int, lost: int) -> FaultRow:
        held = reflected == events_in and duplicates == 0 and lost == 0
        row = FaultRow(fault, guarantee, events_in, reflected, duplicates, lost, held, request.node.nodeid)
        _rows.append(row)
        return row

    return record


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _rows:
        return
    header = ("fault", "guarantee", "events in", "reflected", "duplicates", "lost", "result")
    lines = [
        (
            r.fault,
            r.guarantee,
            f"{r.events_in:,}",
            f"{r.reflected:,}",
            f"{r.duplicates:,}",
            f"{r.lost:,}",
            "held" if r.held else "FAILED",
        )
        for r in _rows
    ]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    terminalreporter.write_sep("=", "fault table")
    for line in (header, tuple("-" * w for w in widths), *lines):
        terminalreporter.write_line(" | ".join(str(x).ljust(w) for x, w in zip(line, widths)))
    target = os.environ.get(TABLE_ENV)
    if target:
        Path(target).write_text(json.dumps([asdict(r) for r in _rows], indent=2) + "\n")
