"""The model registry: versions appear whole or not at all, only verified models become current,
the quality gate guards promotion, rollback walks back through promotions, retention keeps what a
rollback needs, and a crash at any step leaves the previous state in force."""

import json
import os

import pytest

from offline import registry as registry_module
from offline.registry import QualityGate, Registry, RegistryError
from stream.model_artifact import ArtifactError, current_version, read_manifest, version_dir
from streamrec.cli import main
from tests.stream.test_model_artifact import stage_artifact

GATE = QualityGate("ndcg@10", tolerance=0.01)


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(tmp_path / "models", keep=3)


def register(registry: Registry, tmp_path, ndcg: float | None = 0.30, onnx: bytes | None = None) -> int:
    staging = tmp_path / f"staging-{len(list(tmp_path.iterdir()))}"
    stage_artifact(staging, onnx=onnx or f"graph {staging.name}".encode(), ndcg=ndcg)
    return registry.register(staging).version


def corrupt(registry: Registry, version: int) -> None:
    (version_dir(registry.root, version) / "model.onnx").write_bytes(b"flipped bits")


# -- register ---------------------------------------------------------------------------------------


def test_register_assigns_increasing_versions_and_records_them_in_the_copy(registry, tmp_path):
    assert [register(registry, tmp_path) for _ in range(3)] == [1, 2, 3]
    assert registry.versions() == [1, 2, 3]
    assert read_manifest(version_dir(registry.root, 2)).version == 2
    assert read_manifest(tmp_path / "staging-0").version == 0  # the staged artifact is not touched
    assert current_version(registry.root) is None  # registering is not promoting


def test_register_refuses_an_onnx_file_changed_after_staging(registry, tmp_path):
    stage_artifact(tmp_path / "staging")
    (tmp_path / "staging" / "model.onnx").write_bytes(b"changed after the manifest was written")
    with pytest.raises(ArtifactError, match="sha256"):
        registry.register(tmp_path / "staging")
    assert registry.versions() == []


def test_register_refuses_a_malformed_manifest_with_a_clear_message(registry, tmp_path):
    stage_artifact(tmp_path / "staging")
    (tmp_path / "staging" / "manifest.json").write_text('{"format": 1, "name": "student"}')
    with pytest.raises(ArtifactError, match=r"missing required field .*; export the model again"):
        registry.register(tmp_path / "staging")
    assert registry.versions() == []


def test_a_failed_register_leaves_no_half_written_version(registry, tmp_path, monkeypatch):
    register(registry, tmp_path)

    def disk_full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(registry_module, "write_manifest", disk_full)
    with pytest.raises(OSError):
        register(registry, tmp_path)
    assert registry.versions() == [1]
    assert [p.name for p in (registry.root / "versions").iterdir()] == ["000001"]


def test_register_refuses_a_file_that_changes_while_it_is_copied(registry, tmp_path, monkeypatch):
    copy = registry_module.shutil.copyfile

    def copy_then_exporter_rewrites(src, dst):
        copy(src, dst)
        with open(dst, "ab") as fh:
            fh.write(b"more weights")

    monkeypatch.setattr(registry_module.shutil, "copyfile", copy_then_exporter_rewrites)
    with pytest.raises(ArtifactError, match="changed while it was being registered"):
        register(registry, tmp_path)
    assert registry.versions() == []


def test_a_crash_mid_register_leaves_a_hidden_directory_that_the_next_register_removes(registry, tmp_path):
    register(registry, tmp_path)
    leftover = registry.root / "versions" / ".incoming-crashed"
    leftover.mkdir()
    (leftover / "model.onnx").write_bytes(b"half")
    assert registry.versions() == [1]
    assert register(registry, tmp_path) == 2
    assert not leftover.exists()


# -- promote ----------------------------------------------------------------------------------------


def test_the_first_model_passes_the_gate_and_becomes_current(registry, tmp_path):
    register(registry, tmp_path)
    result = registry.promote(1, GATE)
    assert (result.promoted, result.version, result.previous) == (True, 1, None)
    assert (registry.root / "current").read_text() == "000001\n"
    [entry] = registry.history()
    assert (entry.action, entry.version, entry.metrics["validation"]) == ("promote", 1, {"ndcg@10": 0.30})


@pytest.mark.parametrize("force", [False, True])
def test_a_corrupt_artifact_is_never_promoted_not_even_by_force(registry, tmp_path, force):
    register(registry, tmp_path), register(registry, tmp_path)
    registry.promote(1, GATE)
    corrupt(registry, 2)
    with pytest.raises(ArtifactError, match="sha256"):
        registry.promote(2, GATE, force=force)
    assert current_version(registry.root) == 1
    assert len(registry.history()) == 1


def test_a_version_whose_manifest_was_damaged_is_not_promoted(registry, tmp_path):
    register(registry, tmp_path)
    (version_dir(registry.root, 1) / "manifest.json").write_text("{")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        registry.promote(1, GATE)
    assert current_version(registry.root) is None


def test_the_gate_refuses_a_model_worse_by_more_than_the_tolerance(registry, tmp_path):
    register(registry, tmp_path, ndcg=0.30), register(registry, tmp_path, ndcg=0.28)
    registry.promote(1, GATE)
    result = registry.promote(2, GATE)
    assert not result.promoted and result.previous == 1
    assert "refused by the quality gate" in result.reason and "--force" in result.reason
    assert current_version(registry.root) == 1


@pytest.mark.parametrize("ndcg", [0.295, 0.30, 0.35])
def test_the_gate_accepts_a_model_within_the_tolerance_or_better(registry, tmp_path, ndcg):
    register(registry, tmp_path, ndcg=0.30), register(registry, tmp_path, ndcg=ndcg)
    registry.promote(1, GATE)
    result = registry.promote(2, GATE)
    assert result.promoted and "passed the quality gate" in result.reason
    assert current_version(registry.root) == 2


def test_the_gate_refuses_a_model_without_the_metric(registry, tmp_path):
    register(registry, tmp_path), register(registry, tmp_path, ndcg=None)
    registry.promote(1, GATE)
    result = registry.promote(2, GATE)
    assert not result.promoted and "no validation ndcg@10" in result.reason


def test_force_skips_the_gate(registry, tmp_path):
    register(registry, tmp_path, ndcg=0.30), register(registry, tmp_path, ndcg=0.10)
    registry.promote(1, GATE)
    result = registry.promote(2, GATE, force=True)
    assert result.promoted and "forced" in result.reason
    assert current_version(registry.root) == 2


def test_without_a_gate_any_verified_version_is_promoted(registry, tmp_path):
    register(registry, tmp_path, ndcg=0.30), register(registry, tmp_path, ndcg=None)
    registry.promote(1, GATE)
    result = registry.promote(2, gate=None)
    assert result.promoted and result.reason == "no quality gate"


def test_promoting_the_current_version_changes_nothing(registry, tmp_path):
    register(registry, tmp_path)
    registry.promote(1, GATE)
    result = registry.promote(1, GATE)
    assert not result.promoted and result.version == result.previous == 1 and "already current" in result.reason
    assert len(registry.history()) == 1


def test_promoting_an_unknown_version_names_the_fix(registry):
    with pytest.raises(RegistryError, match=r"version 9 is not registered.*streamrec model list"):
        registry.promote(9, GATE)


def test_a_crash_between_the_temporary_pointer_and_the_rename_leaves_the_old_current(registry, tmp_path, monkeypatch):
    register(registry, tmp_path), register(registry, tmp_path)
    registry.promote(1, GATE)

    def crash(*_):
        raise KeyboardInterrupt("power cut")

    with monkeypatch.context() as patch:
        patch.setattr(registry_module.os, "replace", crash)
        with pytest.raises(KeyboardInterrupt):
            registry.promote(2, GATE)
    assert (registry.root / ".current.tmp").read_text() == "000002\n"  # written, never renamed
    assert current_version(registry.root) == 1
    assert [e.version for e in registry.history()] == [1]
    assert registry.promote(2, GATE).promoted  # the stale temporary file is simply overwritten
    assert current_version(registry.root) == 2


# -- rollback ---------------------------------------------------------------------------------------


def test_rollback_returns_to_the_previously_promoted_version_and_further_back(registry, tmp_path):
    for _ in range(3):
        registry.promote(register(registry, tmp_path), GATE)
    result = registry.rollback()
    assert (result.promoted, result.version, result.previous) == (True, 2, 3)
    assert registry.rollback().version == 1
    assert current_version(registry.root) == 1
    assert [(e.action, e.version) for e in registry.history()][-2:] == [("rollback", 2), ("rollback", 1)]
    with pytest.raises(RegistryError, match="no version was promoted before 1"):
        registry.rollback()


def test_rollback_skips_a_previous_version_that_no_longer_verifies(registry, tmp_path):
    for _ in range(3):
        registry.promote(register(registry, tmp_path), GATE)
    corrupt(registry, 2)
    result = registry.rollback()
    assert result.version == 1 and "skipped 2" in result.reason


def test_rollback_with_nothing_promoted_names_the_fix(registry):
    with pytest.raises(RegistryError, match="promote a version first"):
        registry.rollback()


def test_rollback_works_after_a_crash_between_the_pointer_and_the_history(registry, tmp_path, monkeypatch):
    registry.promote(register(registry, tmp_path), GATE)
    register(registry, tmp_path)
    with monkeypatch.context() as patch:
        patch.setattr(Registry, "_append_history", lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        with pytest.raises(KeyboardInterrupt):
            registry.promote(2, GATE)
    assert current_version(registry.root) == 2 and len(registry.history()) == 1
    assert registry.rollback().version == 1


def test_a_torn_history_line_is_skipped_and_does_not_swallow_the_next(registry, tmp_path):
    registry.promote(register(registry, tmp_path), GATE)
    with open(registry.root / "history.jsonl", "ab") as fh:
        fh.write(b'{"action": "prom')  # a crash mid-append
    registry.promote(register(registry, tmp_path), GATE)
    assert [e.version for e in registry.history()] == [1, 2]


# -- retention and listing --------------------------------------------------------------------------


def test_retention_keeps_the_newest_plus_the_current_and_the_previous(registry, tmp_path):
    registry.promote(register(registry, tmp_path), GATE)
    registry.promote(register(registry, tmp_path), GATE)
    for _ in range(5):
        register(registry, tmp_path)
    assert registry.versions() == [1, 2, 5, 6, 7]  # keep=3 newest, current 2, previous 1
    registry.promote(7, GATE)
    assert registry.versions() == [2, 5, 6, 7]  # 1 is no longer the previous one
    assert not any(p.name.startswith(".") for p in (registry.root / "versions").iterdir())


def test_list_shows_each_version_its_metrics_and_which_is_current(registry, tmp_path):
    register(registry, tmp_path, ndcg=0.30), register(registry, tmp_path, ndcg=0.31)
    registry.promote(2, GATE)
    (version_dir(registry.root, 1) / "manifest.json").write_text("{")
    first, second = registry.list()
    assert (second.version, second.validation, second.is_current) == (2, {"ndcg@10": 0.31}, True)
    assert second.created_at.endswith("Z") and second.problem is None
    assert first.version == 1 and not first.is_current and "not valid JSON" in first.problem


# -- through the CLI --------------------------------------------------------------------------------


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_model_list_promote_and_rollback(registry, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("STREAMREC_KAFKA__BOOTSTRAP_SERVERS", raising=False)
    root = ["--registry-root", str(registry.root)]
    register(registry, tmp_path, ndcg=0.30), register(registry, tmp_path, ndcg=0.32)

    code, out, _ = cli(capsys, "model", "promote", "1", *root, "--json")
    assert code == 0
    assert json.loads(out) == {
        "promoted": True,
        "version": 1,
        "previous": None,
        "reason": "first promoted model",
        "announced_on": None,
    }
    code, out, _ = cli(capsys, "model", "promote", "2", *root)
    assert code == 0 and "version 2 is current (was 1)" in out and "no announcement made" in out

    code, out, _ = cli(capsys, "model", "list", *root, "--json")
    assert code == 0
    assert [(v["version"], v["is_current"], v["validation"]) for v in json.loads(out)] == [
        (1, False, {"ndcg@10": 0.30}),
        (2, True, {"ndcg@10": 0.32}),
    ]

    code, out, _ = cli(capsys, "model", "rollback", *root, "--json")
    assert code == 0 and json.loads(out)["version"] == 1 and current_version(registry.root) == 1


def test_cli_gate_refusal_and_corruption_are_one_line_and_non_zero(registry, tmp_path, capsys):
    root = ["--registry-root", str(registry.root), "--set", "registry.gate_tolerance=0.01"]
    register(registry, tmp_path, ndcg=0.30), register(registry, tmp_path, ndcg=0.20)
    assert cli(capsys, "model", "promote", "1", *root)[0] == 0

    code, _, err = cli(capsys, "model", "promote", "2", *root)
    assert code == 1 and err.startswith("streamrec model promote: refused by the quality gate")
    assert err.count("\n") == 1 and "--force" in err
    assert cli(capsys, "model", "promote", "2", "--force", *root)[0] == 0

    corrupt(registry, 1)
    code, _, err = cli(capsys, "model", "rollback", *root)
    assert code == 1 and err.count("\n") == 1 and "no earlier promoted version verifies (tried 1" in err
    assert current_version(registry.root) == 2


def test_cli_model_help(capsys):
    for argv in (["model", "--help"], ["model", "promote", "--help"]):
        assert main(argv) == 0
    assert "--force" in capsys.readouterr().out


def test_cli_list_of_an_empty_registry(tmp_path, capsys):
    code, out, _ = cli(capsys, "model", "list", "--registry-root", str(tmp_path / "none"))
    assert code == 0 and "no models registered" in out
    assert not os.path.exists(tmp_path / "none")  # listing does not create the registry
