"""The previous teacher, kept beside the registry so that the next version can warm-start from it.

``registry_root/teacher/`` holds ``weights.pt`` (a state dict, loaded with ``weights_only=True``: no
pickled code runs) and ``catalogue.json`` (the id and token vocabularies the rows of those weights
are indexed by), plus ``checksums.json``. Written to a temporary directory, fsynced and renamed into
place, so a reader sees the old pair or the new one, never half of each. Anything that does not load
and verify raises ``CheckpointError``; the trainer then trains cold.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import msgspec
import torch
from torch import nn

from offline.samples import Catalogue
from stream.model_artifact import sha256_file

DIR_NAME = "teacher"
FILES = ("weights.pt", "catalogue.json")


class CheckpointError(Exception):
    """The previous teacher cannot be used; the trainer trains cold."""


def checkpoint_dir(registry_root: Path, name: str = DIR_NAME) -> Path:
    """``name``: one directory per kind of teacher (the sequence teacher keeps its own)."""
    return Path(registry_root) / name


def save_checkpoint(registry_root: Path, teacher: nn.Module, catalogue: Catalogue, name: str = DIR_NAME) -> Path:
    final = checkpoint_dir(registry_root, name)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    torch.save(teacher.state_dict(), tmp / FILES[0])
    (tmp / FILES[1]).write_bytes(msgspec.json.encode(catalogue))
    (tmp / "checksums.json").write_bytes(msgspec.json.encode({f: sha256_file(tmp / f) for f in FILES}))
    for f in (*FILES, "checksums.json"):
        with open(tmp / f, "rb") as fh:
            os.fsync(fh.fileno())
    # Order: files complete and fsynced -> old checkpoint moved aside -> new one renamed in -> old removed.
    old = final.parent / f".{name}-old-{os.getpid()}"
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(registry_root: Path, name: str = DIR_NAME) -> tuple[dict[str, torch.Tensor], Catalogue] | None:
    """The previous teacher's state dict and catalogue; None if there is none."""
    d = checkpoint_dir(registry_root, name)
    if not d.exists():
        return None
    try:
        sums = msgspec.json.decode((d / "checksums.json").read_bytes(), type=dict[str, str])
        for f in FILES:
            if sums.get(f) != sha256_file(d / f):
                raise CheckpointError(f"{d / f} does not match its checksum")
        state = torch.load(d / FILES[0], weights_only=True)
        catalogue = msgspec.json.decode((d / FILES[1]).read_bytes(), type=Catalogue)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{d}: previous teacher unreadable ({exc})") from exc
    return state, catalogue
