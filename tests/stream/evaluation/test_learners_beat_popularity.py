"""The stream learners rank a synthetic world's clicks better than popularity does, in the
prequential replay of ``streamrec eval prequential``.

The world's clicks follow each user's taste, so a learner that personalises must beat the most
clicked items by a clear margin; one that learns nothing, or only popularity, does not.
"""

import pytest

from stream.config import load_config
from stream.evaluation.replay import replay
from stream.sources.synthetic import SyntheticConfig, synthetic_events

MARGINS = {"item_knn": 1.3, "isgd_mf": 1.15, "click_model": 1.15}


@pytest.fixture(scope="module")
def figures():
    events = synthetic_events(SyntheticConfig(n_users=200, n_items=150, n_sessions=3000, seed=1))
    return replay(events, load_config(overrides=["worker.prequential_every=1"], env={}))


@pytest.mark.parametrize("learner", MARGINS)
def test_a_stream_learner_beats_popularitys_recall_by_a_margin(figures, learner):
    """recall@10 over popularity's on this world (200 users, 150 items, 3,000 sessions, every click
    scored), measured with world seeds 1-12: item_knn 1.44-2.08, isgd_mf 1.22-1.61, click_model
    1.25-1.77 (seed 1, the one tested: 1.99, 1.46, 1.66). Asserted: >= 1.3, 1.15, 1.15, below the
    lowest seed. Popularity's own recall@10 is held to 0.15-0.35 (seeds 1-12: 0.18-0.25; counting
    nothing, ties broken by item id, it gets 0.13) so that a broken baseline cannot make the margin
    easy."""
    popularity = figures["popularity"]["recall@10"]
    assert figures[learner]["scored_clicks"] == figures["popularity"]["scored_clicks"] > 2000
    assert 0.15 < popularity < 0.35
    assert figures[learner]["recall@10"] >= MARGINS[learner] * popularity
