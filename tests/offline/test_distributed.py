"""Two ranks under torchrun (gloo, CPU, DistributedDataParallel) train to the single-process result:
the same rows per step, gradients averaged, parameters in lockstep -- teacher and distilled student."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

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


def run(script: Path, *launcher: str) -> dict[int, dict]:
    """Each rank's report, from a file of its own: two ranks printing to torchrun's shared stdout
    once ran their lines together."""
    reports = script.parent / f"reports-{len(launcher)}"
    reports.mkdir()
    subprocess.run(
        [*launcher, str(script)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "REPORT_DIR": str(reports)},
    )
    loaded = [json.loads(path.read_text()) for path in sorted(reports.glob("rank*.json"))]
    return {r["rank"]: r for r in loaded}


def test_two_process_ddp_reaches_the_single_process_loss(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    single = run(script, sys.executable)[0]
    ranks = run(script, sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2")
    assert set(ranks) == {0, 1}
    assert ranks[0]["params"] == ranks[1]["params"]  # lockstep: both ranks hold the same model
    assert ranks[0]["student_params"] == ranks[1]["student_params"]
    # Same rows per step and the same averaged update; only the dropout masks differ between the runs.
    for a, b in zip(ranks[0]["losses"], single["losses"], strict=True):
        assert abs(a - b) <= 0.05 * b, (ranks[0]["losses"], single["losses"])
