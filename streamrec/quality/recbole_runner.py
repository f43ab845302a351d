"""Train RecBole 1.2.1 models on streamrec's exported global temporal 8:1:1 split and report them.

Runs in RecBole's own virtual environment (``./run recbole`` sets up ``.venv-recbole`` and calls
this through ``streamrec.quality.side_by_side``); it imports only the standard library, numpy,
torch and RecBole, never streamrec::

    python recbole_runner.py --config-json split.json --models Pop,ItemKNN,BPR,LightGCN,SASRec \
        --seed 2020 --out results.json [--ranks-dir DIR]

``--config-json`` is the JSON that ``python -m streamrec.quality.recbole_split`` prints: its
``split.recbole_config`` is RecBole's ``config_dict`` for the exported atomic files (dataset,
data_path, ``benchmark_filename: [train, valid, test]``, load_col, eval_args). For each model the
runner writes test Recall@10 and NDCG@10 (RecBole's full-sort evaluation, best-validation
checkpoint), the best valid NDCG@10 and its epoch, the epochs run, wall seconds and the number of
trainable parameters; the file is rewritten after every model, so a long run keeps what it has.
A SIGINT (``kill -INT PID``, honoured even when the runner was started in the background, where
shells ignore it) during training stops that model's training and tests its best
checkpoint so far, marked ``interrupted: true`` (so not RecBole's default early stopping).
RecBole's default hyperparameters are kept except for these settings:

* ``metrics: [Recall, NDCG]``, ``topk: [10]``, ``valid_metric: NDCG@10``: the figures compared,
  and early stopping on the same metric.
* ``seed`` (from ``--seed``) and ``reproducibility: True``: a rerun gives the same figures.
* ``--threads`` (every core by default) for torch: figures do not depend on it, wall times do.
* ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1``: torch >= 2.6 loads checkpoints weights-only, and
  RecBole 1.2.1's checkpoints (reloaded for the test evaluation) hold its Config object.
* numpy aliases (``np.bool8``, ``np.float_``, ``np.int``, ``np.float``, ``np.bool``, ``np.long``)
  restored before importing RecBole: its evaluator and layers use names numpy 1.24 removed.
* ``checkpoint_dir`` beside ``--out``, ``show_progress: False``: no files in the working
  directory's ``saved/``, no progress bars in the log. RecBole still writes ``log/`` and
  ``log_tensorboard/`` into the working directory (hard-coded), so the side-by-side runs this in
  its temporary directory.
* Sequential models (SASRec): ``train_neg_sample_args: None`` and ``loss_type: CE`` (softmax over
  all items, RecBole's recommended setting for SASRec) and ``MAX_ITEM_LIST_LENGTH: 50``. RecBole
  reads benchmark files of a sequential model as already augmented (``SequentialDataset`` skips
  its own augmentation when ``benchmark_filename`` is set and needs an ``item_id_list`` column), so
  the runner writes that form of the same split: every click of each part becomes a row whose
  history is the user's previous clicks (in the split's own order, across parts, at most 50);
  a user's very first click has no history and is no row, as in RecBole's own augmentation.
  ``alias_of_item_id: [item_id_list]`` puts the history in the item ids' index.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # before torch is imported

import numpy as np
import torch

# numpy >= 1.24 removed these names (np.bool8 and np.float_ only from numpy 2); RecBole 1.2.1 and
# the ray it imports still use them. Only missing names are set, so numpy 1.26 warns about none.
NUMPY_ALIASES = {
    "bool8": np.bool_,
    "float_": np.float64,
    "int": np.int_,
    "float": np.float64,
    "bool": np.bool_,
    "long": np.int_,
}


def restore_numpy_aliases() -> None:
    """Set the NUMPY_ALIASES this numpy lacks (before RecBole is imported)."""
    for name, alias in NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, alias)


restore_numpy_aliases()

import recbole  # noqa: E402
from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import ModelType, get_model, get_trainer, init_logger, init_seed  # noqa: E402

METRICS = {"metrics": ["Recall", "NDCG"], "topk": [10], "valid_metric": "NDCG@10"}
SEQUENTIAL = {"train_neg_sample_args": None, "loss_type": "CE", "MAX_ITEM_LIST_LENGTH": 50}
PARTS = ("train", "valid", "test")
LIST_FIELD = "item_id_list"  # RecBole's ITEM_ID_FIELD + LIST_SUFFIX defaults


def read_part(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one RecBole atomic file (tab-separated, typed header)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[0], rows[1:]


def write_sequence_files(split: dict[str, Any], root: Path) -> dict[str, Any]:
    """Write the split's parts augmented for sequential models; return their config_dict."""
    name, source = split["dataset"], Path(split["data_path"]) / split["dataset"]
    target = root / name
    target.mkdir(parents=True, exist_ok=True)
    histories: dict[str, list[str]] = {}
    counts: dict[str, dict[str, int]] = {}
    for part in PARTS:
        header, rows = read_part(source / f"{name}.{part}.inter")
        fields = [column.split(":")[0] for column in header]
        user, item = fields.index("user_id"), fields.index("item_id")
        out_rows = []
        for row in rows:
            if " " in row[item]:
                raise ValueError(f"item token {row[item]!r} holds token_seq's separator")
            history = histories.setdefault(row[user], [])
            if history:
                out_rows.append([*row, " ".join(history[-SEQUENTIAL["MAX_ITEM_LIST_LENGTH"] :])])
            history.append(row[item])
        with (target / f"{name}.{part}.inter").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
            writer.writerow([*header, f"{LIST_FIELD}:token_seq"])
            writer.writerows(out_rows)
        counts[part] = {"clicks": len(rows), "rows": len(out_rows)}
    load_col = dict(split.get("load_col") or {})
    load_col["inter"] = [*load_col.get("inter", ["user_id", "item_id"]), LIST_FIELD]
    return {
        **split,
        **SEQUENTIAL,
        "data_path": str(root),
        "load_col": load_col,
        "alias_of_item_id": [LIST_FIELD],
        "sequence_rows": counts,
    }


def write_ranks(trainer: Any, test_data: Any, path: Path) -> None:
    """A sequential model's 0-based rank of each test row's item, as RecBole's full sort scores it
    (padding masked; ties count for the item), one ``user<TAB>item<TAB>rank`` line per row: what
    the side-by-side pairs with streamrec's ranks of the same points."""
    dataset = test_data._dataset
    lines = ["user\titem\trank"]
    trainer.model.eval()
    with torch.no_grad():
        for batch in test_data:
            interaction, scores, positive_u, positive_i = trainer._full_sort_batch_eval(batch)
            target = scores[positive_u, positive_i]
            ranks = (scores[positive_u] > target[:, None]).sum(dim=1).tolist()
            users = dataset.id2token(dataset.uid_field, interaction[dataset.uid_field][positive_u].cpu())
            items = dataset.id2token(dataset.iid_field, positive_i.cpu())
            lines += [f"{u}\t{i}\t{r}" for u, i, r in zip(users, items, ranks)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_model(model_name: str, config_dict: dict[str, Any], ranks_dir: Path | None = None) -> dict[str, Any]:
    """Train one model with RecBole's own pipeline; return its figures (and, for a sequential model,
    write its test ranks into ``ranks_dir``)."""
    started = time.perf_counter()
    config = Config(model=model_name, dataset=config_dict["dataset"], config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    logging.getLogger().handlers.clear()  # init_logger's basicConfig applies only once otherwise
    init_logger(config)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

    best_epoch = {"epoch": -1}

    def note_best(epoch: int, _score: float) -> None:
        if trainer.cur_step == 0:  # early_stopping just took this score as the best
            best_epoch["epoch"] = epoch

    fit_started = time.perf_counter()
    interrupted = False
    try:
        trainer.fit(train_data, valid_data, saved=True, show_progress=False, callback_fn=note_best)
    except KeyboardInterrupt:  # SIGINT stops training early: test the best checkpoint so far
        interrupted = True
    fit_seconds = time.perf_counter() - fit_started
    test = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
    if ranks_dir is not None and config["MODEL_TYPE"] == ModelType.SEQUENTIAL:
        write_ranks(trainer, test_data, ranks_dir / f"{model_name}.tsv")
    return {
        "test_recall@10": float(test["recall@10"]),
        "test_ndcg@10": float(test["ndcg@10"]),
        "best_valid_ndcg@10": float(trainer.best_valid_score),
        "best_epoch": best_epoch["epoch"],
        "epochs": len(trainer.train_loss_dict),
        "fit_seconds": round(fit_seconds, 1),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "train_rows": len(train_data._dataset),
        "test_rows": len(test_data._dataset),
        "model_type": config["MODEL_TYPE"].name,
        "interrupted": interrupted,
    }


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a background start inherits SIG_IGN
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config-json", type=Path, required=True, help="recbole_split's JSON")
    parser.add_argument("--models", default="Pop,ItemKNN,BPR,LightGCN,SASRec")
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ranks-dir", type=Path, help="write each sequential model's test ranks here")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch's threads")
    parser.add_argument("--epochs", type=int, help="at most this many epochs (RecBole's default: 300)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    exported = json.loads(args.config_json.read_text(encoding="utf-8"))
    split = exported["split"]["recbole_config"]
    work = args.out.resolve().parent / f"{args.out.stem}-recbole"
    common = {
        **METRICS,
        "seed": args.seed,
        "reproducibility": True,
        "checkpoint_dir": str(work / "saved"),
        "show_progress": False,
        **({"epochs": args.epochs} if args.epochs else {}),
    }
    report: dict[str, Any] = {
        "split": split["dataset"],
        "seed": args.seed,
        "torch_threads": args.threads,
        "versions": {
            "recbole": recbole.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
        },
        "ours": {
            name: {m: v["estimate"] for m, v in figures.items() if isinstance(v, dict)}
            for name, figures in exported.get("rankers", {}).items()
        },
        "models": {},
    }
    sequence_config: dict[str, Any] | None = None
    for model_name in [m.strip() for m in args.models.split(",") if m.strip()]:
        model_class = get_model(model_name)
        config_dict = {**split, **common}
        if model_class.type == ModelType.SEQUENTIAL:
            if sequence_config is None:
                sequence_config = write_sequence_files(split, work / "sequence_data")
                report["sequence_rows"] = sequence_config.pop("sequence_rows")
            config_dict = {**sequence_config, **common}
        print(f"== {model_name}", file=sys.stderr, flush=True)
        try:
            report["models"][model_name] = run_model(model_name, config_dict, args.ranks_dir)
        except Exception as error:  # keep the other models' figures
            report["models"][model_name] = {"error": f"{type(error).__name__}: {error}"}
            logging.getLogger().exception("%s failed", model_name)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0 if all("error" not in r for r in report["models"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
