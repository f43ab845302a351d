"""The versioned model registry: register staged artifacts, promote one behind a quality gate, roll back.

Layout (the read side, and the artifact format, are ``stream.model_artifact``)::

    root/versions/000001/{model.onnx, manifest.json}
    root/current            # "000001\\n", replaced atomically
    root/history.jsonl      # append-only: {"action", "version", "at", "metrics"} per promotion/rollback

Every change is a rename of something complete into place, so a crash at any point leaves the
previous state in force (each step says what a crash just before it leaves behind). Every version
is verified (manifest decodes, checksum matches) before it is registered and before it becomes
current. Operations on one root are serialised with a lock file; readers need no lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from stream.model_artifact import (
    CURRENT_FILE,
    VERSIONS_DIR,
    ArtifactError,
    Manifest,
    current_version,
    read_manifest,
    sha256_file,
    utc_timestamp,
    verify_artifact,
    version_dir,
    write_manifest,
)
from stream.snapshot import fsync_dir

log = logging.getLogger(__name__)

HISTORY_FILE = "history.jsonl"
_INCOMING = ".incoming-"  # a version being registered
_DELETING = ".deleting-"  # a version being removed by retention


class RegistryError(Exception):
    """A registry operation that cannot be done (no such version, nothing to roll back to): one line with the fix."""


class QualityGate(msgspec.Struct, frozen=True):
    """A candidate's validation ``metric`` (higher is better) may trail the current model's by at most ``tolerance``."""

    metric: str
    tolerance: float


class PromotionResult(msgspec.Struct, frozen=True):
    promoted: bool
    version: int
    previous: int | None  # the version that was current before
    reason: str


class VersionInfo(msgspec.Struct, frozen=True):
    version: int
    created_at: str
    validation: dict[str, float]
    is_current: bool
    problem: str | None = None  # why the manifest does not read, if it does not


class HistoryEntry(msgspec.Struct, kw_only=True, frozen=True):
    action: str  # "promote" | "rollback"
    version: int
    at: str
    metrics: dict[str, dict[str, float]]


class Registry:
    def __init__(self, root: str | os.PathLike[str], keep: int = 5) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        self.root = Path(root)
        self.keep = keep
        self.versions_dir = self.root / VERSIONS_DIR

    # -- reading ------------------------------------------------------------------------------

    def versions(self) -> list[int]:
        """Registered version numbers, ascending (half-registered or half-deleted ones are not listed)."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(int(p.name) for p in self.versions_dir.iterdir() if p.name.isascii() and p.name.isdigit())

    def list(self) -> list[VersionInfo]:
        current = current_version(self.root)
        out = []
        for version in self.versions():
            try:
                manifest = read_manifest(version_dir(self.root, version))
                out.append(
                    VersionInfo(
                        version, manifest.created_at, manifest.metrics.get("validation", {}), version == current
                    )
                )
            except ArtifactError as exc:
                out.append(VersionInfo(version, "", {}, version == current, problem=str(exc)))
        return out

    def history(self) -> list[HistoryEntry]:
        """Promotions and rollbacks, oldest first; a torn last line (crash while appending) is skipped."""
        try:
            lines = (self.root / HISTORY_FILE).read_bytes().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in filter(None, lines):
            try:
                out.append(msgspec.json.decode(line, type=HistoryEntry))
            except msgspec.DecodeError:
                log.warning("skipping an unreadable line of %s: %r", self.root / HISTORY_FILE, line[:80])
        return out

    def promotion_stack(self) -> list[int]:
        """The versions a rollback walks back through, the current one last.

        Replays the history: a promotion pushes its version, a rollback pops back to its version.
        A current pointer the history does not end with (a crash after the pointer was replaced but
        before the history was appended) is pushed on top.
        """
        stack: list[int] = []
        for entry in self.history():
            if entry.action == "rollback" and entry.version in stack:
                while stack[-1] != entry.version:
                    stack.pop()
            else:
                stack.append(entry.version)
        current = current_version(self.root)
        if current is not None and (not stack or stack[-1] != current):
            stack.append(current)
        return stack

    # -- changing -----------------------------------------------------------------------------

    def register(self, staging_dir: str | os.PathLike[str]) -> Manifest:
        """Copy a verified staged artifact in as the next version; returns its manifest (with ``version`` set)."""
        staging = Path(staging_dir)
        staged = verify_artifact(staging)
        with self._locked():
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            version = max(self.versions(), default=0) + 1
            manifest = msgspec.structs.replace(staged, version=version)
            incoming = self.versions_dir / f"{_INCOMING}{version:06d}"  # unique: we hold the lock
            incoming.mkdir()
            try:
                # 1. Copy the ONNX file and write the manifest into a hidden temporary directory,
                #    each fsynced. A crash here leaves only a hidden ".incoming-*" directory, which is
                #    not a version and is removed by the next registration.
                onnx = incoming / manifest.onnx_file
                shutil.copyfile(staging / manifest.onnx_file, onnx)
                _fsync_file(onnx)
                if sha256_file(onnx) != staged.onnx_sha256:
                    raise ArtifactError(
                        f"{staging / manifest.onnx_file} changed while it was being registered; "
                        "register it again once the export has finished"
                    )
                write_manifest(incoming, manifest)
                fsync_dir(incoming)
                # 2. Rename it into place, then fsync the parent: the version appears whole or not at all.
                os.rename(incoming, version_dir(self.root, version))
                fsync_dir(self.versions_dir)
            except BaseException:
                shutil.rmtree(incoming, ignore_errors=True)
                raise
            self._retain()
        log.info("registered %s as version %d", staging, version)
        return manifest

    def promote(self, version: int, gate: QualityGate | None, force: bool = False) -> PromotionResult:
        """Make ``version`` current if it verifies and (unless ``force``) passes ``gate``.

        A corrupt artifact raises ArtifactError and a refused one returns ``promoted=False``;
        either way ``current`` is unchanged. ``force`` skips the gate, never the verification.
        """
        with self._locked():
            candidate = self._verified(version)
            previous = current_version(self.root)
            if previous == version:
                return PromotionResult(False, version, previous, f"version {version} is already current")
            if force or gate is None or previous is None:
                reason = (
                    "forced: quality gate skipped"
                    if force
                    else "no quality gate"
                    if gate is None
                    else "first promoted model"
                )
            else:
                passed, reason = self._gate(gate, candidate, previous)
                if not passed:
                    return PromotionResult(False, version, previous, reason)
            self._make_current(candidate, "promote")
            self._retain()
        return PromotionResult(True, version, previous, reason)

    def rollback(self) -> PromotionResult:
        """Make the previously promoted version that still verifies current again."""
        with self._locked():
            stack = self.promotion_stack()
            if not stack:
                raise RegistryError(f"nothing was promoted in {self.root}; promote a version first")
            skipped = []
            for version in reversed(stack[:-1]):
                if version == stack[-1]:
                    continue
                try:
                    candidate = self._verified(version)
                except (ArtifactError, RegistryError) as exc:
                    skipped.append(f"{version} ({exc})")
                    continue
                self._make_current(candidate, "rollback")
                reason = f"rolled back from version {stack[-1]}" + "".join(f"; skipped {s}" for s in skipped)
                return PromotionResult(True, version, stack[-1], reason)
        found = (
            f"no earlier promoted version verifies (tried {', '.join(skipped)})"
            if skipped
            else f"no version was promoted before {stack[-1]}"
        )
        raise RegistryError(
            f"cannot roll back {self.root}: {found}; promote a version explicitly (`streamrec model list`)"
        )

    # -- helpers ------------------------------------------------------------------------------

    def _verified(self, version: int) -> Manifest:
        directory = version_dir(self.root, version)
        if not directory.is_dir():
            raise RegistryError(f"version {version} is not registered in {self.root}; see `streamrec model list`")
        manifest = verify_artifact(directory)
        if manifest.version != version:
            raise ArtifactError(f"{directory} holds a manifest of version {manifest.version}; register the model again")
        return manifest

    def _gate(self, gate: QualityGate, candidate: Manifest, current: int) -> tuple[bool, str]:
        """Both models need the metric: without two numbers there is nothing to compare (use --force)."""
        new = candidate.metrics.get("validation", {}).get(gate.metric)
        if new is None:
            return False, f"version {candidate.version} has no validation {gate.metric}; evaluate it or use --force"
        try:
            old = read_manifest(version_dir(self.root, current)).metrics.get("validation", {}).get(gate.metric)
        except ArtifactError as exc:
            return False, f"the current version {current} cannot be compared ({exc}); use --force"
        if old is None:
            return False, f"the current version {current} has no validation {gate.metric}; use --force"
        verdict = f"validation {gate.metric} {new:.4f} vs {old:.4f} of version {current} (tolerance {gate.tolerance})"
        if new < old - gate.tolerance:
            return False, f"refused by the quality gate: {verdict}; use --force to promote anyway"
        return True, f"passed the quality gate: {verdict}"

    def _make_current(self, manifest: Manifest, action: str) -> None:
        pointer = self.root / CURRENT_FILE
        tmp = self.root / f".{CURRENT_FILE}.tmp"
        # 1. Write the new pointer to a temporary file and fsync it. A crash here leaves the old
        #    pointer in force and a stale temporary file that the next promotion overwrites.
        with open(tmp, "w", encoding="ascii") as fh:
            fh.write(version_dir(self.root, manifest.version).name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        # 2. Replace the pointer atomically: readers see the old version or the new one, never a mix.
        os.replace(tmp, pointer)
        # 3. fsync the directory so the rename survives a power loss. A crash before it may bring
        #    back the old pointer with the history not yet appended: consistent, just not promoted.
        fsync_dir(self.root)
        # 4. Append to the history. A crash before it leaves the new pointer in force and the history
        #    one entry short; promotion_stack() puts the current version on top, so rollback still works.
        self._append_history(
            HistoryEntry(action=action, version=manifest.version, at=utc_timestamp(), metrics=manifest.metrics)
        )

    def _append_history(self, entry: HistoryEntry) -> None:
        path = self.root / HISTORY_FILE
        with open(path, "ab") as fh:
            # A torn last line (crash mid-append) must not swallow this entry: start a new line.
            torn = fh.tell() > 0 and _last_byte(path) != b"\n"
            fh.write((b"\n" if torn else b"") + msgspec.json.encode(entry) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _retain(self) -> None:
        """Delete versions beyond the newest ``keep``, except the current and the previous promoted one."""
        stack = self.promotion_stack()
        protected = set(stack[-2:])
        for version in self.versions()[: -self.keep]:
            if version in protected:
                continue
            # Hide the version with one rename before removing it: a crash mid-delete leaves a
            # hidden ".deleting-*" directory, never a half-deleted version that still looks registered.
            doomed = self.versions_dir / f"{_DELETING}{version:06d}"
            os.rename(version_dir(self.root, version), doomed)
            shutil.rmtree(doomed)
            log.info("retention: deleted version %d", version)
        fsync_dir(self.versions_dir)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One registry operation at a time per root; leftovers of crashed ones are removed first."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.versions_dir.is_dir():
                for leftover in self.versions_dir.iterdir():
                    if leftover.name.startswith((_INCOMING, _DELETING)):
                        shutil.rmtree(leftover, ignore_errors=True)
            yield


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)
