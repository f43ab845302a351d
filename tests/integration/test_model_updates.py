"""Promotions and rollbacks are announced on the model-updates topic of a real broker.

Contract under test (offline/announce.py): one JSON ModelUpdate per change, keyed by model name,
naming the version directory serving should load; a delivery that fails raises.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import msgspec
import pytest

from offline.announce import AnnounceError, announce_promotion
from offline.registry import Registry
from stream.config import load_config
from stream.kafka.broker import free_port
from stream.kafka.clients import make_producer
from stream.model_artifact import ModelUpdate, version_dir
from streamrec.cli import main
from tests.kafka_fixtures import read_topic
from tests.stream.test_model_artifact import stage_artifact

pytestmark = pytest.mark.integration


def test_promote_and_rollback_are_announced(broker, tmp_path, capsys):
    topic = f"model-updates-{uuid.uuid4().hex[:8]}"
    registry = Registry(tmp_path / "models")
    staged = [
        stage_artifact(tmp_path / f"staging-{n}", onnx=f"graph {n}".encode(), ndcg=0.3 + n / 100) for n in range(2)
    ]
    for n in range(2):
        registry.register(tmp_path / f"staging-{n}")
    flags = [
        "--registry-root",
        str(registry.root),
        "--bootstrap-servers",
        broker.bootstrap_servers,
        "--set",
        f"kafka.model_updates_topic='{topic}'",
        "--json",
    ]

    for argv in (["promote", "1"], ["promote", "2"], ["rollback"]):
        assert main(["model", *argv, *flags]) == 0
        assert json.loads(capsys.readouterr().out)["announced_on"] == topic

    cfg = load_config(env={}, overrides=[f"kafka.bootstrap_servers='{broker.bootstrap_servers}'"])
    messages = read_topic(cfg, topic, expected=3)
    updates = [msgspec.json.decode(m.value(), type=ModelUpdate) for m in messages]
    assert [u.version for u in updates] == [1, 2, 1]
    assert {m.key() for m in messages} == {b"student"}
    first = updates[0]
    assert first.name == "student"
    assert first.path == str(version_dir(registry.root.resolve(), 1))
    assert first.onnx_sha256 == staged[0].onnx_sha256
    assert first.metrics == {"validation": {"ndcg@10": 0.3}, "test": {"ndcg@10": 0.29}}
    assert datetime.fromisoformat(first.promoted_at).utcoffset().total_seconds() == 0


def test_a_refused_promotion_is_not_announced(broker, tmp_path, capsys):
    topic = f"model-updates-{uuid.uuid4().hex[:8]}"
    registry = Registry(tmp_path / "models")
    for n, ndcg in enumerate([0.30, 0.10]):
        stage_artifact(tmp_path / f"staging-{n}", onnx=f"graph {n}".encode(), ndcg=ndcg)
        registry.register(tmp_path / f"staging-{n}")
    flags = [
        "--registry-root",
        str(registry.root),
        "--bootstrap-servers",
        broker.bootstrap_servers,
        "--set",
        f"kafka.model_updates_topic='{topic}'",
    ]
    assert main(["model", "promote", "1", *flags]) == 0
    assert main(["model", "promote", "2", *flags]) == 1
    assert "refused by the quality gate" in capsys.readouterr().err
    cfg = load_config(env={}, overrides=[f"kafka.bootstrap_servers='{broker.bootstrap_servers}'"])
    assert [msgspec.json.decode(m.value(), type=ModelUpdate).version for m in read_topic(cfg, topic, 1)] == [1]


def test_an_undeliverable_announcement_raises(tmp_path):
    manifest = stage_artifact(tmp_path / "staging")
    cfg = load_config(env={}, overrides=[f"kafka.bootstrap_servers='127.0.0.1:{free_port()}'"])
    producer = make_producer(cfg.kafka, **{"message.timeout.ms": 1000})
    with pytest.raises(AnnounceError, match=r"failed .*check the topic and broker"):
        announce_promotion(producer, "model-updates", manifest, tmp_path / "models")
