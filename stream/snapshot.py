"""Atomic, checksummed snapshots of one partition's processor state and the offset it reflects.

File: ``<dir>/<topic>/<partition>/<offset:020d>.snap`` = magic + sha256(payload) + payload, where the
payload is msgpack of plain data (no pickle: decoding never runs code). Written to a temporary
file, fsynced, renamed into place, then the directory fsynced; the newest file whose checksum
verifies wins, so a torn write falls back to the previous snapshot. The last ``keep`` are kept.
The checksum detects corruption, not tampering: the snapshot directory is trusted like the
process's own memory (docs/explanation/design.md, "What is trusted on disk").
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

log = logging.getLogger(__name__)

MAGIC = b"SRSNAP1\n"


@dataclass(frozen=True)
class Snapshot:
    offset: int  # the next offset to consume: every event before it is reflected in ``state``
    state: dict[str, Any]


class SnapshotStore:
    def __init__(self, root: str | os.PathLike[str], keep: int = 2) -> None:
        self.root = Path(root)
        self.keep = keep

    def _dir(self, topic: str, partition: int) -> Path:
        return self.root / topic / str(partition)

    def write(self, topic: str, partition: int, offset: int, state: dict[str, Any]) -> Path:
        payload = msgspec.msgpack.encode({"topic": topic, "partition": partition, "offset": offset, "state": state})
        folder = self._dir(topic, partition)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{offset:020d}.snap"
        tmp = folder / f".{offset:020d}.snap.{os.getpid()}.tmp"  # two writers never share a temp file
        with open(tmp, "wb") as fh:
            fh.write(MAGIC + hashlib.sha256(payload).digest() + payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fsync_dir(folder)
        for old in sorted(folder.glob("*.snap"))[: -self.keep]:
            old.unlink(missing_ok=True)
        return final

    def candidates(self, topic: str, partition: int) -> Iterator[Snapshot]:
        """Snapshots that verify, newest first; corrupt or foreign files are skipped with a warning."""
        for path in sorted(self._dir(topic, partition).glob("*.snap"), reverse=True):
            blob = path.read_bytes()
            head, digest, payload = blob[: len(MAGIC)], blob[len(MAGIC) : len(MAGIC) + 32], blob[len(MAGIC) + 32 :]
            if head != MAGIC or hashlib.sha256(payload).digest() != digest:
                log.warning("snapshot %s fails its checksum; trying an older one", path)
                continue
            try:
                doc = msgspec.msgpack.decode(payload)
                offset, state = int(doc["offset"]), doc["state"]
                owner = (doc["topic"], doc["partition"])
            except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("snapshot %s does not decode (%s); trying an older one", path, exc)
                continue
            if owner != (topic, partition):
                log.warning("snapshot %s belongs to %s/%s; skipped", path, *owner)
                continue
            yield Snapshot(offset, state)

    def latest(self, topic: str, partition: int) -> Snapshot | None:
        """The newest snapshot that verifies, or None (start from scratch)."""
        return next(self.candidates(topic, partition), None)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
