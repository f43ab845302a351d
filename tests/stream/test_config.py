"""Config is one typed object: defaults < TOML file < STREAMREC_* variables < --set, at any depth."""

import pytest

from stream.config import ENV_SEPARATOR, Config, ConfigError, load_config, setting_paths


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
        (["nosuch.field=1"], "no setting nosuch.field; the sections are kafka, events"),
        (["worker.nosuch=1"], "worker.nosuch"),
        (["worker.batchsize=1"], "did you mean worker.batch_size?"),
        (["serving.blend.studnt=2"], "did you mean serving.blend.student?"),
        (["serving.blend.x=2"], "serving.blend has student, item_knn, isgd_mf, popularity"),
        (["serving.port.x=2"], "serving.port has no members; set it whole"),
        (["justakey"], "NAME=VALUE"),
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


def test_a_nested_setting_is_set_alone_by_variable_and_by_set():
    cfg = load_config(env={"STREAMREC_SERVING__BLEND__STUDENT": "2"})
    assert cfg.serving.blend.student == 2.0 and cfg.serving.blend.item_knn == 1.0
    cfg = load_config(overrides=["serving.blend.student=3", "serving.blend.popularity=0.5"], env={})
    assert (cfg.serving.blend.student, cfg.serving.blend.popularity, cfg.serving.blend.isgd_mf) == (3.0, 0.5, 1.0)


def test_nested_precedence_file_then_variables_then_set(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[serving.blend]\nstudent = 5.0\nitem_knn = 4.0\npopularity = 3.0\n")
    env = {"STREAMREC_SERVING__BLEND__ITEM_KNN": "2", "STREAMREC_SERVING__BLEND__POPULARITY": "2"}
    blend = load_config(f, ["serving.blend.popularity=0"], env=env).serving.blend
    assert (blend.student, blend.item_knn, blend.popularity) == (5.0, 2.0, 0.0)


def test_a_members_variable_beats_its_tables_and_the_table_keeps_the_files_other_members(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text("[serving.blend]\nisgd_mf = 4.0\n")
    env = {"STREAMREC_SERVING__BLEND__STUDENT": "2", "STREAMREC_SERVING__BLEND": "{student = 9.0, item_knn = 3.0}"}
    blend = load_config(f, env=env).serving.blend
    assert (blend.student, blend.item_knn, blend.isgd_mf) == (2.0, 3.0, 4.0)


def test_a_misspelt_variable_or_file_key_names_the_nearest_setting(tmp_path):
    with pytest.raises(ConfigError, match=r"did you mean STREAMREC_SERVING__BLEND__STUDENT\?$"):
        load_config(env={"STREAMREC_SERVING__BLEND__STUDNT": "2"})
    f = tmp_path / "c.toml"
    f.write_text("[serving.blend]\nstudnt = 2.0\n")
    with pytest.raises(
        ConfigError, match=r"c.toml: no setting serving.blend.studnt; did you mean serving.blend.student"
    ):
        load_config(f, env={})


def test_a_bad_nested_value_names_its_variable():
    with pytest.raises(ConfigError, match="STREAMREC_SERVING__BLEND__STUDENT") as exc:
        load_config(overrides=["serving.blend.student=-1"], env={})
    assert str(exc.value).startswith("config serving.blend.student: Expected `float` >= 0.0")


def test_every_setting_has_a_description_in_code():
    missing = [s.path for s in setting_paths(Config) if len(s.description) < 15]
    assert not missing, f"describe these fields with Annotated[..., msgspec.Meta(description=...)]: {missing}"


def test_the_separator_is_never_part_of_a_field_name():
    assert all(ENV_SEPARATOR not in part for s in setting_paths(Config) for part in s.path.split("."))
