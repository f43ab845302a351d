"""Shared fixtures: configs, small synthetic streams and (for integration tests) a real broker."""

from __future__ import annotations

import msgspec
import pytest

from stream.config import Config, load_config
from stream.events import Event
from stream.sources.synthetic import SyntheticConfig, synthetic_events

# The real-broker fixtures (broker, kafka_cfg, workers), shared by tests/integration and tests/faults.
pytest_plugins = ["tests.kafka_fixtures"]


@pytest.fixture
def cfg() -> Config:
    return load_config(env={})


def small_world(**overrides) -> SyntheticConfig:
    base = dict(n_users=300, n_items=200, n_sessions=1500, seed=3)
    base.update(overrides)
    return SyntheticConfig(**base)


@pytest.fixture(scope="session")
def small_stream() -> list[Event]:
    return list(synthetic_events(small_world()))


def with_section(cfg: Config, section: str, **changes) -> Config:
    return msgspec.structs.replace(cfg, **{section: msgspec.structs.replace(getattr(cfg, section), **changes)})
