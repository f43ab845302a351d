"""The generated reference pages: each must list the items the code declares."""

from __future__ import annotations

import json

import pytest

from streamrec.reference import api, events, metrics, results


def test_the_api_page_lists_every_route_with_its_parameters_and_responses():
    page = api.render()
    for path, item in api.spec()["paths"].items():
        for method in item:
            assert f"`{method.upper()} {path}`" in page
    assert "| `k` | query | integer | no | `10` | ≥ 1, ≤ 100 |" in page
    assert "| 421 | rejected; the body says why | [ErrorBody](#errorbody) |" in page
    assert "### Recommendation" in page and "| `model_version` | integer or null | yes |" in page


def test_the_event_page_lists_every_field_with_its_bounds_and_meaning():
    page = events.render()
    names = [name for name, _, _ in events.fields()]
    assert {"event_id", "ts", "context.propensity", "item.tags", "user"} <= set(names)
    for name in names:
        assert f"| `{name}` |" in page
    assert "| `context.propensity` | number | no | > 0.0, ≤ 1.0 |" in page
    assert "| `ts` | integer | yes | ≥ 631,152,000,000, < 4,102,444,800,000 |" in page


def test_an_event_field_without_a_description_fails_the_page(monkeypatch):
    monkeypatch.delitem(events.DESCRIPTIONS, "context.request_id")
    with pytest.raises(KeyError, match=r"context\.request_id"):
        events.render()


def test_every_description_names_a_field_that_exists():
    assert set(events.DESCRIPTIONS) == {name for name, _, _ in events.fields()}


def test_the_metrics_page_lists_each_process_metric_with_type_and_labels():
    page = metrics.render()
    assert (
        "| `streamrec_events_dead_lettered_total` | counter | Messages sent to the dead-letter topic, by reason" in page
    )
    assert "`reason` (late, malformed_json, oversized, schema, unsupported_version)" in page
    assert "| `streamrec_consumer_lag_messages` | gauge |" in page and "| `partition` |" in page
    assert "| `streamrec_recommendation_freshness_seconds` | histogram |" in page
    assert "| `streamrec_training_runs_total` | counter |" in page
    assert "| `streamrec_model_info` | info |" in page


def test_the_results_page_stamps_every_table_with_its_run(tmp_path):
    bench = json.loads((results.RESULTS / "quality-evaluation.json").read_text())
    (tmp_path / "quality-evaluation.json").write_text(json.dumps(bench))
    page = results.render(tmp_path)
    stamp = results.stamp(bench["_run"])
    assert "2026-12-08" in stamp and "`45e43ee`" in stamp and "2 cores" in stamp and "--part evaluation" in stamp
    tables = page.split("\n\n")
    table_blocks = [i for i, block in enumerate(tables) if block.startswith("| ")]
    assert len(table_blocks) > 20
    for i in table_blocks:
        assert tables[i + 1].strip() == stamp
    assert "| oracle | 0.4352 [0.4316, 0.4412] |" in page
    assert "| serving | 0.2202 [0.2103, 0.2312] | 0.1154 [0.1096, 0.1216] |" in page


def test_a_results_file_without_its_run_stamp_is_refused(tmp_path):
    bench = json.loads((results.RESULTS / "quality-evaluation.json").read_text())
    del bench["_run"]["commit"]
    (tmp_path / "quality-evaluation.json").write_text(json.dumps(bench))
    with pytest.raises(ValueError, match="lacks commit"):
        results.render(tmp_path)


def test_the_results_page_shows_a_stream_run_with_its_stamp(tmp_path):
    run = {
        "date": "2026-12-06T23:35:00+00:00",
        "commit": "abc1234",
        "dirty": False,
        "machine": "x86_64, 2 cores",
        "command": "streamrec bench stream --output docs/results/stream.json",
        "bench": "stream",
    }
    bench = {
        "events_per_s": 55276,
        "raw_per_s": 139279,
        "ratio": 0.397,
        "events": 200000,
        "runs": 2,
        "worker_runs": [55529, 54628],
        "raw_runs": [139843, 156583],
        "partitions": 4,
        "prequential_every": 20,
        "_run": run,
    }
    (tmp_path / "stream.json").write_text(json.dumps(bench))
    page = results.render(tmp_path)
    assert "## stream: worker throughput" in page
    assert "| 2 | 54,628 | 156,583 |" in page and "| **median** | **55,276** | **139,279** |" in page
    table_end = page.index("| **median**")
    assert page[table_end:].split("\n\n")[1].strip() == results.stamp(run)
