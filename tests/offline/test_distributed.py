"""Two ranks under torchrun (gloo, CPU, DistributedDataParallel) train to the single-process result:
the same rows per step, gradients averaged, parameters in lockstep -- teacher and distilled student,
pointwise and sequence; and ``train --once`` with the sequence models, end to end, registers once."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]

SCRIPT = """
import json, os, torch
from offline.curriculum import Curriculum
from offline.features import ContentTables
from offline.fit import teacher_targets
from offline.pipeline import SERVED_KD, train_student, train_teacher
from offline.samples import build_dataset
from stream.config import load_config
from stream.sources.synthetic import SyntheticConfig, synthetic_events

if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    torch.distributed.init_process_group("gloo")
torch.set_num_threads(1)
cfg = load_config(overrides=["train.epochs=3", "train.batch_size=256"])
ds = build_dataset(synthetic_events(SyntheticConfig(n_users=120, n_items=100, n_sessions=1000)))
tables = ContentTables(ds.catalogue)
trained = train_teacher(ds, tables, cfg, Curriculum(False))
targets = teacher_targets(trained.model, tables, ds.train, SERVED_KD.candidates, len(ds.catalogue.items))
student = train_student(ds, tables, cfg, SERVED_KD, trained.model, targets)  # every distillation term
def checksum(model):
    return float(sum(p.double().sum() for p in model.parameters()))
rank = int(os.environ.get("RANK", "0"))
report = {"rank": rank, "losses": trained.fit.val_losses,
          "params": checksum(trained.model), "student_params": checksum(student.model)}
with open(os.path.join(os.environ["REPORT_DIR"], f"rank{rank}.json"), "w") as f:
    json.dump(report, f)
"""


def launch(argv: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", **env},
    )


def run(script: Path, *launcher: str) -> dict[int, dict]:
    """Each rank's report, from a file of its own: two ranks printing to torchrun's shared stdout
    once ran their lines together."""
    reports = script.parent / f"reports-{len(launcher)}"
    reports.mkdir()
    done = launch([*launcher, str(script)], REPORT_DIR=str(reports))
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = [json.loads(path.read_text()) for path in sorted(reports.glob("rank*.json"))]
    return {r["rank"]: r for r in loaded}


def single_and_ranks(directory: Path, text: str) -> tuple[dict, dict[int, dict]]:
    """``text`` run as one process, then as two torchrun ranks: the one report and the ranks' two."""
    script = directory / "fit.py"
    script.write_text(text)
    single, ranks = run(script, sys.executable)[0], run(script, *TORCHRUN)
    assert set(ranks) == {0, 1}
    return single, ranks


def test_two_process_ddp_reaches_the_single_process_loss(tmp_path):
    single, ranks = single_and_ranks(tmp_path, SCRIPT)
    assert ranks[0]["params"] == ranks[1]["params"]  # lockstep: both ranks hold the same model
    assert ranks[0]["student_params"] == ranks[1]["student_params"]
    # Same rows per step and the same averaged update; only the dropout masks differ between the runs.
    for a, b in zip(ranks[0]["losses"], single["losses"], strict=True):
        assert abs(a - b) <= 0.05 * b, (ranks[0]["losses"], single["losses"])


SEQUENCE_SCRIPT = """
import json, os, torch
from dataclasses import replace
from pathlib import Path
from offline.distill import KDWeights
from offline.sequence_distill import SequenceDistillation
from offline.sequence_fit import SequenceFitSettings, fit_sequence_model
from offline.sequence_model import STUDENT, TEACHER
from offline.sequence_pipeline import prepare
from stream.config import load_config
from stream.sources.synthetic import SyntheticConfig, synthetic_events

if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    torch.distributed.init_process_group("gloo")
cfg = load_config(overrides=["train.threads=1", "state.sequence_tokens=12", "train.validation_clicks=200"])
events = synthetic_events(SyntheticConfig(n_users=120, n_items=100, n_sessions=1000))
p = prepare(cfg, events, Path(os.environ["REPORT_DIR"]) / "registry")
# Without dropout, the two launches differ only in floating-point rounding: any other difference
# in what a step sees or averages shows in the validation figures.
teacher = p.new_model(replace(TEACHER, dropout=0.0), 0)
settings = SequenceFitSettings(epochs=3, batch=33, patience=9)  # odd: the ranks' shares differ in size
teacher_fit = fit_sequence_model(teacher, p.data.train, p.validation(), settings)
student = p.new_model(replace(STUDENT, dropout=0.0), 0)
kd = KDWeights(soft=1.0, hint=0.5, rank=1.0, temperature=2.0, candidates=20)  # every term, the hint's projection too
loss = SequenceDistillation(teacher, STUDENT.dim, kd, 0.2)
student_fit = fit_sequence_model(student, p.data.train, p.validation(), settings, loss)
def checksum(*models):
    return float(sum(w.double().sum() for m in models for w in m.parameters()))
rank = int(os.environ.get("RANK", "0"))
report = {"rank": rank, "teacher": teacher_fit.validation_ndcg, "student": student_fit.validation_ndcg,
          "teacher_params": checksum(teacher), "student_params": checksum(student, loss)}
with open(os.path.join(os.environ["REPORT_DIR"], f"rank{rank}.json"), "w") as f:
    json.dump(report, f)
"""


def test_two_process_sequence_fits_take_the_single_process_steps(tmp_path):
    single, ranks = single_and_ranks(tmp_path, SEQUENCE_SCRIPT)
    for model in ("teacher_params", "student_params"):
        assert ranks[0][model] == ranks[1][model]  # lockstep, the student's hint projection included
    for model in ("teacher", "student"):
        assert len(ranks[0][model]) == len(single[model]) == 3
        for a, b in zip(ranks[0][model], single[model], strict=True):
            assert abs(a - b) <= 2e-3, (model, ranks[0][model], single[model])


def test_train_once_with_the_sequence_models_under_torchrun_registers_one_student(tmp_path):
    """Every rank trains, ablations included (their fits are collective too); rank 0 alone reports and registers."""
    args = ["train", "--once", "--seeds", "1", "--dataset", "synthetic", "--sessions", "1000", "--json"]
    for setting in ("model=sequence", "sequence_epochs=1", "threads=1"):
        args += ["--set", f"train.{setting}"]
    args += ["--set", "state.sequence_tokens=12", "--set", f"registry.root={tmp_path / 'registry'}"]
    done = launch([*TORCHRUN, "-m", "streamrec.cli", *args])
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)  # one report: rank 1 printed nothing
    assert report["_run"]["model"] == "sequence" and set(report["ablations"]) >= {"multi_task", "distillation"}
    assert report["registry"]["version"] == 1
    assert sorted(p.name for p in (tmp_path / "registry" / "versions").iterdir()) == ["000001"]
