"""The sequence teacher on the exported split: its parts start where the general split's do, its
points are the clicks with a history, and its figures come with user-level intervals."""

import json

import numpy as np
import pytest

from offline.samples import Catalogue
from offline.sequence_distill import StudentSettings
from offline.sequence_fit import SequenceFitSettings
from offline.sequence_model import Shape
from offline.sequences import next_clicks, user_sequences
from stream.events import Event
from streamrec.quality.recbole_sequential import (
    ablation,
    evaluate_sequence_models,
    evaluate_sequence_teacher,
    part_bounds,
)
from streamrec.quality.recbole_split import split_clicks

T0 = 880_000_000_000


def cyclic_clicks(users: int = 60, per_user: int = 10, items: int = 20) -> list[Event]:
    """Users click items in one cycle (next = current + 3), interleaved in time, with conversions."""
    rng = np.random.default_rng(0)
    events = []
    for n in range(per_user):
        for u in range(users):
            start = (u * 7) % items
            t = T0 + (n * users + u) * 1000
            item = f"i{(start + 3 * n) % items}"
            events.append(Event(event_id=f"c{u}-{n}", ts=t, user_id=f"u{u}", item_id=item, type="click"))
            if rng.random() < 0.3:
                events.append(Event(event_id=f"v{u}-{n}", ts=t, user_id=f"u{u}", item_id=item, type="conversion"))
    return events


def test_parts_start_at_the_general_splits_first_valid_and_test_clicks():
    events = cyclic_clicks()
    bounds = part_bounds(events)
    ordered = sorted(events, key=lambda e: e.ts)
    split = split_clicks(events)
    assert ordered[bounds.valid_from].event_id == split["valid"][0].event_id
    assert ordered[bounds.test_from].event_id == split["test"][0].event_id


def test_each_test_click_with_a_history_is_one_point():
    events = cyclic_clicks()
    bounds = part_bounds(events)
    points = next_clicks(user_sequences(events, Catalogue()), 50, bounds.test_from)
    test = split_clicks(events)["test"]
    assert len(points) == len(test)  # every user clicked before the test part


def test_the_teacher_learns_the_cycle_and_reports_intervals_over_users():
    settings = SequenceFitSettings(epochs=25, batch=32, learning_rate=1e-2, patience=3)
    result = evaluate_sequence_teacher(cyclic_clicks(), settings, k=1, resamples=199)
    recall, (low, high) = result["recall@1"], result["recall@1_interval"]
    assert recall > 0.8, result["fit"]
    assert low <= recall <= high
    assert result["users"] == 60 and result["clicks"] == result["points"]["test"] == 60


def test_the_distilled_student_learns_it_too_with_its_share_size_and_speed_reported():
    settings = SequenceFitSettings(epochs=25, batch=32, learning_rate=1e-2, patience=3)
    student = StudentSettings(shape=Shape(dim=8, heads=1, blocks=1, dropout=0.0), fit=settings)
    result = evaluate_sequence_models(cyclic_clicks(), settings, student, k=1, resamples=199)
    assert result["student"]["recall@1"] > 0.8, result["student"]["fit"]
    share = result["student_share_of_teacher_ndcg@1"]
    assert share["low"] <= share["estimate"] <= share["high"]
    assert share["estimate"] == pytest.approx(result["student"]["ndcg@1"] / result["teacher"]["ndcg@1"], abs=1e-3)
    assert result["student"]["parameters"] < result["teacher"]["parameters"] / 4
    assert result["parameter_ratio"] == round(result["student"]["parameters"] / result["teacher"]["parameters"], 4)
    assert result["onnx_ms_per_request"]["student"] > 0 and result["onnx_candidates"] == 350
    assert "a" not in result["student"]  # the paired columns stay internal


def test_the_ablation_reports_each_variant_on_validation_only():
    settings = SequenceFitSettings(epochs=3, batch=32, learning_rate=1e-2, patience=3)
    student = StudentSettings(shape=Shape(dim=8, heads=1, blocks=1, dropout=0.0, encoder="gru"), fit=settings)
    result = ablation(cyclic_clicks(), settings, student)
    variants = {"labels_only", "soft_only", "rank_only", "hint_only", "served"}
    assert set(result["validation"]) == {"teacher", "teacher_single_task"} | {f"student_{v}" for v in variants}
    assert all(0.0 <= v["ndcg"] <= 1.0 and v["best_epoch"] >= 1 for v in result["validation"].values())
    assert "test" not in json.dumps(result)  # development figures only
