"""One training run end to end on a small synthetic world: every figure the CLI promises is there,
the student is smaller and faster than the teacher, and the registry holds the promoted student.
The first version's teacher is trained cold and kept; the next version warm-starts from it, and a
corrupt previous teacher costs only the warm start."""

import math
import shutil

import pytest

from offline.pipeline import train_once
from offline.teacher_checkpoint import checkpoint_dir, load_checkpoint
from stream.config import load_config
from stream.model_artifact import current_artifact, verify_artifact
from stream.sources.synthetic import SyntheticConfig, synthetic_events

CFG = ["train.epochs=2", "train.batch_size=256", "train.test_clicks=60", "train.validation_clicks=60"]


@pytest.fixture(scope="module")
def events():
    return list(synthetic_events(SyntheticConfig(n_users=150, n_items=120, n_sessions=1500)))


@pytest.fixture(scope="module")
def run(tmp_path_factory, events):
    root = tmp_path_factory.mktemp("registry")
    return train_once(load_config(overrides=CFG), events, log=lambda _: None, registry_root=root), root


def test_report_has_every_figure_for_every_model(run):
    report, _ = run
    for name in ("teacher", "student", "student_no_kd"):
        for key in ("auc_click", "recall@10", "ndcg@10", "params", "onnx_ms_per_1000"):
            assert math.isfinite(report[name][key]), (name, key)
    assert set(report["popularity"]) == {"recall@10", "ndcg@10"}
    assert report["student"]["kl_teacher_student"] >= 0


def test_student_is_a_tenth_of_the_teacher_and_exports_faithfully(run):
    report, _ = run
    assert report["student"]["params"] * 10 <= report["teacher"]["params"]
    for name in ("teacher", "student", "student_no_kd"):
        assert report[name]["onnx_parity_max_abs_diff"] <= 1e-4


def test_the_student_is_registered_and_current(run):
    report, root = run
    assert report["registry"]["promoted"] is True
    manifest = verify_artifact(current_artifact(root))
    assert manifest.version == report["registry"]["version"] == 1
    assert "ndcg@10" in manifest.metrics["validation"]


def test_the_first_teacher_is_cold_and_kept_for_the_next_version(run):
    report, root = run
    assert report["teacher"]["warm_start"] == {"warm_started": False}
    assert load_checkpoint(root) is not None


def test_the_next_version_warm_starts_from_the_previous_teacher(run, events, tmp_path):
    _, root = run
    shutil.copytree(root, tmp_path / "r")
    report = train_once(load_config(overrides=CFG), events, log=lambda _: None, registry_root=tmp_path / "r")
    warm = report["teacher"]["warm_start"]
    assert warm["warm_started"] is True and warm["items_copied"] > 0 and warm["params_copied"] > 0
    assert report["registry"]["version"] == 2


def test_a_corrupt_previous_teacher_costs_only_the_warm_start(run, events, tmp_path):
    _, root = run
    shutil.copytree(root, tmp_path / "r")
    weights = checkpoint_dir(tmp_path / "r") / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-100])
    lines = []
    report = train_once(load_config(overrides=CFG), events, log=lines.append, registry_root=tmp_path / "r")
    assert report["teacher"]["warm_start"] == {"warm_started": False}
    assert any("checksum" in line and "cold" in line for line in lines)
    assert report["registry"]["version"] == 2
    assert load_checkpoint(tmp_path / "r") is not None  # this run's teacher replaced the corrupt one
