"""The configuration reference is generated from the config object, and what it says is what the loader does."""

from __future__ import annotations

import re

import msgspec
import pytest

from stream.config import Config, ConfigError, load_config
from streamrec.cli import main
from streamrec.config_reference import env_var, field_comments, render_reference

# | `field` | type | `default` | `ENV` or in `ENV` | description |
ROW = re.compile(r"^\| `(?P<field>[\w.]+)` \| (?P<type>.*?) \| `(?P<default>.*?)` \| (?:in )?`(?P<env>\w+)` \| ")


def rows() -> dict[tuple[str, str], re.Match]:
    """(section, field) -> its table row, read back from the rendered Markdown."""
    found, section = {}, None
    for line in render_reference().splitlines():
        if heading := re.fullmatch(r"#### `\[(\w+)\]`", line):
            section = heading[1]
        elif row := ROW.match(line):
            found[(section, row["field"])] = row
    return found


def every_field() -> list[tuple[str, str]]:
    fields = []
    for section in msgspec.structs.fields(Config):
        for f in msgspec.structs.fields(section.type):
            fields.append((section.name, f.name))
            if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct):
                fields += [(section.name, f"{f.name}.{g.name}") for g in msgspec.structs.fields(f.type)]
    return fields


def test_every_field_of_every_section_has_a_row_and_nothing_else_does():
    assert sorted(rows()) == sorted(every_field())


def test_each_rows_env_var_is_the_loaders_name_for_that_field():
    for (section, field), row in rows().items():
        assert row["env"] == env_var(section, field.split(".")[0])
        assert row["env"] == f"STREAMREC_{section.upper()}__{field.split('.')[0].upper()}"


@pytest.mark.parametrize("section, field", [(s, f) for s, f in every_field() if "." not in f])
def test_setting_each_env_var_to_the_default_shown_loads_the_default_config(section, field):
    """Proves the name is one the loader reads (an unknown one is an error) and the default column is
    valid input for it."""
    row = rows()[(section, field)]
    assert load_config(env={row["env"]: row["default"]}) == Config()


def test_an_env_var_from_the_table_changes_its_field():
    env = rows()[("worker", "batch_size")]["env"]
    assert load_config(env={env: "1234"}).worker.batch_size == 1234
    blend = rows()[("serving", "blend")]["env"]
    cfg = load_config(env={blend: "{student = 2.5}"})
    assert cfg.serving.blend.student == 2.5 and cfg.serving.blend.item_knn == Config().serving.blend.item_knn


def test_the_types_column_states_the_bounds_the_loader_enforces():
    assert rows()[("kafka", "partitions")]["type"] == "int, > 0"
    assert rows()[("metrics", "port")]["type"] == "int, 0 <= x <= 65535"
    with pytest.raises(ConfigError):
        load_config(env={"STREAMREC_KAFKA__PARTITIONS": "0"})


def test_the_comment_above_a_field_is_its_description():
    from stream.config import KafkaConfig, WorkerConfig

    assert field_comments(KafkaConfig)["bootstrap_servers"].startswith("Empty means")
    assert "events_topic" not in field_comments(KafkaConfig)  # no comment of its own
    assert field_comments(WorkerConfig)["poll_timeout_s"].startswith("consume() waits this long")
    assert rows()[("worker", "poll_timeout_s")].string.rstrip(" |").endswith("130 ms median staleness at 1,000/s.")


def test_streamrec_config_reference_prints_it(capsys):
    assert main(["config", "reference"]) == 0
    assert capsys.readouterr().out == render_reference()
