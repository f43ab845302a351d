"""One run of the sequence models (``train.model = "sequence"``) end to end on a small synthetic world.

* every figure the report promises is there for the teacher and the student, as the mean over the
  training seeds with each seed's own, beside popularity and the paired comparisons;
* the student is a tenth of the teacher (its speed a figure, not a test); the registry holds the
  first seed's student as a sequence model, promoted, with that seed's test figures;
* the teacher is kept under its own checkpoint directory (the pointwise teacher's is untouched);
  the next version warm-starts from it, and then the ablations compare it with a cold teacher; a
  corrupt previous teacher costs only the warm start;
* every ablation arm is measured on the validation part;
* pruning and int8 are measured, kept only when worth it, and what is registered is what was kept.

The world is ``tests/offline/conftest.py``'s (chosen in test_pipeline.py); a few epochs, so the
figures say the run is whole, not how good the models are (``streamrec.quality.recbole_sequential``
and the docs measure that).
"""

import logging
import math
import shutil

import numpy as np
import pytest

from offline.compress import worth_keeping
from offline.sequence_distill import StudentSettings, kd_ablation
from offline.sequence_model import STUDENT
from offline.sequence_pipeline import CHECKPOINT, summary_lines, train_once
from offline.teacher_checkpoint import checkpoint_dir, load_checkpoint
from serving.sequence_inputs import is_sequence_model
from stream.config import load_config
from stream.model_artifact import current_artifact, verify_artifact

CFG = [
    "train.model=sequence",
    "train.sequence_epochs=3",
    "train.validation_clicks=100",
    "train.test_clicks=300",
    "state.sequence_tokens=12",
]
RERUN = [*CFG, "train.sequence_epochs=1"]  # the next versions: only what they start from is under test
FIGURES = ("recall@10", "ndcg@10", "validation_ndcg@10", "best_epoch", "params", "onnx_ms_per_request")


@pytest.fixture(scope="module")
def run(tmp_path_factory, events):
    root = tmp_path_factory.mktemp("registry")
    return train_once(load_config(overrides=CFG), events, root, seeds=2, ablations=False), root


@pytest.fixture(scope="module")
def warm(run, events, tmp_path_factory):
    """The next version, warm-started from ``run``'s teacher, with its ablations."""
    root = tmp_path_factory.mktemp("next") / "r"
    shutil.copytree(run[1], root)
    return train_once(load_config(overrides=RERUN), events, root, seeds=1, ablations=True), root


def test_report_has_every_figure_for_both_models_over_the_seeds(run):
    report, _ = run
    assert report["seeds"] == {"trained": [7, 8], "registered": 7}
    for name in ("teacher", "student"):
        model = report[name]
        assert [figures["seed"] for figures in model["by_seed"]] == [7, 8]
        for key in FIGURES:
            values = [figures[key] for figures in model["by_seed"]]
            assert all(math.isfinite(v) for v in values), (name, key)
            assert model[key] == pytest.approx(np.mean(values)), (name, key)
    assert set(report["popularity"]) == {"recall@10", "ndcg@10"}
    assert report["_run"]["test_clicks_ranked"] == 300
    assert 0 < report["_run"]["teacher_student_export_seconds"] <= report["_run"]["seconds"]


def test_the_comparisons_pair_the_seed_means_on_the_same_clicks(run):
    report, _ = run
    c = report["comparisons"]
    share = c["student_share_of_teacher"]
    assert share["estimate"] == pytest.approx(report["student"]["ndcg@10"] / report["teacher"]["ndcg@10"], abs=1e-6)
    assert share["low"] <= share["estimate"] <= share["high"]
    lead = c["teacher_minus_popularity"]
    assert lead["estimate"] == pytest.approx(report["teacher"]["ndcg@10"] - report["popularity"]["ndcg@10"], abs=1e-6)


def test_the_student_is_a_tenth_of_the_teacher_and_its_speed_is_reported(run):
    student = run[0]["student"]
    assert student["params_share_of_teacher"] <= 0.1
    assert student["speedup_vs_teacher"] == pytest.approx(
        run[0]["teacher"]["onnx_ms_per_request"] / student["onnx_ms_per_request"]
    )


def test_the_first_seeds_student_is_registered_as_a_sequence_model(run):
    report, root = run
    assert report["registry"]["promoted"] is True
    manifest = verify_artifact(current_artifact(root))
    assert is_sequence_model(manifest)
    assert manifest.version == report["registry"]["version"] == 1
    assert manifest.metrics["test"]["ndcg@10"] == report["student"]["by_seed"][0]["ndcg@10"]


def test_the_first_teacher_is_cold_and_kept_beside_the_pointwise_one(run):
    report, root = run
    assert report["teacher"]["warm_start"] == {"warm_started": False, "curriculum": True}
    assert load_checkpoint(root, CHECKPOINT) is not None
    assert load_checkpoint(root) is None  # the pointwise teacher's directory is not this one's


def test_the_next_version_warm_starts_and_its_ablations_measure_every_arm(warm):
    report, _ = warm
    info = report["teacher"]["warm_start"]
    assert info["warm_started"] is True and info["items_copied"] > 0 and info["params_copied"] > 0
    assert info["curriculum"] is False  # easy-first epochs are for an untrained model
    assert report["registry"]["version"] == 2
    a = report["ablations"]
    arms = [a["teacher"], *a["multi_task"].values(), a["curriculum"]["on"], a["curriculum"]["off"]]
    arms += [a["warm_start"]["warm"], a["warm_start"]["cold"], *a["distillation"].values()]
    for arm in arms:
        assert 0 <= arm["validation_ndcg@10"] <= 1 and arm["epochs"] == 1
    assert set(a["distillation"]) == set(kd_ablation(StudentSettings().kd))
    assert a["warm_start"]["warm"] == a["teacher"]  # the served teacher is the warm arm
    # one cold teacher is the reference of every teacher comparison (curriculum on by default)
    assert a["warm_start"]["cold"] == a["multi_task"]["multi_task"] == a["curriculum"]["on"]
    assert a["curriculum"]["default"] is True


def test_a_corrupt_previous_teacher_costs_only_the_warm_start(run, events, tmp_path, caplog):
    shutil.copytree(run[1], tmp_path / "r")
    weights = checkpoint_dir(tmp_path / "r", CHECKPOINT) / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:-100])
    with caplog.at_level(logging.WARNING, logger="offline.sequence_pipeline"):
        report = train_once(load_config(overrides=RERUN), events, tmp_path / "r", seeds=1, ablations=False)
    assert report["teacher"]["warm_start"]["warm_started"] is False
    assert any("cold" in r.getMessage() for r in caplog.records)
    assert report["registry"]["version"] == 2
    assert load_checkpoint(tmp_path / "r", CHECKPOINT) is not None  # this run's teacher replaced it


def test_pruning_and_int8_are_measured_and_kept_only_when_worth_it(run):
    report, root = run
    pruning, int8 = report["compression"]["pruning"], report["compression"]["int8"]
    (before, after), (ms_before, ms_after) = pruning["validation_ndcg@10"], pruning["onnx_ms_per_request"]
    assert pruning["width"] == [STUDENT.dim, STUDENT.dim - 2]
    assert pruning["kept"] == worth_keeping(before, after, ms_before, ms_after)
    served_params = pruning["params"][1] if pruning["kept"] else pruning["params"][0]
    assert report["student"]["by_seed"][0]["params"] == served_params
    assert int8["kept"] == worth_keeping(int8["ndcg_float"], int8["ndcg_int8"], int8["ms_float"], int8["ms_int8"])
    manifest = verify_artifact(current_artifact(root))
    assert manifest.extra.get("quantised") == ("int8-dynamic" if int8["kept"] else None)
    assert any(line.startswith("pruning to 8 of 10 channels") for line in summary_lines(report))


def test_a_log_without_validation_or_test_clicks_still_registers_a_student(events, tmp_path):
    cfg = load_config(overrides=[*RERUN, "train.validation_share=0", "train.test_share=0"])
    report = train_once(cfg, events, tmp_path, seeds=1, ablations=False)
    assert report["_run"]["test_clicks_ranked"] == 0
    assert report["registry"]["version"] == 1
    assert report["compression"]["pruning"] == {"kept": False, "note": "not tried: no validation clicks to judge it"}
    assert report["compression"]["int8"]["kept"] is False
