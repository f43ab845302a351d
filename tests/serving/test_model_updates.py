"""Loading models: a verified artifact is swapped in; anything else is refused and the last good
model keeps serving."""

from prometheus_client import CollectorRegistry

from serving.metrics import ServingMetrics
from serving.model_updates import ModelLoader, ModelWatcher
from serving.scorer import Scorer
from stream.model_artifact import parse_utc_timestamp, read_manifest, version_dir
from tests.serving.conftest import registry_with_versions


def loader_for(cfg):
    metrics = ServingMetrics(CollectorRegistry())
    scorer = Scorer(cfg.serving, metrics)
    return ModelLoader(scorer, metrics=metrics), scorer, metrics


def refusals(metrics) -> float:
    return metrics.registry.get_sample_value("streamrec_model_loads_total", {"outcome": "refused"})


def test_the_current_version_is_loaded_and_a_newer_one_swapped_in(cfg, dataset, tmp_path):
    registry = registry_with_versions(dataset, tmp_path / "models", tmp_path, versions=2)
    loader, scorer, metrics = loader_for(cfg)
    assert loader.load_current(registry.root) and scorer.version == 1
    assert loader.load(version_dir(registry.root, 2)) and scorer.version == 2
    assert metrics.registry.get_sample_value("streamrec_model_version") == 2
    created = read_manifest(version_dir(registry.root, 2)).created_at  # how stale the served model is
    assert metrics.registry.get_sample_value("streamrec_model_created_timestamp_seconds") == parse_utc_timestamp(
        created
    )


def test_a_corrupt_artifact_is_refused_and_the_old_model_keeps_serving(cfg, dataset, tmp_path):
    registry = registry_with_versions(dataset, tmp_path / "models", tmp_path, versions=2)
    loader, scorer, metrics = loader_for(cfg)
    loader.load_current(registry.root)
    onnx = version_dir(registry.root, 2) / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:100])  # truncated
    assert not loader.load(version_dir(registry.root, 2))
    assert scorer.version == 1 and refusals(metrics) == 1 and "sha256" in loader.refusals[0]


def test_a_pointer_to_a_missing_version_is_refused(cfg, dataset, tmp_path):
    registry = registry_with_versions(dataset, tmp_path / "models", tmp_path, versions=1)
    loader, scorer, metrics = loader_for(cfg)
    loader.load_current(registry.root)
    (registry.root / "current").write_text("000009\n")
    assert not loader.load_current(registry.root)
    assert scorer.version == 1 and refusals(metrics) == 1


def test_an_empty_registry_loads_nothing(cfg, tmp_path):
    loader, scorer, _ = loader_for(cfg)
    assert not loader.load_current(tmp_path / "nothing-here") and scorer.version is None


def test_an_announcement_naming_a_path_outside_the_registry_is_not_followed(cfg, dataset, tmp_path):
    registry = registry_with_versions(dataset, tmp_path / "models", tmp_path, versions=1)
    loader, scorer, _ = loader_for(cfg)
    watcher = ModelWatcher(loader, consumer=None, topic="model-updates", registry_root=registry.root)
    elsewhere = watcher._inside_registry(tmp_path / "v1")  # a real, valid artifact, but not the registry's
    assert not loader.load(elsewhere) and scorer.version is None
    assert watcher._inside_registry(version_dir(registry.root, 1)) == version_dir(registry.root, 1).resolve()
