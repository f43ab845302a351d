"""Protocol (d)'s RecBole split: the sizes RecBole's formula gives, files RecBole's loader reads
back as the same clicks, and its full-sort Recall/NDCG on cases worked out by hand."""

import csv
import math

import numpy as np
import pytest

from stream.events import Event
from streamrec.quality.recbole_split import (
    FullSort,
    evaluate_split,
    export_split,
    full_sort,
    rank_users,
    split_clicks,
    split_sizes,
    train_counts,
)

T0 = 880_000_000_000  # ms, inside the schema's range


def clicks(*rows: tuple[str, str, str, int]) -> list[Event]:
    """(event id, user, item, ms after T0) -> click events, in the given (file) order."""
    return [Event(event_id=e, ts=T0 + t, user_id=u, item_id=i, type="click") for e, u, i, t in rows]


@pytest.mark.parametrize(
    ("total", "sizes"),
    [
        (100_000, (80_000, 10_000, 10_000)),
        (95, (77, 9, 9)),  # int(9.5) = 9 each, the rest to train
        (19, (17, 1, 1)),
        (7, (5, 1, 1)),  # 0.7 of an interaction: one each, taken from train
        (2, (1, 0, 1)),  # train keeps its last one: test is filled first, valid gets none
        (1, (1, 0, 0)),
        (0, (0, 0, 0)),
    ],
)
def test_split_sizes_follow_recboles_formula(total, sizes):
    assert split_sizes(total) == sizes


def test_clicks_are_ordered_by_time_with_ties_in_file_order_and_cut_by_count():
    # 12 clicks -> (10, 1, 1). The three latest share a timestamp, so the cut runs through a tie;
    # their file order (y, z, x) is neither the order of their ids, users nor items.
    log = clicks(
        ("c", "u1", "i3", 30),
        ("b", "u2", "i2", 10),
        ("y", "u3", "i8", 90),
        ("a", "u1", "i1", 10),
        ("z", "u1", "i7", 90),
        ("d", "u2", "i4", 40),
        ("e", "u3", "i5", 50),
        ("f", "u1", "i6", 60),
        ("x", "u2", "i9", 90),
        ("g", "u4", "i1", 70),
        ("h", "u4", "i2", 80),
        ("i", "u4", "i3", 85),
    )
    log.insert(3, Event(event_id="b-cv", ts=T0 + 10, user_id="u2", item_id="i2", type="conversion"))
    split = split_clicks(log)
    assert [e.event_id for e in split["train"]] == ["b", "a", "c", "d", "e", "f", "g", "h", "i", "y"]
    assert [e.event_id for e in split["valid"]] == ["z"]
    assert [e.event_id for e in split["test"]] == ["x"]


def read_like_recbole(path):
    """RecBole 1.2.1's Dataset._load_feat: the header line less its last character, ``field:type``
    per column; then pandas.read_csv(delimiter="\\t"), tokens as str, floats as float64."""
    with open(path, encoding="utf-8") as fh:
        head = fh.readline()[:-1]
        rows = list(csv.reader(fh, delimiter="\t"))
    fields = [f.split(":") for f in head.split("\t")]
    assert fields == [["user_id", "token"], ["item_id", "token"], ["timestamp", "float"]]
    return [(u, i, float(t)) for u, i, t in rows]


def test_the_files_read_back_as_the_same_clicks_in_the_same_parts(tmp_path):
    log = clicks(*((f"e{n}", f"u{n % 4}", f"item {n % 5}", (37 * n) % 23 * 1000 + (n == 5) * 250) for n in range(23)))
    info = export_split(log, tmp_path, name="tiny")
    split = split_clicks(log)
    assert info.interactions == {"train": 19, "valid": 2, "test": 2, "all": 23}
    assert info.recbole_config()["data_path"] == str(tmp_path)
    for part in ("train", "valid", "test"):
        path = tmp_path / "tiny" / f"tiny.{part}.inter"
        assert info.paths[part] == str(path)
        assert read_like_recbole(path) == [(e.user_id, e.item_id, e.ts / 1000) for e in split[part]]


@pytest.mark.parametrize("bad", ["NA", "a\tb", 'say "hi"', " padded"])
def test_ids_that_would_not_read_back_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="read back"):
        export_split(clicks(("e", bad, "i", 0)), tmp_path, name="bad")


def test_a_dataset_named_ml_100k_is_refused_since_recbole_would_read_its_own_copy(tmp_path):
    with pytest.raises(ValueError, match="bundled"):
        export_split(clicks(("e", "u", "i", 0)), tmp_path, name="ml-100k")


def test_recall_and_ndcg_are_recboles_on_a_case_worked_by_hand():
    # Six items scored 9..4 for everyone; k = 3.
    # ann: item 0 masked, so the top 3 are 1, 2, 3; truth {1, 4}: one hit at rank 1.
    #      recall 1/2; NDCG = 1 / (1 + 1/log2 3) (ideal: two hits).
    # bob: item 1 masked, so the top 3 are 0, 2, 3; truth {0, 2, 3, 5}: hits at ranks 1-3.
    #      recall 3/4 (of four, not of k); NDCG = 1 (the ideal stops at k = 3 hits).
    t = FullSort(
        items=[f"i{n}" for n in range(6)],
        users=["ann", "bob"],
        truth=[np.array([1, 4]), np.array([0, 2, 3, 5])],
        history=[np.array([0]), np.array([1])],
    )
    recall, ndcg = rank_users(lambda user: np.arange(9.0, 3.0, -1.0), t, k=3)
    assert recall == pytest.approx([0.5, 0.75])
    assert ndcg == pytest.approx([1 / (1 + 1 / math.log2(3)), 1.0])


def test_the_masked_history_is_train_and_valid_less_the_ground_truth():
    log = clicks(*((f"t{n}", "u1", f"i{n}", n) for n in range(8)), ("v", "u1", "i8", 8), ("w", "u1", "i3", 9))
    t = full_sort(split_clicks(log))  # 10 clicks -> (8, 1, 1); i3, seen in train, is clicked again in test
    assert t.users == ["u1"] and [t.items[i] for i in t.truth[0]] == ["i3"]
    assert sorted(t.items[i] for i in t.history[0]) == ["i0", "i1", "i2", "i4", "i5", "i6", "i7", "i8"]


# 10 clicks -> (8, 1, 1): train counts p 3, q 2, r 2, s 1; valid is u4 on p, test u1 on r.
POP_LOG = clicks(
    ("1", "u1", "p", 1),
    ("2", "u2", "p", 2),
    ("3", "u3", "p", 3),
    ("4", "u1", "q", 4),
    ("5", "u2", "q", 5),
    ("6", "u3", "r", 6),
    ("7", "u2", "r", 7),
    ("8", "u4", "s", 8),
    ("9", "u4", "p", 9),
    ("10", "u1", "r", 10),
)


def test_pop_counts_the_training_part_only():
    split = split_clicks(POP_LOG)
    t = full_sort(split)
    assert t.items == ["p", "q", "r", "s"]
    assert train_counts(split, t.items).tolist() == [3, 2, 2, 1]


def test_pop_skips_the_users_history_end_to_end(cfg):
    # u1 saw p and q, so Pop's top 2 for u1 is r, s: a hit at rank 1 (unmasked: p, q, a miss).
    result = evaluate_split(POP_LOG, cfg, k=2, resamples=99)
    pop = result["rankers"]["pop"]
    assert pop["recall@2"]["estimate"] == 1.0 and pop["ndcg@2"]["estimate"] == 1.0
    assert result["test_users"] == 1
    assert {"popularity", "item_knn", "isgd_mf", "click_model"} <= set(result["rankers"])
