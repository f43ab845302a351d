"""Keep the scorer on the registry's current model: load at start, hot-swap on ``model-updates``.

A new version is verified and its onnxruntime session built beside the one in use; only then does
the scorer switch (one attribute assignment), so requests never wait for a load and never see a
half-loaded model. An artifact that fails verification is refused: the scorer keeps the model it
has, the refusal is logged and counted (``streamrec_model_loads_total{outcome="refused"}``).

The announcement only says *that* something changed; what is loaded is always what the registry's
files say, re-verified here. The registry's ``current`` pointer is also re-read every
``serving.registry_poll_s``, so a lost announcement delays a swap but does not prevent it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import msgspec
from confluent_kafka import OFFSET_END, Consumer

from serving.metrics import ServingMetrics
from serving.model import OnnxModel
from serving.scorer import Scorer
from stream.kafka.clients import assign_whole_topic
from stream.model_artifact import (
    VERSIONS_DIR,
    ArtifactError,
    ModelUpdate,
    current_artifact,
    read_manifest,
)

log = logging.getLogger(__name__)
_update_decoder = msgspec.json.Decoder(ModelUpdate)


class ModelLoader:
    """Loads artifacts into a scorer; refusals leave the scorer as it was."""

    def __init__(
        self,
        scorer: Scorer,
        threads: int = 1,
        metrics: ServingMetrics | None = None,
        load: Callable[[Path, int], OnnxModel] = OnnxModel.load,
    ) -> None:
        self.scorer = scorer
        self.threads = threads
        self.metrics = metrics
        self._load = load
        self.loaded_sha: str | None = None
        self.refusals: deque[str] = deque(maxlen=100)  # the latest, for inspection; the metric counts all

    def load(self, directory: Path) -> bool:
        """Verify, load and swap in the artifact at ``directory``; False (and the old model kept) if refused."""
        try:
            manifest = read_manifest(directory)
            if manifest.onnx_sha256 == self.loaded_sha:
                return True  # already serving it (a repeated announcement or a poll)
            model = self._load(directory, self.threads)
            self.scorer.swap(model)
        except ArtifactError as exc:
            self.refusals.append(str(exc))
            log.error("model at %s refused, still serving version %s: %s", directory, self.scorer.version, exc)
            if self.metrics:
                self.metrics.model_loads.labels("refused").inc()
            return False
        self.loaded_sha = model.manifest.onnx_sha256
        log.info("now serving model %s version %d", model.manifest.name, model.manifest.version)
        if self.metrics:
            self.metrics.model_loads.labels("loaded").inc()
        return True

    def load_current(self, registry_root: Path) -> bool:
        """Load the registry's current version, if there is one (False when none or refused)."""
        try:
            directory = current_artifact(registry_root)
        except ArtifactError as exc:
            self.refusals.append(str(exc))
            log.error("registry pointer refused, still serving version %s: %s", self.scorer.version, exc)
            if self.metrics:
                self.metrics.model_loads.labels("refused").inc()
            return False
        return directory is not None and self.load(directory)


class ModelWatcher:
    """A thread that follows the model-updates topic (and polls the registry) for one scorer."""

    def __init__(
        self, loader: ModelLoader, consumer: Consumer, topic: str, registry_root: Path, registry_poll_s: float = 30.0
    ) -> None:
        self.loader = loader
        self.consumer = consumer
        self.topic = topic
        self.registry_root = registry_root
        self.registry_poll_s = registry_poll_s
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        # Follow from the end: what was promoted before now is the registry's current version,
        # loaded right after the assignment, so nothing announced in between is missed.
        assign_whole_topic(self.consumer, self.topic, OFFSET_END, "kafka.model_updates_topic")
        self.loader.load_current(self.registry_root)
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last_poll = time.monotonic()
        while not self._stop.is_set():
            for msg in self.consumer.consume(100, 0.2):
                if msg.error() is not None:
                    log.warning("model-updates: %s", msg.error())
                    continue
                try:
                    update = _update_decoder.decode(msg.value() or b"")
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    log.error("model-updates message at offset %d ignored: %s", msg.offset(), exc)
                    continue
                log.info("announced: %s version %d", update.name, update.version)
                self.loader.load(self._inside_registry(Path(update.path)))
            if self.registry_poll_s and time.monotonic() - last_poll >= self.registry_poll_s:
                last_poll = time.monotonic()
                self.loader.load_current(self.registry_root)

    def _inside_registry(self, path: Path) -> Path:
        """Only versions of our own registry are loaded, whatever a message names: anything else
        becomes the path of a version that does not exist, which the loader refuses."""
        versions = (self.registry_root / VERSIONS_DIR).resolve()
        resolved = path.resolve()
        if versions in resolved.parents:
            return resolved
        log.error("model-updates names %s, outside the registry %s; ignored", path, versions)
        return versions / "outside-the-registry"

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.consumer.close()
