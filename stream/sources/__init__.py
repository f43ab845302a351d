"""Event sources: the synthetic generator, the exposure-biased impression log, MovieLens-100K and
MovieLens-1M's development slice, and a user's own CSV/JSONL log."""

from __future__ import annotations

from collections.abc import Iterator

from stream.events import Event
from stream.sources.exposure import ExposureConfig, exposure_events
from stream.sources.logfile import ColumnMap, logfile_events
from stream.sources.movielens import ML_1M, ML_1M_DEVELOPMENT, ML_1M_SLICES, movielens_events
from stream.sources.synthetic import SyntheticConfig, synthetic_events

DATASETS = ("synthetic", "exposure", "ml-100k", "ml-1m", "file")


class SourceError(ValueError):
    pass


def open_source(
    dataset: str,
    path: str | None = None,
    columns: ColumnMap | None = None,
    synthetic: SyntheticConfig | None = None,
    exposure: ExposureConfig | None = None,
) -> Iterator[Event]:
    if dataset == "synthetic":
        return synthetic_events(synthetic or SyntheticConfig())
    if dataset == "exposure":
        return exposure_events(exposure or ExposureConfig())
    if dataset == "ml-100k":
        return movielens_events()
    if dataset == "ml-1m":  # its development slice only: the others are bench quality's evaluation part
        return movielens_events(release=ML_1M, user_slice=(ML_1M_DEVELOPMENT[0], ML_1M_SLICES))
    if dataset == "file":
        if not path:
            raise SourceError("--dataset file needs --path FILE (CSV or JSONL)")
        return logfile_events(path, columns or ColumnMap())
    raise SourceError(f"unknown dataset {dataset!r}; use one of {', '.join(DATASETS)}")
