"""The model artifact contract: a manifest decodes strictly, the ONNX file matches its checksum,
the ``current`` pointer names a version, and every refusal is one line naming the fix."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from stream.model_artifact import (
    MANIFEST_FORMAT,
    ArtifactError,
    Manifest,
    TensorSpec,
    TrainingWindow,
    current_artifact,
    current_version,
    read_manifest,
    sha256_file,
    utc_timestamp,
    verify_artifact,
    version_dir,
    write_manifest,
)

ROOT = Path(__file__).resolve().parents[2]


def stage_artifact(
    directory: Path, onnx: bytes = b"fake onnx graph", ndcg: float | None = 0.30, name: str = "student"
) -> Manifest:
    """What offline/ leaves in a staging directory: an ONNX file and its manifest (fake bytes will do)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.onnx").write_bytes(onnx)
    manifest = Manifest(
        name=name,
        version=0,
        created_at=utc_timestamp(),
        onnx_sha256=hashlib.sha256(onnx).hexdigest(),
        opset=17,
        inputs=[
            TensorSpec(name="user", dtype="int64", shape=["batch"]),
            TensorSpec(name="recent", dtype="int64", shape=["batch", 20]),
        ],
        outputs=[TensorSpec(name="scores", dtype="float32", shape=["batch", 200])],
        features={"user": "user index", "recent": "last 20 item indices, newest first"},
        id_maps={"users": ["u1", "u2"], "items": ["i1", "i2", "i3"]},
        training_window=TrainingWindow(start_ts_ms=1_700_000_000_000, end_ts_ms=1_700_086_400_000, events=1234),
        metrics={"validation": {} if ndcg is None else {"ndcg@10": ndcg}, "test": {"ndcg@10": 0.29}},
        parity_max_abs_diff=1e-6,
    )
    write_manifest(directory, manifest)
    return manifest


def assert_one_line(exc: pytest.ExceptionInfo, *fragments: str) -> None:
    text = str(exc.value)
    assert "\n" not in text and all(f in text for f in fragments), text


def test_a_written_artifact_verifies_and_round_trips(tmp_path):
    written = stage_artifact(tmp_path)
    assert read_manifest(tmp_path) == written
    assert verify_artifact(tmp_path) == written
    doc = json.loads((tmp_path / "manifest.json").read_text())
    assert doc["format"] == MANIFEST_FORMAT == 1
    assert doc["inputs"][1] == {"name": "recent", "dtype": "int64", "shape": ["batch", 20]}
    assert doc["onnx_file"] == "model.onnx" and doc["extra"] == {}


def test_sha256_file_is_the_hex_digest(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize("damage", ["changed", "truncated", "missing"])
def test_an_onnx_file_that_does_not_match_its_checksum_is_refused(tmp_path, damage):
    stage_artifact(tmp_path)
    onnx = tmp_path / "model.onnx"
    if damage == "changed":
        onnx.write_bytes(b"fake onnx graph, retrained")
    elif damage == "truncated":
        onnx.write_bytes(onnx.read_bytes()[:4])
    else:
        onnx.unlink()
    with pytest.raises(ArtifactError) as exc:
        verify_artifact(tmp_path)
    assert_one_line(exc, "model.onnx", "export the model again")


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda doc: "{not json", "not valid JSON"),
        (lambda doc: {**doc, "surprise": 1}, "unknown field `surprise`"),
        (lambda doc: {**doc, "opset": "seventeen"}, "$.opset"),
        (lambda doc: {k: v for k, v in doc.items() if k != "id_maps"}, "id_maps"),
        (lambda doc: {k: v for k, v in doc.items() if k != "format"}, "format"),
        (lambda doc: {**doc, "onnx_sha256": "abc"}, "$.onnx_sha256"),
        (lambda doc: {**doc, "onnx_file": "../../elsewhere.onnx"}, "$.onnx_file"),
        (lambda doc: {**doc, "format": 2}, "manifest format 2"),
    ],
)
def test_a_malformed_manifest_is_refused_with_what_is_wrong(tmp_path, edit, fragment):
    stage_artifact(tmp_path)
    path = tmp_path / "manifest.json"
    changed = edit(json.loads(path.read_text()))
    path.write_text(changed if isinstance(changed, str) else json.dumps(changed))
    with pytest.raises(ArtifactError) as exc:
        verify_artifact(tmp_path)
    assert_one_line(exc, str(path), fragment, "export the model again")


def test_a_missing_manifest_is_refused(tmp_path):
    with pytest.raises(ArtifactError) as exc:
        read_manifest(tmp_path)
    assert_one_line(exc, "manifest.json does not exist")


def test_a_manifest_that_would_not_read_back_is_not_written(tmp_path):
    manifest = stage_artifact(tmp_path / "ok")
    broken = msgspec.structs.replace(manifest, metrics={"validation": {"ndcg@10": float("nan")}})
    with pytest.raises(ArtifactError) as exc:
        write_manifest(tmp_path, broken)
    assert_one_line(exc, "would not read back")
    assert not (tmp_path / "manifest.json").exists()


def test_current_pointer_names_a_version_directory(tmp_path):
    assert current_version(tmp_path) is None and current_artifact(tmp_path) is None
    version_dir(tmp_path, 3).mkdir(parents=True)
    (tmp_path / "current").write_text("000003\n")
    assert current_version(tmp_path) == 3
    assert current_artifact(tmp_path) == tmp_path / "versions" / "000003"


@pytest.mark.parametrize("text", ["", "3\n", "latest\n", "000000\n", "000003\n000004\n", "\xff"])
def test_a_malformed_pointer_is_refused(tmp_path, text):
    (tmp_path / "current").write_bytes(text.encode("latin-1"))
    with pytest.raises(ArtifactError) as exc:
        current_version(tmp_path)
    assert_one_line(exc, "not a version number", "streamrec model promote")


def test_a_pointer_to_a_missing_version_is_refused(tmp_path):
    (tmp_path / "current").write_text("000007\n")
    with pytest.raises(ArtifactError) as exc:
        current_artifact(tmp_path)
    assert_one_line(exc, "version 7", "streamrec model list")


def test_the_contract_imports_neither_torch_nor_onnxruntime():
    code = (
        "import sys, stream.model_artifact\n"
        "assert not {'torch', 'onnxruntime', 'offline', 'serving'} & set(sys.modules), 'heavy import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
