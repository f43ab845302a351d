"""The model artifact: the on-disk contract between ``offline/`` (writes models) and ``serving/``
(reads them), so neither imports the other and the served path never needs torch.

An artifact is a directory holding ``model.onnx`` and ``manifest.json`` (a :class:`Manifest`:
tensor names and shapes, the feature and id maps the graph expects, the training window, metrics
and the ONNX file's sha256). A registry of them is laid out as::

    root/versions/000001/{model.onnx, manifest.json}
    root/current            # "000001\\n": the version serving loads
    root/history.jsonl      # promotions and rollbacks (offline/registry.py writes it)

This module is the read side of that layout (``current_version``, ``current_artifact``); writing
it is ``offline.registry``. A promotion is announced on the model-updates topic as a
:class:`ModelUpdate`. The sha256 detects corruption, not tampering: the registry directory is
trusted like the process's own memory (docs/explanation/design.md, "What is trusted on disk").
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec

MANIFEST_FORMAT = 1
MANIFEST_FILE = "manifest.json"
VERSIONS_DIR = "versions"
CURRENT_FILE = "current"

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Sha256 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
# A plain file name inside the artifact directory: a manifest cannot point outside it.
FileName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$", max_length=128)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
_POINTER = re.compile(r"[0-9]{6,}\n?")


class ArtifactError(Exception):
    """A missing, corrupt or incompatible artifact: a one-line message naming what is wrong and the fix."""


class TensorSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    name: str
    dtype: str  # ONNX element type name, e.g. "float32", "int64"
    shape: list[int | str]  # a str dimension (e.g. "batch") is dynamic


class TrainingWindow(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    start_ts_ms: int
    end_ts_ms: int
    events: NonNegative


class Manifest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    format: int = MANIFEST_FORMAT
    name: Name
    version: NonNegative  # 0 until the registry assigns one
    created_at: str  # ISO-8601 UTC, see utc_timestamp()
    onnx_file: FileName = "model.onnx"
    onnx_sha256: Sha256
    opset: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    features: dict[str, str]  # feature name -> human description
    id_maps: dict[str, list[str]]  # e.g. "users", "items": index -> external id
    training_window: TrainingWindow
    metrics: dict[str, dict[str, float]]  # split -> metric -> value, e.g. {"validation": {"ndcg@10": 0.3}}
    parity_max_abs_diff: float  # largest |torch - onnxruntime| score difference seen at export
    extra: dict[str, Any] = {}


class ModelUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The model-updates message (JSON, keyed by ``name``): serving reloads ``path`` on receipt."""

    name: str
    version: int
    path: str  # absolute path of the version's artifact directory
    onnx_sha256: str
    metrics: dict[str, dict[str, float]]
    promoted_at: str  # ISO-8601 UTC


class _Header(msgspec.Struct):
    """Only the format number, read leniently first: a newer format gets "upgrade", not "unknown field"."""

    format: int


_header_decoder = msgspec.json.Decoder(_Header)
_decoder = msgspec.json.Decoder(Manifest)
_encoder = msgspec.json.Encoder()


def utc_timestamp() -> str:
    """Now as ISO-8601 UTC with a ``Z`` suffix: the form of every timestamp in the registry."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc_timestamp(stamp: str) -> float:
    """Unix seconds of a registry timestamp (the inverse of ``utc_timestamp``)."""
    return datetime.fromisoformat(stamp).timestamp()


def sha256_file(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_manifest(directory: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Write ``manifest.json`` durably (fsynced); refuse a manifest that would not read back."""
    data = msgspec.json.format(_encoder.encode(manifest), indent=2) + b"\n"
    try:
        _decoder.decode(data)
    except msgspec.ValidationError as exc:  # e.g. a NaN metric, which JSON writes as null
        raise ArtifactError(f"manifest of {manifest.name!r} would not read back ({exc}); fix that value") from None
    path = Path(directory) / MANIFEST_FILE
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def read_manifest(directory: str | os.PathLike[str]) -> Manifest:
    """Decode ``manifest.json`` strictly: unknown fields, wrong types and other formats are refused."""
    path = Path(directory) / MANIFEST_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path} does not exist; export the model with its manifest") from None
    try:
        found = _header_decoder.decode(data).format
        if found != MANIFEST_FORMAT:
            raise ArtifactError(
                f"{path} has manifest format {found}, this streamrec reads format "
                f"{MANIFEST_FORMAT}; export the model again with this streamrec, or upgrade the reader"
            )
        return _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ArtifactError(f"{path} does not match the manifest schema ({exc}); export the model again") from None
    except msgspec.DecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc}); export the model again") from None


def verify_artifact(directory: str | os.PathLike[str]) -> Manifest:
    """The manifest of an artifact whose ONNX file is present and matches its checksum.

    Called before an artifact is registered, promoted or loaded: nothing uses a model that fails it.
    """
    manifest = read_manifest(directory)
    onnx = Path(directory) / manifest.onnx_file
    try:
        actual = sha256_file(onnx)
    except FileNotFoundError:
        raise ArtifactError(f"{onnx} is missing; export the model again") from None
    if actual != manifest.onnx_sha256:
        raise ArtifactError(
            f"{onnx} has sha256 {actual[:12]}..., its manifest says {manifest.onnx_sha256[:12]}...; "
            "the file is corrupt or was changed after export: export the model again"
        )
    return manifest


def version_dir(root: str | os.PathLike[str], version: int) -> Path:
    return Path(root) / VERSIONS_DIR / f"{version:06d}"


def current_version(root: str | os.PathLike[str]) -> int | None:
    """The version the ``current`` pointer names, or None when nothing was promoted yet."""
    pointer = Path(root) / CURRENT_FILE
    try:
        text = pointer.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        text = "<binary>"
    if not _POINTER.fullmatch(text) or int(text) == 0:
        raise ArtifactError(
            f"{pointer} holds {text[:20]!r}, not a version number like '000001'; "
            "promote a version again (`streamrec model promote VERSION`)"
        )
    return int(text)


def current_artifact(root: str | os.PathLike[str]) -> Path | None:
    """The directory of the current version (verify it before loading), or None when nothing was promoted."""
    version = current_version(root)
    if version is None:
        return None
    directory = version_dir(root, version)
    if not directory.is_dir():
        raise ArtifactError(
            f"{Path(root) / CURRENT_FILE} names version {version}, which is not in {directory.parent}; "
            "promote an existing version (`streamrec model list`)"
        )
    return directory
