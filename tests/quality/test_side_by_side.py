"""The side-by-side's own parts: RecBole's per-point ranks read back, paired with the teacher's on
the same test points, and one table of both protocols."""

import json
from pathlib import Path

import numpy as np

from streamrec.quality.recbole_sequential import PointRanks
from streamrec.quality.side_by_side import paired, read_ranks, run_recbole, table, to_json

FAKE_RUNNER = """#!/usr/bin/env python3
import json, os, sys
args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
os.makedirs(args["--ranks-dir"])
with open(os.path.join(args["--ranks-dir"], "SASRec.tsv"), "w") as f:
    f.write("user\\titem\\trank\\nu1\\ti1\\t4\\n")
with open(args["--out"], "w") as f:
    json.dump({"models": {"SASRec": {"model_type": "SEQUENTIAL"}}, "cwd": os.getcwd()}, f)
"""


def ranks(rows):
    users, items, r = zip(*rows)
    return PointRanks(list(users), list(items), np.array(r))


def test_runner_ranks_read_back(tmp_path):
    path = tmp_path / "SASRec.tsv"
    path.write_text("user\titem\trank\nu1\ti9\t0\nu2\ti3\t17\n")
    got = read_ranks(path)
    assert (got.users, got.items, got.ranks.tolist()) == (["u1", "u2"], ["i9", "i3"], [0, 17])


def test_recbole_runs_in_the_work_directory_from_a_relative_interpreter(tmp_path, monkeypatch):
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(FAKE_RUNNER)
    (bin_dir / "python").chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(tmp_path)
    report = run_recbole(Path("venv/bin/python"), work / "split.json", "SASRec", 2020, work)
    assert report["cwd"] == str(work)  # RecBole's log/ and log_tensorboard/ land there
    assert report["ranks"]["SASRec"].ranks.tolist() == [4]


def test_leads_pair_the_same_points_whatever_their_order():
    a = ranks([("u3", "w", 1), ("u1", "x", 0), ("u1", "y", 3), ("u2", "z", 20)])
    b = ranks([("u2", "z", 2), ("u1", "y", 30), ("u1", "x", 0)])  # no (u3, w)
    lead = paired(a, b, k=10)
    assert lead["points"] == 3 and lead["unmatched"] == (1, 0)
    # recall: a hits x, y; b hits x, z -> same total; a leads on u1 by one and trails on u2 by one
    assert lead["recall@10"]["lead"] == 0.0
    ndcg_a = 1 + 1 / np.log2(5)
    ndcg_b = 1 + 1 / np.log2(4)
    assert np.isclose(lead["ndcg@10"]["lead"], round((ndcg_a - ndcg_b) / 3, 4))


def test_the_table_shows_both_protocols_the_student_and_the_leads():
    teacher = ranks([("u1", "x", 0), ("u2", "y", 4), ("u3", "z", 12)])
    student = ranks([("u1", "x", 0), ("u2", "y", 12), ("u3", "z", 12)])
    sasrec = ranks([("u1", "x", 1), ("u2", "y", 11), ("u3", "z", 12)])
    cell = {"estimate": 0.1, "low": 0.05, "high": 0.15}
    share = {"estimate": 0.9, "low": 0.8, "high": 1.0}
    result = {
        "k": 10,
        "general": {"rankers": {"item_knn": {"recall@10": cell, "ndcg@10": cell}}},
        "recbole": {
            "models": {"Pop": {"model_type": "TRADITIONAL", "test_recall@10": 0.05, "test_ndcg@10": 0.2}},
            "ranks": {"SASRec": sasrec},
        },
        "sequence": {
            0: {
                "teacher": {**teacher.log("t").figures("t", 10, resamples=99), "parameters": 1000},
                "student": {**student.log("s").figures("s", 10, resamples=99), "parameters": 100},
                "student_share_of_teacher_ndcg@10": share,
                "parameter_ratio": 0.1,
                "onnx_speedup": 6.0,
                "onnx_candidates": 350,
                "ranks": {"teacher": teacher, "student": student},
            }
        },
    }
    text = table(result)
    assert "streamrec item_knn" in text and "RecBole Pop" in text and "RecBole SASRec" in text
    assert "streamrec student, seed 0" in text and "at 350 candidates" in text
    assert "seed 0: ndcg@10 90.0% [80.0%, 100.0%] of the teacher's, 10.0% of its parameters, 6.0x" in text
    assert "teacher - RecBole SASRec" in text and "student - RecBole SASRec" in text
    assert "seed 0: recall@10 +0.3333" in text and "seed 0: recall@10 +0.0000" in text
    saved = json.loads(json.dumps(to_json(result, ["--seeds", "0"]), default=str))
    assert "ranks" not in saved["sequence"]["0"] and "ranks" not in saved["recbole"]
    assert saved["leads"]["teacher - SASRec"]["0"]["points"] == 3
    assert saved["_run"]["command"].endswith("side_by_side --seeds 0")
