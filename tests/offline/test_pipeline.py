"""One training run end to end on a small synthetic world: every figure the CLI promises is there,
the student is smaller and faster than the teacher, and the registry holds the promoted student."""

import math

import pytest

from offline.pipeline import train_once
from stream.config import load_config
from stream.model_artifact import current_artifact, verify_artifact
from stream.sources.synthetic import SyntheticConfig, synthetic_events


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    cfg = load_config(overrides=["train.epochs=2", "train.batch_size=256", "train.test_clicks=60", "train.validation_clicks=60"])
    events = list(synthetic_events(SyntheticConfig(n_users=150, n_items=120, n_sessions=1500)))
    return train_once(cfg, events, log=lambda _: None, registry_root=root), root


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
