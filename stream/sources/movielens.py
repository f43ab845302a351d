"""MovieLens-100K, read from the ``recbole==1.2.1`` wheel fetched through PyPI (never installed).

Ratings become ``click`` events in timestamp order (ties keep file order); a rating >= 4 also
emits a ``conversion`` right after its click, with the same timestamp (a millisecond later would
overtake the next rating in the same second). Genres, year and title become item attributes;
age, gender and occupation become user attributes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import msgspec

from stream.events import Event, ItemAttributes

WHEEL = "recbole==1.2.1"
WHEEL_FILE = "recbole-1.2.1-py3-none-any.whl"
INNER = "recbole/dataset_example/ml-100k/ml-100k"


class DatasetUnavailable(RuntimeError):
    pass


def cache_dir() -> Path:
    base = os.environ.get("STREAMREC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "streamrec"
    )
    return Path(base)


def wheel_path() -> Path:
    """The cached wheel, downloaded once with ``pip download --no-deps`` (the package registry)."""
    target = cache_dir() / "wheels"
    path = target / WHEEL_FILE
    if not path.exists():
        target.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", str(target)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not path.exists():
            raise DatasetUnavailable(
                f"could not fetch {WHEEL} with pip ({proc.stderr.strip()[-300:]}); "
                f"check access to PyPI or put {WHEEL_FILE} into {target}"
            )
    return path


def _rows(archive: zipfile.ZipFile, suffix: str) -> Iterator[list[str]]:
    with archive.open(f"{INNER}.{suffix}") as fh:
        lines = fh.read().decode("latin-1").splitlines()
    for line in lines[1:]:  # the first line is RecBole's typed header
        if line:
            yield line.split("\t")


def movielens_events(path: Path | None = None, conversion_rating: float = 4.0) -> Iterator[Event]:
    with zipfile.ZipFile(path or wheel_path()) as archive:
        items = {
            row[0]: ItemAttributes(
                category=(row[3].split() or ["unknown"])[0],
                tags=[*row[3].split(), f"year:{row[2]}"],
                title=row[1][:256],
            )
            for row in _rows(archive, "item")
        }
        users = {row[0]: {"age": row[1], "gender": row[2], "occupation": row[3]} for row in _rows(archive, "user")}
        ratings = [(int(float(r[3])), n, r[0], r[1], float(r[2])) for n, r in enumerate(_rows(archive, "inter"))]
    ratings.sort(key=lambda r: (r[0], r[1]))  # timestamp order, ties by file order
    for ts_s, line, user, item, rating in ratings:
        click = Event(
            event_id=f"ml-{line}",
            ts=ts_s * 1000,
            user_id=user,
            item_id=item,
            type="click",
            item=items.get(item),
            user=users.get(user),
        )
        yield click
        if rating >= conversion_rating:
            yield msgspec.structs.replace(click, event_id=f"ml-{line}-cv", type="conversion")
