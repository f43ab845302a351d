"""Fixtures the offline tests share."""

import pytest

from stream.sources.synthetic import SyntheticConfig, synthetic_events

# The training runs' world: personal taste strong (``affinity_scale`` 4), popularity mild (Zipf 0.3),
# so that a model that learns something shows it on a few hundred test clicks
# (tests/offline/test_pipeline.py gives the figures it was chosen by).
WORLD = SyntheticConfig(seed=1, n_users=150, n_items=120, n_sessions=2000, affinity_scale=4.0, popularity_zipf=0.3)


@pytest.fixture(scope="module")
def events():
    """``WORLD``'s events, generated once per module."""
    return list(synthetic_events(WORLD))
