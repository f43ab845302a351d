"""``bench quality`` on a small exposure-biased world of a development seed: every protocol's figures
are there, are consistent with the log they came from, and rank the rankers as the world says."""

import numpy as np
import pytest

from streamrec.quality.bench import across_seeds, evaluate
from streamrec.quality.datasets import SEEDS, datasets, exposure
from streamrec.quality.table import prequential_table, render
from streamrec.reference import results
from tests.conftest import with_section


@pytest.fixture(scope="module")
def world():
    ds = exposure(SEEDS["development"][0], quick=True)
    return ds, ds.load()


@pytest.fixture(scope="module")
def result(world):
    from stream.config import load_config

    cfg = with_section(load_config(env={}), "train", model="pointwise", epochs=1, validation_clicks=200)
    ds, _ = world
    return evaluate(ds, cfg, k=10, serving=True)


def test_every_ranker_is_scored_on_every_click_of_the_log(world, result):
    _, events = world
    clicks = sum(e.type == "click" for e in events)
    rankers = result["prequential"]["rankers"]
    assert {"popularity", "trending", "item_knn", "isgd_mf", "click_model", "serving", "oracle"} <= set(rankers)
    assert result["prequential"]["clicks"] == clicks
    assert all(rankers[name]["clicks"] == clicks for name in ("popularity", "oracle", "serving", "item_knn"))


def test_the_serving_path_is_compared_with_item_knn_on_the_same_clicks(result):
    rankers = result["prequential"]["rankers"]
    lead = rankers["serving"]["recall@10_lead_over_item_knn"]
    assert lead["lead"] == pytest.approx(rankers["serving"]["recall@10"] - rankers["item_knn"]["recall@10"], abs=1e-4)
    assert lead["low"] <= lead["lead"] <= lead["high"]
    text = "\n".join(prequential_table(result, 10))
    assert "serving's lead over item_knn" in text


def test_the_served_rule_counts_the_worlds_re_clicks(world, result):
    _, events = world
    seen, again = set(), 0
    for e in events:
        if e.type == "click":
            again += (e.user_id, e.item_id) in seen
            seen.add((e.user_id, e.item_id))
    rule = result["prequential"]["served_rule"]
    assert rule["reclick_share"] == pytest.approx(again / rule["scored_clicks"], abs=1e-4) and again > 0


def test_the_oracle_is_the_ceiling_and_the_gap_is_measured_from_popularity(result):
    rankers = result["prequential"]["rankers"]
    oracle = rankers["oracle"]["recall@10"]
    assert all(f["recall@10"] <= oracle for f in rankers.values())
    assert rankers["oracle"]["gap_closed"] == 1.0 and rankers["popularity"]["gap_closed"] == 0.0
    lead = rankers["oracle"]["recall@10_lead_over_popularity"]
    assert lead["lead"] == pytest.approx(oracle - rankers["popularity"]["recall@10"], abs=1e-4)
    assert lead["low"] > 0


def test_the_logging_rate_is_the_logs_own_click_through_rate(world, result):
    _, events = world
    shown = sum(e.type == "impression" for e in events)
    clicks = sum(e.type == "click" for e in events)
    logging = result["counterfactual"]["popularity"]["click"]["logging"]["estimate"]
    assert logging == pytest.approx(clicks / shown, abs=1e-4)
    assert result["visits"] == len({e.context.request_id for e in events if e.type == "impression"})


def test_every_conversion_is_credited_with_its_click_and_sits_beside_it(world, result):
    _, events = world
    conversions = [e for e in events if e.type == "conversion"]
    figures = result["prequential"]["conversions"]
    assert figures["conversions"] == len(conversions) > 0 and figures["unmatched"] == 0 and figures["valued"]
    serving = figures["rankers"]["serving"]
    assert serving["conversions"] == len(conversions) and "recall@10_lead_over_popularity" in serving
    assert 0 < serving["recall@10"] <= 1 and 0 < serving["value_recall@10"] <= 1
    cf = result["counterfactual"]["serving"]
    shown = sum(e.type == "impression" for e in events)
    assert cf["conversion"]["logging"]["estimate"] == pytest.approx(len(conversions) / shown, abs=1e-4)
    revenue = sum(e.value for e in conversions)
    assert cf["value"]["logging"]["estimate"] == pytest.approx(revenue / shown, abs=1e-4)


def test_the_oracle_orders_each_slate_better_than_any_learner(result):
    gauc = {name: s["gauc"]["estimate"] for name, s in result["slate"].items()}
    assert gauc["oracle"] > max(v for name, v in gauc.items() if name != "oracle") + 0.1


def test_the_serving_path_was_retrained_and_served(result):
    serving = result["serving"]
    assert [m["version"] for m in serving["models"]] == [m["serving"] for m in serving["models"]] != []


def test_seeds_are_summarised_and_the_tables_render(result):
    summary = across_seeds([result, {**result, "seed": 99}], k=10)["exposure"]
    assert summary["seeds"] == [result["seed"], 99]
    assert summary["rankers"]["oracle"]["min"] == summary["rankers"]["oracle"]["max"]
    bench = {
        "_run": {"k": 10, "date": "d", "commit": "c", "dirty": False, "machine": "m", "command": "x", "seconds": 1.0},
        "datasets": [result],
        "across_seeds": {},
    }
    text = render(bench)
    assert "(a) next click" in text and "(b) slates" in text and "(c) self-normalised IPS" in text
    assert "(a) conversions" in text and "value / impression" in text and "logging policy" in text
    page = "\n".join(results.render_run("x", bench))
    assert "(a) conversions" in page and "| logging conversion rate |" in page


def test_development_and_evaluation_parts_never_share_a_seed_or_a_half():
    dev, ev = datasets("development", quick=False), datasets("evaluation", quick=False)

    def parts(data_sets):  # (family, generator seed or MovieLens-1M user slice)
        return {(d.name.split("/")[0], d.seed if d.user_slice is None else d.user_slice) for d in data_sets} - {
            ("ml-100k", None)
        }

    assert not parts(dev) & parts(ev)
    assert {"ml-1m"} <= {family for family, _ in parts(dev)} and {"ml-1m"} <= {family for family, _ in parts(ev)}
    assert all(d.held_out for d in ev if d.name.startswith("ml-1m/"))
    ml_dev, ml_ev = (next(d for d in part if d.name == "ml-100k") for part in (dev, ev))
    assert ml_dev.report[1] <= ml_ev.report[0] and not ml_ev.held_out
    assert np.isclose(ml_dev.report[1], 0.5)


def test_generated_worlds_retrain_on_drift_and_logs_spanning_months_do_not():
    """docs/protocol.md, section 3: where the cadence stands for a live trainer's, a drift detection
    retrains as it would live; on MovieLens an hourly trigger would have retrained anyway."""
    for d in datasets("development", quick=False):
        assert d.retrain_on_drift == (d.drift_ts_ms is not None), d.name


def test_the_drift_section_covers_every_ranker_and_detector_at_the_worlds_drift(world, result):
    ds, events = world
    drift = result["drift"]
    assert drift["drift_click"] == sum(e.type == "click" and e.ts < ds.drift_ts_ms() for e in events)
    rankers = {name for name in result["prequential"]["rankers"] if not name.startswith("serving, blend")}
    assert set(drift["rankers"]) == rankers and set(drift["detectors"]) == {"item_knn", "isgd_mf", "click_model"}
    assert drift["rankers"]["oracle"]["recovery_clicks"] == drift["window_clicks"]  # it knows the drift
    run = {"k": 10, "date": "d", "commit": "c", "dirty": False, "machine": "m", "command": "x", "seconds": 1.0}
    text = render({"_run": run, "datasets": [result], "across_seeds": {}})
    assert "(e) drift at event" in text and "false alarms before" in text
