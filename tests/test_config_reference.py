"""The configuration reference is generated from the config object, and what it says is what the loader does."""

from __future__ import annotations

import re

import pytest

from stream.config import Config, ConfigError, load_config, setting_paths
from streamrec.cli import main
from streamrec.reference.config import render

# | `name` | type | `default` | `VARIABLE` | description |
ROW = re.compile(r"^\| `(?P<name>[\w.]+)` \| (?P<type>.*?) \| `(?P<default>.*?)` \| `(?P<env>\w+)` \| (?P<doc>.*) \|$")


def rows() -> dict[str, re.Match]:
    """Setting name -> its table row, read back from the rendered Markdown."""
    return {row["name"]: row for line in render().splitlines() if (row := ROW.match(line))}


def test_every_setting_below_a_section_has_a_row_and_nothing_else_does():
    assert sorted(rows()) == sorted(s.path for s in setting_paths(Config) if "." in s.path)


def test_every_row_and_section_has_a_description():
    assert all(len(row["doc"]) > 15 for row in rows().values())
    for section in (s.path for s in setting_paths(Config) if "." not in s.path):
        heading = render().split(f"## `[{section}]`\n\n", 1)[1]
        assert not heading.startswith("|"), f"section {section} has no description"


def test_a_row_shows_the_description_given_in_code():
    assert rows()["worker.poll_timeout_s"]["doc"].endswith("130 ms median staleness at 1,000/s.")
    assert rows()["serving.blend.student"]["doc"] == "Starting weight of the distilled ONNX student."


@pytest.mark.parametrize("name", sorted(s.path for s in setting_paths(Config) if "." in s.path))
def test_setting_each_variable_to_the_default_shown_loads_the_default_config(name):
    """Proves the name is one the loader reads (an unknown one is an error) and the default column is
    valid input for it."""
    row = rows()[name]
    assert load_config(env={row["env"]: row["default"]}) == Config()


def test_a_variable_from_the_table_changes_its_field_at_any_depth():
    assert load_config(env={rows()["worker.batch_size"]["env"]: "1234"}).worker.batch_size == 1234
    cfg = load_config(env={rows()["serving.blend.student"]["env"]: "2.5"})
    assert cfg.serving.blend.student == 2.5 and cfg.serving.blend.item_knn == Config().serving.blend.item_knn
    assert rows()["serving.blend.student"]["env"] == "STREAMREC_SERVING__BLEND__STUDENT"


def test_the_types_column_states_the_bounds_the_loader_enforces():
    assert rows()["kafka.partitions"]["type"] == "int, > 0"
    assert rows()["metrics.port"]["type"] == "int, 0 <= x <= 65535"
    assert rows()["serving.max_k"]["type"] == "int, 0 < x <= 1000"
    with pytest.raises(ConfigError):
        load_config(env={"STREAMREC_KAFKA__PARTITIONS": "0"})


def test_derived_values_are_listed_as_not_settable():
    assert '`kafka.dlq_topic` = `"events.dlq"`' in render()


def test_streamrec_config_reference_prints_it(capsys):
    assert main(["config", "reference"]) == 0
    assert capsys.readouterr().out == render()
