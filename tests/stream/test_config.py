"""Config is one typed object: defaults < TOML file < STREAMREC_* env < --set flags."""

import pytest

from stream.config import Config, ConfigError, load_config


def test_defaults_are_valid():
    assert load_config(env={}) == Config()


def test_precedence_file_then_env_then_flags(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[worker]\nbatch_size = 10\nsnapshot_every_events = 7\n[kafka]\nevents_topic = 'from-file'\n")
    cfg = load_config(
        f,
        ["worker.batch_size=30"],
        env={"STREAMREC_WORKER__BATCH_SIZE": "20", "STREAMREC_KAFKA__EVENTS_TOPIC": "from-env"},
    )
    assert cfg.worker.batch_size == 30  # flag wins
    assert cfg.kafka.events_topic == "from-env"  # env beats file
    assert cfg.worker.snapshot_every_events == 7  # file beats default


def test_config_file_from_env(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[state]\nhalf_lives_s = [60.0, 600.0]\n")
    assert load_config(env={"STREAMREC_CONFIG": str(f)}).state.half_lives_s == [60.0, 600.0]


def test_lists_and_numbers_parse_from_strings():
    cfg = load_config(overrides=["state.half_lives_s=[1.0, 2.0]", "learners.mf_learning_rate=0.1"], env={})
    assert cfg.state.half_lives_s == [1.0, 2.0]
    assert cfg.learners.mf_learning_rate == 0.1


@pytest.mark.parametrize(
    "override, fragment",
    [
        (["worker.batch_size=0"], "worker.batch_size"),
        (["worker.batch_size=many"], "worker.batch_size"),
        (["nosuch.field=1"], "unknown section 'nosuch'"),
        (["worker.nosuch=1"], "worker.nosuch"),
        (["justakey"], "SECTION.FIELD=VALUE"),
    ],
)
def test_bad_values_give_one_line_naming_the_fix(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=override, env={})
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message


def test_bad_value_error_names_flag_and_env_var():
    with pytest.raises(ConfigError, match="STREAMREC_WORKER__BATCH_SIZE"):
        load_config(overrides=["worker.batch_size=-3"], env={})


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[worker\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})


def test_an_eager_assignment_strategy_is_refused_up_front():
    # Workers rebalance with incremental_assign(); an eager protocol would crash them at the first rebalance.
    with pytest.raises(ConfigError, match=r"partition\.assignment\.strategy='range' is not supported") as exc:
        load_config(env={}, overrides=['kafka.client_overrides={"partition.assignment.strategy" = "range"}'])
    assert "\n" not in str(exc.value)
    sasl = load_config(env={}, overrides=['kafka.client_overrides={"security.protocol" = "SASL_SSL"}'])
    assert sasl.kafka.client_overrides == {"security.protocol": "SASL_SSL"}  # everything else passes through
