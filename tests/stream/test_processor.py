"""The partition pipeline: test-then-learn order, de-duplication, lateness, exact snapshots."""

import msgspec

from stream.events import Event
from stream.processor import Outcome, PartitionProcessor
from tests.conftest import with_section

T0 = 1_767_225_600_000


def ev(n, user="u1", item="i1", kind="click", ts=None) -> Event:
    return Event(event_id=f"e{n}", ts=T0 + n if ts is None else ts, user_id=user, item_id=item, type=kind)


def test_a_learner_is_tested_before_it_learns(cfg):
    proc = PartitionProcessor(with_section(cfg, "worker", prequential_every=1))
    for n in range(20):  # a catalogue of 20 items, nothing clicked yet
        proc.process(ev(n, "u0", f"i{n}", "impression"))
    # u1's click on i15 ranks 15th for popularity (all ties, ordered by index): a miss, because
    # the click itself is learned only after the test.
    proc.process(ev(100, "u1", "i15"))
    assert proc.scores["popularity"].n == 1 and proc.scores["popularity"].hits == 0
    # u2's click on i15 is a hit: u1's click was learned in between.
    proc.process(ev(101, "u2", "i15"))
    assert proc.scores["popularity"].hits == 1


def _popular_catalogue(cfg, exclude_seen: bool = True) -> PartitionProcessor:
    """i0 clicked by everyone, so popularity ranks it first; u1 has clicked it too."""
    proc = PartitionProcessor(
        with_section(with_section(cfg, "worker", prequential_every=1), "serving", exclude_seen=exclude_seen)
    )
    for n in range(5):
        proc.process(ev(n, f"u{n}", "i0"))
    proc.process(ev(10, "u9", "i1"))
    return proc


def test_a_reclick_is_a_miss_while_seen_items_are_excluded(cfg):
    proc = _popular_catalogue(cfg)
    before = proc.scores["popularity"].hits
    proc.process(ev(20, "u1", "i0"))  # popularity's top item, but u1 clicked it before
    assert proc.scores["popularity"].hits == before
    assert proc.served.reclicks == 1


def test_with_seen_items_allowed_a_reclick_is_ranked(cfg):
    proc = _popular_catalogue(cfg, exclude_seen=False)
    before = proc.scores["popularity"].hits
    proc.process(ev(20, "u1", "i0"))
    assert proc.scores["popularity"].hits == before + 1
    assert proc.served.reclicks == 1
    assert proc.popularity.recommend(proc.state.users.get("u1"), 1).tolist() == [proc.state.items.get("i0")]


def test_the_first_click_on_an_item_nobody_has_seen_is_a_miss(cfg):
    """The catalogue a request is served from holds only items known before the click."""
    proc = _popular_catalogue(cfg)
    assert proc.served.new_items == 2  # the first clicks on i0 and on i1
    hits = {name: score.hits for name, score in proc.scores.items()}
    proc.process(ev(20, "u7", "brand-new"))
    assert proc.served.new_items == 3
    assert {name: score.hits for name, score in proc.scores.items()} == hits
    assert proc.served.scored == proc.scores["popularity"].n == 7
    assert proc.served.catalogue == 0 + 1 + 1 + 1 + 1 + 1 + 2  # nothing, i0 alone, then i0 and i1


def test_duplicates_are_applied_once(cfg):
    proc = PartitionProcessor(cfg)
    assert proc.process(ev(1)) is Outcome.APPLIED
    assert proc.process(ev(1)) is Outcome.DUPLICATE
    assert proc.counts["applied"] == 1 and proc.counts["duplicate"] == 1
    assert sum(proc.popularity.clicks) == 1


def test_late_events_are_refused(cfg):
    cfg = with_section(cfg, "events", allowed_lateness_ms=1000)
    proc = PartitionProcessor(cfg)
    proc.process(ev(1, ts=T0 + 10_000))
    assert proc.process(ev(2, ts=T0 + 9_500)) is Outcome.APPLIED  # within lateness
    assert proc.process(ev(3, ts=T0 + 8_000)) is Outcome.LATE
    assert proc.counts["late"] == 1


def test_accepts_says_what_process_would_do_and_changes_nothing(cfg):
    cfg = with_section(cfg, "events", allowed_lateness_ms=1000)
    proc = PartitionProcessor(cfg)
    proc.process(ev(1, ts=T0 + 10_000))
    before = proc.fingerprint()
    assert proc.accepts(ev(2, ts=T0 + 9_500))
    assert not proc.accepts(ev(1, ts=T0 + 10_000))  # a duplicate
    assert not proc.accepts(ev(3, ts=T0 + 8_000))  # late
    assert proc.fingerprint() == before
    assert proc.process(ev(2, ts=T0 + 9_500)) is Outcome.APPLIED  # asking did not mark it seen


def test_the_learned_blend_is_part_of_the_snapshot(cfg, small_stream):
    proc = PartitionProcessor(cfg)
    for event in small_stream[:100]:
        proc.process(event)
    proc.blend.weights = {**proc.blend.weights, "item_knn": 2.5}  # as the scorer's learning leaves it
    proc.blend.clicks_learned = 7
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(proc.to_state()))
    restored = PartitionProcessor.from_state(cfg, state)
    assert restored.blend.weights == proc.blend.weights and restored.blend.clicks_learned == 7
    assert restored.fingerprint() == proc.fingerprint()
    assert restored.state.version == proc.state.version  # derived views pace their rebuilds by it
    fixed = with_section(cfg, "learners", blend_learning_rate=0.0)  # an operator pins the weights
    assert PartitionProcessor.from_state(fixed, state).blend.weights == PartitionProcessor(fixed).blend.weights
    del state["blend"]  # a snapshot from before the blend was learned starts from the configured weights
    assert PartitionProcessor.from_state(cfg, state).blend.weights == PartitionProcessor(cfg).blend.weights


def test_snapshot_mid_stream_then_resume_equals_uninterrupted(cfg, small_stream):
    whole = PartitionProcessor(cfg)
    for event in small_stream:
        whole.process(event)
    half = len(small_stream) // 2
    first = PartitionProcessor(cfg)
    for event in small_stream[:half]:
        first.process(event)
    # Through the same encoding a snapshot file uses.
    state = msgspec.msgpack.decode(msgspec.msgpack.encode(first.to_state()))
    resumed = PartitionProcessor.from_state(cfg, state)
    for event in small_stream[half:]:
        resumed.process(event)
    assert resumed.fingerprint() == whole.fingerprint()


def test_snapshot_of_another_format_is_refused(cfg):
    import pytest

    state = PartitionProcessor(cfg).to_state()
    state["format"] = 999
    with pytest.raises(ValueError, match="format"):
        PartitionProcessor.from_state(cfg, state)


def test_ranking_learners_are_scored_on_every_nth_click(cfg):
    proc = PartitionProcessor(with_section(cfg, "worker", prequential_every=3))
    for n in range(10):
        proc.process(ev(n, f"u{n}", f"i{n % 4}"))
    assert proc.scores["item_knn"].n == 4  # clicks 0, 3, 6, 9
