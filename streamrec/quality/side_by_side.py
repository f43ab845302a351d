"""RecBole 1.2.1 and streamrec side by side on identical data, in one table (issue 17).

    ./run recbole [--models Pop,ItemKNN,BPR,LightGCN,SASRec] [--seeds 0,1,2] [--output FILE]

1. ``recbole_split`` exports MovieLens-100K's global temporal 8:1:1 split as RecBole atomic files;
2. ``recbole_runner.py`` trains RecBole's models on those files in RecBole's own virtual environment
   (``./run`` sets up ``.venv-recbole``), and writes each sequential model's rank of every test point;
3. ours on the same split: the stream learners by the general protocol (``recbole_split``), the
   sequence teacher and its distilled student by the sequential one (``recbole_sequential``) at
   each training seed, with the student's share of the teacher's NDCG, size and ONNX speed;
4. one table, and the teacher's and the student's lead over each RecBole sequential model on the
   same test points, paired, with 95 % intervals that resample users.

Two protocols, as RecBole has them: a general model ranks once per test user, against the user's
set of test items, with their train and valid items masked; a sequential model ranks once per test
click with a history, against that click's item, nothing masked. Figures of the two protocols do
not compare with each other.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stream.config import load_config
from stream.events import Event
from stream.processor import LEARNERS
from streamrec.provenance import run_stamp
from streamrec.quality.recbole_sequential import PointRanks, evaluate_sequence_models, paired
from streamrec.quality.recbole_split import evaluate_split, export_split

log = logging.getLogger(__name__)

RUNNER = Path(__file__).with_name("recbole_runner.py")
DEFAULT_MODELS = "Pop,ItemKNN,BPR,LightGCN,SASRec"


def run_recbole(recbole_python: Path, split_json: Path, models: str, seed: int, work: Path) -> dict[str, Any]:
    """The runner's report; a sequential model's test ranks are read into ``report["ranks"][model]``."""
    out = work / "recbole.json"
    # absolute, not resolved: a venv's python is a symlink that must stay the venv's
    command = [str(recbole_python.absolute()), str(RUNNER), "--config-json", str(split_json), "--models", models]
    command += ["--seed", str(seed), "--out", str(out), "--ranks-dir", str(work / "ranks")]
    log.info("running RecBole: %s", " ".join(command))
    # cwd: RecBole writes log/ and log_tensorboard/ into the working directory, whatever its config says
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=work)
    report: dict[str, Any] = json.loads(out.read_text())
    report["ranks"] = {path.stem: read_ranks(path) for path in sorted((work / "ranks").glob("*.tsv"))}
    return report


def read_ranks(path: Path) -> PointRanks:
    """The runner's ``user<TAB>item<TAB>rank`` rows."""
    rows = [line.split("\t") for line in path.read_text().splitlines()[1:]]
    return PointRanks([r[0] for r in rows], [r[1] for r in rows], np.array([int(r[2]) for r in rows]))


def side_by_side(
    events: Sequence[Event],
    recbole_python: Path | None,
    models: str,
    seeds: Sequence[int],
    recbole_seed: int = 2020,
    k: int = 10,
) -> dict[str, Any]:
    """Every figure of the table; RecBole is left out when ``recbole_python`` is None."""
    with tempfile.TemporaryDirectory(prefix="streamrec-recbole-") as tmp:
        work = Path(tmp)
        general = evaluate_split(events, load_config(env={}), k, list(LEARNERS))
        general["split"] = export_split(events, work / "data").to_dict()
        split_json = work / "split.json"
        split_json.write_text(json.dumps(general))
        recbole = run_recbole(recbole_python, split_json, models, recbole_seed, work) if recbole_python else None
    from offline.sequence_fit import SequenceFitSettings

    sequence = {seed: evaluate_sequence_models(events, SequenceFitSettings(seed=seed, k=k), k=k) for seed in seeds}
    return {"k": k, "general": general, "recbole": recbole, "sequence": sequence}


def leads(result: dict[str, Any]) -> dict[str, dict[str, dict[int, Any]]]:
    """Teacher's and student's paired lead over each RecBole sequential model, per training seed."""
    recbole, k = result["recbole"], result["k"]
    if not recbole:
        return {}
    return {
        f"{who} - {model}": {seed: paired(r["ranks"][who], ranks, k) for seed, r in result["sequence"].items()}
        for model, ranks in recbole["ranks"].items()
        for who in ("teacher", "student")
    }


def table(result: dict[str, Any]) -> str:
    """The figures as text: both protocols, then the paired leads."""
    k, general, recbole = result["k"], result["general"], result["recbole"]
    r, n = f"recall@{k}", f"ndcg@{k}"
    lines = [f"MovieLens-100K, RecBole's global temporal 8:1:1 split; {r} and {n} on the test part", ""]
    lines.append("general protocol: one ranking per test user, train and valid items masked")
    for name, f in general["rankers"].items():
        lines.append(f"  streamrec {name:<24} {f[r]['estimate']:.4f}  {f[n]['estimate']:.4f}")
    for name, f in (recbole or {}).get("models", {}).items():
        if "error" in f:
            lines.append(f"  RecBole {name:<26} failed: {f['error']}")
        elif f.get("model_type") != "SEQUENTIAL":
            lines.append(f"  RecBole {name:<26} {f['test_' + r]:.4f}  {f['test_' + n]:.4f}")
    lines += ["", "sequential protocol: one ranking per test click with a history, nothing masked"]
    for name, ranks in (recbole or {}).get("ranks", {}).items():
        f = ranks.log(name).figures(name, k)
        lines.append(f"  RecBole {name:<26} {_cell(f, r)}  {_cell(f, n)}")
    for seed, s in result["sequence"].items():
        for who in ("teacher", "student"):
            f = s[who]
            lines.append(
                f"  streamrec {who}, seed {seed:<10} {_cell(f, r)}  {_cell(f, n)}  {f['parameters']:,} parameters"
            )
    lines += ["", f"student against teacher (same points; ONNX per request at {_candidates(result)} candidates)"]
    for seed, s in result["sequence"].items():
        share = s[f"student_share_of_teacher_{n}"]
        lines.append(
            f"  seed {seed}: {n} {share['estimate']:.1%} [{share['low']:.1%}, {share['high']:.1%}] of the "
            f"teacher's, {s['parameter_ratio']:.1%} of its parameters, {s['onnx_speedup']:.1f}x its ONNX speed"
        )
    for pair, per_seed in leads(result).items():
        lines += ["", f"{pair.replace(' - ', ' - RecBole ')}, same points, 95 % intervals resampling users"]
        for seed, lead in per_seed.items():
            lines.append(f"  seed {seed}: {r} {_lead(lead[r])}  {n} {_lead(lead[n])}  ({lead['points']} points)")
    return "\n".join(lines)


def _candidates(result: dict[str, Any]) -> int | str:
    return next((s["onnx_candidates"] for s in result["sequence"].values()), "?")


def _cell(f: dict[str, Any], metric: str) -> str:
    """A RankLog figure with its interval."""
    low, high = f[f"{metric}_interval"]
    return f"{f[metric]:.4f} [{low:.4f}, {high:.4f}]"


def _lead(f: dict[str, Any]) -> str:
    return f"{f['lead']:+.4f} [{f['low']:+.4f}, {f['high']:+.4f}]"


def to_json(result: dict[str, Any], argv: Sequence[str]) -> dict[str, Any]:
    """The result without per-point ranks, with the leads and a run stamp (``argv``: this module's)."""
    sequence = {seed: {key: v for key, v in s.items() if key != "ranks"} for seed, s in result["sequence"].items()}
    recbole = result["recbole"] and {key: v for key, v in result["recbole"].items() if key != "ranks"}
    return {
        **result,
        "sequence": sequence,
        "recbole": recbole,
        "leads": leads(result),
        "_run": {
            **run_stamp("./run recbole"),
            "command": " ".join(["python -m streamrec.quality.side_by_side", *argv]),
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    from stream.sources.movielens import movielens_events

    parser = argparse.ArgumentParser(prog="./run recbole", description=__doc__.splitlines()[0])
    parser.add_argument("--recbole-python", type=Path, help="RecBole's venv python (./run passes it); none: ours only")
    parser.add_argument("--models", default=DEFAULT_MODELS, help="RecBole models, comma-separated")
    parser.add_argument("--seeds", default="0,1,2", help="the sequence teacher's training seeds")
    parser.add_argument("--recbole-seed", type=int, default=2020, help="RecBole's seed (its default)")
    parser.add_argument("--output", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    seeds = [int(s) for s in args.seeds.split(",")]
    result = side_by_side(list(movielens_events()), args.recbole_python, args.models, seeds, args.recbole_seed)
    print(table(result))
    if args.output:
        used = sys.argv[1:] if argv is None else list(argv)
        args.output.write_text(json.dumps(to_json(result, used), indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
