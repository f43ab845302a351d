"""Tell serving about a promotion: one :class:`~stream.model_artifact.ModelUpdate` on the model-updates topic.

The message only says where the new version is; serving verifies and loads it from the registry's
files, so a lost or repeated announcement never serves a model that the registry did not promote.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec
from confluent_kafka import KafkaError, KafkaException, Producer

from stream.kafka.clients import produce_waiting
from stream.model_artifact import Manifest, ModelUpdate, utc_timestamp, version_dir

FLUSH_TIMEOUT_S = 30.0


class AnnounceError(Exception):
    """The announcement was not delivered: one line naming the fix."""


def announce_promotion(producer: Producer, topic: str, manifest: Manifest, root: str | os.PathLike[str]) -> None:
    """Produce the update keyed by model name and wait for the broker to acknowledge it."""
    update = ModelUpdate(
        name=manifest.name,
        version=manifest.version,
        path=str(version_dir(Path(root).resolve(), manifest.version)),
        onnx_sha256=manifest.onnx_sha256,
        metrics=manifest.metrics,
        promoted_at=utc_timestamp(),
    )
    failures: list[KafkaError] = []

    def delivered(err: KafkaError | None, _msg) -> None:
        if err is not None:
            failures.append(err)

    where = f"version {manifest.version} on topic {topic!r}"
    try:
        produce_waiting(producer, topic, msgspec.json.encode(update), key=manifest.name.encode(), on_delivery=delivered)
    except KafkaException as exc:
        raise AnnounceError(f"cannot announce {where} ({exc.args[0].str()}); check the topic and broker") from None
    if producer.flush(FLUSH_TIMEOUT_S) > 0:
        raise AnnounceError(f"announcing {where} timed out after {FLUSH_TIMEOUT_S:.0f}s; check that the broker is up")
    if failures:
        raise AnnounceError(f"announcing {where} failed ({failures[0].str()}); check the topic and broker")
