"""Sources: a deterministic synthetic world with known truth, MovieLens-100K, and user logs."""

import itertools
import json

import numpy as np
import pytest

from stream.sources.logfile import ColumnMap, LogFormatError, logfile_events
from stream.sources.synthetic import SyntheticConfig, SyntheticWorld, synthetic_events
from tests.conftest import small_world


def test_synthetic_is_deterministic_and_time_ordered(small_stream):
    again = list(synthetic_events(small_world()))
    assert again == small_stream
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(small_stream))
    assert len({e.event_id for e in small_stream}) == len(small_stream)


def test_synthetic_funnel_follows_its_ground_truth():
    cfg = small_world()
    world = SyntheticWorld(cfg)
    stream = list(synthetic_events(cfg, world))
    impressions = [e for e in stream if e.type == "impression"]
    clicks = sum(e.type == "click" for e in stream)
    conversions = sum(e.type == "conversion" for e in stream)
    assert 0 < conversions < clicks < len(impressions)
    # The observed CTR matches the mean true click probability of what was shown, each
    # impression judged by the world before or after the drift, as it was generated.
    truth = []
    for after in (False, True):
        shown = [e for e in impressions if (e.ts >= world.drift_ts_ms) == after]
        users = np.array([int(e.user_id[1:]) for e in shown])
        items = np.array([int(e.item_id[1:]) for e in shown])
        positions = np.array([e.context.position for e in shown])
        truth.append(world.click_probability(users, items, world.drift_session if after else 0, positions))
    expected = np.concatenate(truth).mean()
    observed = clicks / len(impressions)
    assert abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected) / len(impressions))


def test_synthetic_users_and_items_arrive_over_time(small_stream):
    first_seen = {}
    for n, e in enumerate(small_stream):
        first_seen.setdefault(e.item_id, n)
    late = [n for n in first_seen.values() if n > len(small_stream) // 2]
    assert late, "some items must first appear in the second half (cold start)"


def test_synthetic_items_carry_content():
    event = next(synthetic_events(SyntheticConfig(n_sessions=1)))
    assert event.item.category.startswith("cat") and event.item.tags[0] == event.item.category


def test_csv_log_with_column_mapping(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("who,what,when,kind\nb,x,1767225620,click\na,y,1767225610,impression\n")
    events = list(logfile_events(path, ColumnMap(user="who", item="what", time="when", type="kind", time_unit="s")))
    assert [(e.user_id, e.item_id, e.ts, e.type) for e in events] == [
        ("a", "y", 1_767_225_610_000, "impression"),
        ("b", "x", 1_767_225_620_000, "click"),
    ]
    assert events[0].event_id != events[1].event_id


def test_jsonl_log_defaults_to_clicks(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(
        "\n".join(json.dumps({"user_id": u, "item_id": "i", "ts": 1_767_225_600_000 + n}) for n, u in enumerate("abc"))
    )
    events = list(logfile_events(path))
    assert [e.type for e in events] == ["click"] * 3


@pytest.mark.parametrize(
    "content, columns, message",
    [
        ("u,i\n1,2\n", ColumnMap(), "no column 'user_id'"),
        ("user_id,item_id,ts\n1,2,soon\n", ColumnMap(), "must be a number"),
        ("user_id,item_id,ts,t\n1,2,1767225600000,buy\n", ColumnMap(type="t"), "must be one of"),
    ],
)
def test_log_errors_name_the_problem(tmp_path, content, columns, message):
    path = tmp_path / "log.csv"
    path.write_text(content)
    with pytest.raises(LogFormatError, match=message):
        list(logfile_events(path, columns))
