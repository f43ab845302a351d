"""Logging is configured in one place: one handler, on stderr, lines with time, level and name."""

from __future__ import annotations

import logging

import pytest

from streamrec import logs


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level
    logging.captureWarnings(False)


def test_setup_writes_one_line_per_record_to_stderr(restore_root, capsys):
    logs.setup("INFO")
    logs.setup("info")  # again: replaces the handler, no line twice
    logging.getLogger("stream.worker").info("assigned %d partitions", 4)
    logging.getLogger("stream.worker").debug("not at INFO")
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.endswith(" INFO stream.worker: assigned 4 partitions") and line[:4].isdigit()


def test_a_bad_level_names_the_choices():
    with pytest.raises(ValueError, match="use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        logs.setup("LOUD")
