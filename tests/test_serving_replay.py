"""``eval prequential --serving``: the serving path is scored on the same clicks as the learners,
and retrained models are loaded as the replay goes."""

import pytest

from stream.sources.synthetic import synthetic_events
from streamrec.serving_replay import replay_with_serving
from tests.conftest import small_world, with_section


def test_the_serving_path_is_scored_on_every_click_and_retrained_models_serve(cfg):
    cfg = with_section(cfg, "train", model="pointwise", epochs=1, validation_clicks=200)
    cfg = with_section(cfg, "worker", prequential_every=1)
    events = list(synthetic_events(small_world(n_sessions=600)))
    result = replay_with_serving(events, cfg, retrain_every=2500, select_clicks=200)
    serving = result["serving"]
    assert serving["scored_clicks"] == result["item_knn"]["scored_clicks"] > 0
    versions = [m["version"] for m in serving["models"]]
    assert versions == list(range(1, len(events) // 2500 + 1))
    assert [m["serving"] for m in serving["models"]] == versions  # every promoted version was loaded
    assert serving["fallbacks"].get("no_model", 0) > 0  # the clicks before the first model
    # The serving path ranks: worlds of seeds 3, 4 and 5 gave 1.41x, 1.57x and 1.51x popularity's recall@10.
    assert serving["recall@10"] >= 1.2 * result["popularity"]["recall@10"]
    assert serving["best_stream_learner"] in result
    # The serving path ranked with the blend it learned from the clicks, starting from the configured one.
    start = result["_run"]["blend_start"]
    assert set(serving["learned_blend"]) == set(start) and serving["learned_blend"] != start
    selection = result["blend_selection"]
    assert selection["after_clicks"] == serving["scored_clicks"] - 200
    assert set(selection["recall@10_after_selection"]) >= {"serving, chosen blend", "item_knn"}
    # The paired lead is taken on exactly the clicks both were scored on, so it is the difference of the recalls.
    lead = serving["recall@10_lead_over_best_stream_learner"]
    best = result[serving["best_stream_learner"]]["recall@10"]
    assert lead["clicks"] == serving["scored_clicks"]
    assert lead["lead"] == pytest.approx(serving["recall@10"] - best, abs=1e-4)
    assert lead["low"] <= lead["lead"] <= lead["high"]
    after = selection["recall@10_lead_after_selection"]["chosen blend"]
    assert after["clicks"] == selection["after_clicks"]
    assert after["lead"] == pytest.approx(
        selection["recall@10_after_selection"]["serving, chosen blend"]
        - selection["recall@10_after_selection"][selection["best_stream_learner_after_selection"]],
        abs=1e-4,
    )


def test_the_replay_teaches_the_blend_exactly_as_a_serving_worker_does(cfg):
    """Same clicks, same sampling, same candidates: the replay's learned weights are the ones a worker
    that calls Scorer.learn_click before each click would reach (item lists rebuilt per request in both)."""
    from serving.scorer import Scorer
    from stream.processor import PartitionProcessor

    # Clicks and conversions only, like MovieLens: a user's first event is a click, which a new user's
    # trending candidates may hold.
    events = [e for e in synthetic_events(small_world(n_sessions=400)) if e.type != "impression"]
    result = replay_with_serving(events, cfg, retrain_every=len(events) + 1, select_clicks=100)
    live_cfg = with_section(cfg, "serving", item_lists_refresh_s=1e-9)
    proc, scorer = PartitionProcessor(live_cfg), Scorer(live_cfg.serving)
    for event in events:
        if event.type == "click" and proc.accepts(event):
            scorer.learn_click(proc, event)
        proc.process(event)
    assert proc.blend.clicks_learned > 50
    assert result["serving"]["learned_blend"] == {name: round(w, 4) for name, w in proc.blend.weights.items()}


def test_retrained_sequence_students_are_loaded_and_scored_from_the_stream_state(cfg):
    cfg = with_section(cfg, "train", model="sequence", sequence_epochs=2, validation_clicks=100)
    cfg = with_section(cfg, "worker", prequential_every=1)
    events = list(synthetic_events(small_world(n_sessions=600)))
    result = replay_with_serving(events, cfg, retrain_every=2500, select_clicks=200)
    serving = result["serving"]
    versions = [m["version"] for m in serving["models"]]
    assert versions == list(range(1, len(events) // 2500 + 1))
    assert [m["serving"] for m in serving["models"]] == versions
    assert {m["model"] for m in serving["models"]} == {"sequence"}
    assert serving["fallbacks"].get("no_model", 0) < serving["scored_clicks"]
    # The blend learns a signal's weight only from its differences between candidates: the sequence
    # student's scores reached the ranking.
    assert serving["learned_blend"]["student"] != result["_run"]["blend_start"]["student"]


def test_the_student_is_retrained_on_drift_and_every_n_events_since_the_last_time(cfg, tmp_path):
    """As a live trainer's triggers (offline.schedule): a drift detection retrains at the next
    event, detections at once retrain once, and the event count restarts at each retraining."""
    from types import SimpleNamespace

    from stream.drift import DriftMonitor
    from streamrec.quality.replay import ServingPath

    def retrainings(on_drift: bool, every: int = 100) -> list[tuple[int, str]]:
        path = ServingPath(cfg, every, tmp_path, on_drift=on_drift)
        done: list[tuple[int, str]] = []
        path._retrain = lambda why: done.append((path._seen, why))  # type: ignore[method-assign]
        monitor = DriftMonitor()
        proc = SimpleNamespace(drift={"item_knn": monitor, "isgd_mf": DriftMonitor()})
        for n in range(250):
            monitor.detections += [n] * {30: 1, 170: 2}.get(n, 0)  # fired on the event before n
            path.before(proc, None)  # type: ignore[arg-type]
        return done

    assert retrainings(True) == [(30, "drift"), (130, "events"), (170, "drift")]
    assert retrainings(False) == [(100, "events"), (200, "events")]
    assert retrainings(True, every=0) == []  # no student at all
