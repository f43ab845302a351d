"""Protocol (e) on hand-made rank logs: recovery is measured against the level before the drift, in
windows wholly after it; detectors are split into false alarms and detections with delays."""

from types import SimpleNamespace

import pytest

from stream.drift import DriftMonitor
from streamrec.quality.clicks import RankLog
from streamrec.quality.drift import DriftClicks, drift_summary

BEFORE, AFTER = 300, 600  # clicks; the window is a tenth of the clicks before the drift: 30
HIT, MISS = 0, None


def log_of(patterns: dict[str, list[int | None]]) -> tuple[RankLog, DriftClicks]:
    """A log whose click i sits at stream position 10 i, with the drift at click BEFORE."""
    log = RankLog()
    marks = DriftClicks(drift_ts_ms=0)
    for i in range(BEFORE + AFTER):
        log.add(f"u{i % 7}", {name: p[i] for name, p in patterns.items()})
        marks.positions.append(10 * i)
    marks.drift_event = 10 * BEFORE
    return log, marks


def alternating(n: int) -> list[int | None]:
    return [HIT if i % 2 == 0 else MISS for i in range(n)]


@pytest.fixture(scope="module")
def summary():
    patterns = {
        # 50 % before; after the drift 150 misses, then every click a hit
        "dips": alternating(BEFORE) + [MISS] * 150 + [HIT] * (AFTER - 150),
        "steady": alternating(BEFORE + AFTER),
        "never": alternating(BEFORE) + [HIT if i % 5 == 0 else MISS for i in range(AFTER)],  # 20 % after
    }
    log, marks = log_of(patterns)
    monitor = DriftMonitor()
    monitor.detections = [1200, 3050, 4000]  # one before the drift (event 3000), two after
    proc = SimpleNamespace(drift={"isgd_mf": monitor, "item_knn": DriftMonitor()})
    return drift_summary(log, marks, proc, k=10)


def test_recovery_is_the_first_window_after_the_drift_back_to_the_level_before(summary):
    dips = summary["rankers"]["dips"]
    assert summary["window_clicks"] == 30 and summary["drift_click"] == BEFORE
    assert dips["level_before"] == 0.5
    # 95 % of 0.5 needs 15 hits of 30: the window [135, 165) after the drift is the first with them.
    assert dips["recovery_clicks"] == 165
    assert dips["recovery_events"] == 10 * (BEFORE + 164) - 10 * BEFORE
    assert dips["windows"][:4] == [0.5, 0.5, 0.5, 0.0] and dips["first_window"] == -3


def test_a_ranker_the_drift_did_not_touch_recovers_in_its_first_window_and_a_worse_one_never(summary):
    assert summary["rankers"]["steady"]["recovery_clicks"] == summary["window_clicks"]
    never = summary["rankers"]["never"]
    assert never["recovery_clicks"] is None and never["level_at_end"] == 0.2


def test_detections_are_false_alarms_before_the_drift_and_delays_after_it(summary):
    mf = summary["detectors"]["isgd_mf"]
    assert mf["false_alarms"] == 1 and mf["detections_after"] == 2
    assert mf["first_delay_events"] == 50 and mf["first_delay_clicks"] == 5  # clicks at 3000..3040 came first
    assert mf["detections"] == [-1800, 50, 1000]
    quiet = summary["detectors"]["item_knn"]
    assert quiet["detections_after"] == 0 and quiet["first_delay_events"] is None


def test_too_few_clicks_before_the_drift_give_no_section():
    log, marks = log_of({"steady": alternating(BEFORE + AFTER)})
    marks.drift_event = 10 * 150  # 150 clicks before it: windows of 15 clicks, under the minimum
    assert drift_summary(log, marks, SimpleNamespace(drift={}), k=10) is None
