"""Event sources: the synthetic generator, MovieLens-100K, and a user's own CSV/JSONL log."""

from __future__ import annotations

from collections.abc import Iterator

from stream.events import Event
from stream.sources.logfile import ColumnMap, logfile_events
from stream.sources.movielens import movielens_events
from stream.sources.synthetic import SyntheticConfig, synthetic_events

DATASETS = ("synthetic", "ml-100k", "file")


class SourceError(ValueError):
    pass


def open_source(dataset: str, path: str | None = None, columns: ColumnMap | None = None,
                synthetic: SyntheticConfig | None = None) -> Iterator[Event]:
    if dataset == "synthetic":
        return synthetic_events(synthetic or SyntheticConfig())
    if dataset == "ml-100k":
        return movielens_events()
    if dataset == "file":
        if not path:
            raise SourceError("--dataset file needs --path FILE (CSV or JSONL)")
        return logfile_events(path, columns or ColumnMap())
    raise SourceError(f"unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}")
