"""`streamrec report`: the run record (built by the demo's recorder) and the HTML page rendered from it.

The page is checked as a person would see it: opened in headless Chromium (Debian's, never a
downloaded browser) from a file:// URL, every image must load, and nothing may be fetched.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import struct
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from offline.registry import QualityGate, Registry
from stream.processor import LEARNERS, PartitionProcessor
from streamrec.cli import main
from streamrec.report import (
    Ablations,
    load_ablations,
    render_report,
    windowed_recall,
    write_report,
)
from streamrec.run_record import (
    RECORD_FORMAT,
    RECORD_VERSION,
    Change,
    Histogram,
    LearnerCurve,
    Models,
    Prequential,
    RecordError,
    RegisteredVersion,
    RunRecord,
    RunRecorder,
    ServedVersion,
    histogram,
    load_record,
    registry_models,
    write_record,
)
from tests.conftest import with_section
from tests.stream.test_model_artifact import stage_artifact

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ALL_PLOTS = {"prequential", "latency-scoring", "latency-freshness", "latency-http", "models", "ablations"}

# The shape `streamrec train --once --ablations --json` prints (a real small run, trimmed), with a NaN
# AUC as a window with one class gives.
ABLATIONS = {
    "curriculum": {
        "on": {
            "auc_click": 0.6454,
            "recall@10": 0.1538,
            "ndcg@10": 0.0677,
            "validation_ndcg@10": 0.0151,
            "best_epoch": 1,
            "validation_loss": 0.9371,
            "seconds": 0.1,
        },
        "off": {
            "auc_click": 0.6832,
            "recall@10": 0.1282,
            "ndcg@10": 0.0914,
            "validation_ndcg@10": 0.0260,
            "best_epoch": 1,
            "validation_loss": 0.8167,
            "seconds": 0.1,
        },
    },
    "distillation": {
        name: {
            "auc_click": 0.63,
            "recall@10": 0.0256 * (i + 1),
            "ndcg@10": 0.011 * (i + 1),
            "validation_ndcg@10": 0.03 + 0.01 * i,
            "best_epoch": 3,
        }
        for i, name in enumerate(["labels_only", "+soft", "+soft+hint", "+soft+hint+rank"])
    },
    "multi_task": {
        "multi_task_esmm": {"auc_conversion": 0.7361},
        "single_task": {"auc_conversion": float("nan")},
        "test_conversions": 20,
    },
    "_run": {"seconds": 3.3, "events": 4664, "test_clicks_ranked": 39},
}


def full_record(**changes) -> RunRecord:
    """A small hand-built record with every section present."""
    events = [1000 * (i + 1) for i in range(30)]
    learners = {}
    for j, name in enumerate(LEARNERS):
        scored = [50 * (i + 1) for i in range(30)]  # 50 scored clicks per sample; recall rises after the drift
        hits = [
            sum(int(50 * (0.05 + 0.03 * j + (0.1 if n > 15 else 0.0) + 0.02 * (n % 3))) for n in range(i + 1))
            for i in range(30)
        ]
        learners[name] = LearnerCurve(
            scored=scored,
            hits=hits,
            drift_at=[] if name == "popularity" else [16_500],
            drift_monitored=name != "popularity",
        )
    record = RunRecord(
        format=RECORD_FORMAT,
        version=RECORD_VERSION,
        source="streamrec demo",
        started_at="2026-01-05T10:00:00.000Z",
        finished_at="2026-01-05T10:05:00.000Z",
        summary={
            "events_produced": 30_000,
            "events_applied": 30_000,
            "seconds": 300.0,
            "events_per_s": 100,
            "dead_lettered": 0,
            "model_versions_served": [1, 2],
            "recommendations_published": 25_000,
            "prequential": {name: {"recall@10": 0.1, "ndcg@10": 0.05} for name in LEARNERS},
        },
        prequential=Prequential(k=10, every=20, t_s=[10.0 * i for i in range(30)], events=events, learners=learners),
        latency_ms={
            "scoring": histogram([0.4 + 0.01 * (i % 50) for i in range(500)]),
            "freshness": histogram([20 + (i % 97) * 3.0 for i in range(1000)]),
            "http": histogram([1.0 + (i % 13) ** 2 for i in range(300)]),
        },
        models=Models(
            versions=[
                RegisteredVersion(
                    version=1, created_at="2026-01-05T10:01:00.000Z", validation={"ndcg@10": 0.08}, is_current=False
                ),
                RegisteredVersion(
                    version=2, created_at="2026-01-05T10:03:00.000Z", validation={"ndcg@10": 0.09}, is_current=True
                ),
            ],
            history=[
                Change(action="promote", version=1, at="2026-01-05T10:01:01.000Z", validation={"ndcg@10": 0.08}),
                Change(action="promote", version=2, at="2026-01-05T10:03:01.000Z", validation={"ndcg@10": 0.09}),
                Change(action="rollback", version=1, at="2026-01-05T10:04:00.000Z", validation={"ndcg@10": 0.08}),
            ],
            served=[
                ServedVersion(version=1, at="2026-01-05T10:01:02.000Z", t_s=62.0, events=6200),
                ServedVersion(version=2, at="2026-01-05T10:03:02.000Z", t_s=182.0, events=18200),
            ],
        ),
    )
    return msgspec.structs.replace(record, **changes)


def png_sizes(doc: str) -> dict[str, tuple[int, int]]:
    """data-plot id -> (width, height) read from each embedded PNG's header."""
    sizes = {}
    for plot_id, data in re.findall(
        r'<img class="plot" data-plot="([^"]+)" alt="[^"]+" '
        r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"',
        doc,
    ):
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        sizes[plot_id] = struct.unpack(">II", png[16:24])
    return sizes


def assert_self_contained(doc: str) -> None:
    """Nothing to fetch: every image is a data: URL, and no other reference (src, href, url(), @import,
    a scheme) remains once they are taken out."""
    assert doc.count("<img") == len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', doc))
    rest = re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]+"', "", doc)
    assert not re.search(r"(?i)(src=|href=|url\(|@import|https?:|ftp:|file:|//[a-z0-9.-]+/)", rest), "a reference"


def assert_renders_in_chromium(page_path: Path, expected_plots: set[str], tmp_path: Path) -> None:
    """Open the page in headless Chromium: every image loads, each expected plot is there, no request
    leaves the file (only file: and data: URLs)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium): the page is not opened in a browser")
    from playwright.sync_api import (
        sync_playwright,  # drives Debian's chromium; never downloads a browser
    )

    requests: list[str] = []
    profile = tmp_path / "chromium-profile"
    with sync_playwright() as pw:
        # Playwright's 30 s defaults are deadlines a slow machine's first Chromium start can approach.
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS, timeout=120_000
        )
        try:
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.resolve().as_uri(), wait_until="load", timeout=120_000)
            images = page.evaluate("""() => Array.from(document.images).map(img => ({
                plot: img.dataset.plot, alt: img.alt, complete: img.complete, width: img.naturalWidth}))""")
        finally:
            context.close()
    assert images, "no images on the page"
    broken = [i for i in images if not (i["complete"] and i["width"] > 0)]
    assert not broken, broken
    assert all(i["alt"] for i in images)
    assert expected_plots <= {i["plot"] for i in images}
    assert all(url.startswith(("file:", "data:")) for url in requests), requests


# -- the record -------------------------------------------------------------------------------------


def test_the_recorder_samples_a_replay_and_its_cumulative_counts_end_at_the_learners_own(cfg, small_stream):
    cfg = with_section(cfg, "worker", prequential_every=1)
    proc = PartitionProcessor(cfg)
    recorder = RunRecorder({3: SimpleNamespace(processor=proc)}, every=1, min_events=500, max_samples=8)
    for n, event in enumerate(small_stream, start=1):
        proc.process(event)
        if n % 100 == 0:
            recorder.batch_applied([])
    proc.drift["item_knn"].detections.append(proc.counts["applied"] - 10)  # as if it fired 10 events ago
    proc.scores["item_knn"].update(0, proc.counts["applied"])
    recorder.model_served(1)
    record = recorder.finish(
        {"events_applied": 1, "http_ms": {"n": 2, "first_failures": ["u1: refused"]}},
        {"scoring": [0.5, 0.7, 1.0], "freshness": []},
        registry_root=None,
    )
    p = record.prequential
    assert len(p.events) <= 9 and p.events == sorted(p.events)  # thinned to at most max_samples (+ the last)
    assert p.events[-1] == proc.counts["applied"]
    for name in LEARNERS:
        assert p.learners[name].scored[-1] == proc.scores[name].n > 0
        assert p.learners[name].hits[-1] == proc.scores[name].hits
        assert p.learners[name].scored == sorted(p.learners[name].scored)
    assert p.learners["item_knn"].drift_at[-1] == proc.counts["applied"] - 10
    assert not p.learners["popularity"].drift_monitored
    assert "first_failures" not in record.summary["http_ms"]  # no user ids in the record
    assert record.latency_ms["scoring"].n == 3 and record.latency_ms["freshness"].n == 0
    assert record.models.served[0].version == 1 and record.models.versions == []


def test_a_failing_recorder_never_reaches_the_worker():
    recorder = RunRecorder({0: SimpleNamespace(processor=None)})
    recorder.batch_applied([])  # logged once, then the recorder stays quiet
    recorder.batch_applied([])
    assert recorder.events == []


def test_histogram_quotes_exact_percentiles_and_counts_every_sample():
    samples = [float(x) for x in range(1, 1001)]
    h = histogram(samples)
    assert h.n == 1000 and sum(h.counts) == 1000
    assert h.p50 == pytest.approx(500.5) and h.p99 == pytest.approx(990.01)
    assert h.log_scale and h.edges[0] <= 1.0 and h.edges[-1] >= 1000.0
    narrow = histogram([5.0, 5.0, 5.1])
    assert not narrow.log_scale and sum(narrow.counts) == 3
    assert histogram([]).n == 0


def test_registry_models_are_read_from_its_versions_and_history(tmp_path):
    registry = Registry(tmp_path / "models")
    for n, ndcg in enumerate((0.30, 0.31)):
        stage_artifact(tmp_path / f"staging-{n}", onnx=f"graph {n}".encode(), ndcg=ndcg)
        version = registry.register(tmp_path / f"staging-{n}").version
        registry.promote(version, QualityGate("ndcg@10", 0.01))
    registry.rollback()
    models = registry_models(registry.root)
    assert [v.version for v in models.versions] == [1, 2] and models.versions[0].is_current
    assert [(c.action, c.version) for c in models.history] == [("promote", 1), ("promote", 2), ("rollback", 1)]
    assert models.history[1].validation == {"ndcg@10": 0.31}
    assert registry_models(tmp_path / "nothing-here") == Models()


def test_a_record_round_trips_through_its_file(tmp_path):
    record = full_record()
    assert load_record(write_record(record, tmp_path / "run.json")) == record


@pytest.mark.parametrize(
    "content, fragment",
    [
        (None, "no run record at"),
        (b"not json at all", "is not a JSON run record"),
        (b'{"format": "something-else", "version": 1}', "is not a run record"),
        (json.dumps({"format": RECORD_FORMAT, "version": 99}).encode(), "run record version 99"),
        (json.dumps({"format": RECORD_FORMAT, "version": RECORD_VERSION}).encode(), "malformed run record"),
    ],
)
def test_an_unusable_record_is_refused_in_one_line_naming_the_fix(tmp_path, content, fragment):
    path = tmp_path / "run.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(RecordError) as exc:
        load_record(path)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)
    assert "streamrec demo --run-record" in str(exc.value) or "write a new one" in str(exc.value)


def test_a_record_whose_series_disagree_is_refused(tmp_path):
    raw = msgspec.to_builtins(full_record())
    raw["prequential"]["learners"]["item_knn"]["hits"].pop()
    (tmp_path / "run.json").write_text(json.dumps(raw))
    with pytest.raises(RecordError, match="item_knn"):
        load_record(tmp_path / "run.json")


# -- the page ---------------------------------------------------------------------------------------


def test_windowed_recall_spans_enough_clicks_per_window():
    curve = LearnerCurve(scored=[0, 10, 20, 30, 40, 50], hits=[0, 1, 2, 3, 8, 13])
    xs, ys = windowed_recall([0, 1, 2, 3, 4, 5], curve, points=10, min_scored=20)
    assert xs == [2, 4] and ys == [pytest.approx(0.1), pytest.approx(0.3)]  # the last 10 clicks: too few alone
    assert windowed_recall([5], LearnerCurve(scored=[1], hits=[0])) == ([], [])


def test_every_section_renders_with_one_png_per_plot(caplog):
    caplog.set_level(logging.INFO, logger="streamrec.report")
    doc, ids = render_report(full_record(), msgspec.convert(ABLATIONS, Ablations))
    lines = [r.getMessage() for r in caplog.records if r.name == "streamrec.report"]
    assert set(ids) == ALL_PLOTS and len(ids) == len(set(ids))
    sizes = png_sizes(doc)
    assert set(sizes) == ALL_PLOTS and all(w > 100 and h > 100 for w, h in sizes.values())
    assert len(lines) == len(ids) and all(line.startswith("report: plot ") for line in lines)  # progress
    assert_self_contained(doc)
    for text in ("drift", "p50", "p99", "rollback", "labels_only", "+soft+hint+rank", "multi_task_esmm", "n/a"):
        assert text in doc, text


def test_a_record_without_models_samples_or_ablations_still_renders():
    empty = LearnerCurve(scored=[0], hits=[0])
    record = full_record(
        models=Models(),
        latency_ms={"scoring": Histogram(n=0)},
        prequential=Prequential(k=10, every=20, t_s=[1.0], events=[10], learners=dict.fromkeys(LEARNERS, empty)),
    )
    doc, ids = render_report(record, None)
    assert ids == []
    for sentence in (
        "No model was registered or served",
        "No ablations file was given",
        "Freshness: no samples",
        "too short for a curve",
    ):
        assert sentence in doc, sentence
    assert_self_contained(doc)


def test_ablations_files_are_read_as_the_trainer_prints_them(tmp_path):
    path = tmp_path / "ablations.json"
    path.write_text("some log line\n" + json.dumps(ABLATIONS) + "\n")  # json.dumps writes the NaN as NaN
    ablations = load_ablations(path)
    assert math.isnan(ablations.multi_task["single_task"]["auc_conversion"])
    assert ablations.run["events"] == 4664
    for content, fragment in (
        ("[1, 2]", "holds no JSON object"),
        ('{"distillation": 3}', "not the output of"),
        ("{}", "none of curriculum"),
    ):
        path.write_text(content)
        with pytest.raises(RecordError, match=fragment):
            load_ablations(path)
    with pytest.raises(RecordError, match="no ablations file"):
        load_ablations(tmp_path / "missing.json")


def test_the_report_command_writes_the_page_and_refuses_bad_input_in_one_line(tmp_path, capsys):
    write_record(full_record(), tmp_path / "run.json")
    (tmp_path / "ablations.json").write_text(json.dumps(ABLATIONS))
    assert main(["report", str(tmp_path / "run.json"), "--ablations", str(tmp_path / "ablations.json")]) == 0
    out, err = capsys.readouterr()
    assert f"wrote {tmp_path / 'run.html'} (6 plots)" in out and err.count("report: plot") == 6
    assert set(png_sizes((tmp_path / "run.html").read_text())) == ALL_PLOTS

    for argv, fragment in (
        (["report", str(tmp_path / "nope.json")], "streamrec demo --run-record"),
        (["report", str(tmp_path / "run.json"), "--ablations", str(tmp_path / "nope.json")], "--ablations --json"),
        (["report", str(tmp_path / "run.html")], "is not a JSON run record"),
        (["report", str(tmp_path / "run.json"), "-o", str(tmp_path / "run.json" / "x.html")], "pass -o PATH"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("streamrec report: ") and fragment in err and "\n" not in err


def test_the_page_renders_in_headless_chromium(tmp_path):
    write_record(full_record(), tmp_path / "run.json")
    (tmp_path / "ablations.json").write_text(json.dumps(ABLATIONS))
    page, ids = write_report(tmp_path / "run.json", tmp_path / "out" / "report.html", tmp_path / "ablations.json")
    assert set(ids) == ALL_PLOTS
    assert_renders_in_chromium(page, ALL_PLOTS, tmp_path)


def test_report_and_the_demos_run_record_flag_have_help(capsys):
    for argv in (["report", "--help"], ["demo", "--help"]):
        assert main(argv) == 0
    out = capsys.readouterr().out
    assert "Usage: streamrec report" in out and "--ablations" in out and "--run-record" in out
