"""A staged model is scored by serving in a fresh process without torch, exactly as torch scores it;
an artifact that does not verify is refused."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from offline.export import PARITY_TOLERANCE, stage
from offline.features import ContentTables
from offline.samples import build_dataset
from offline.student import Student
from serving.model import OnnxModel
from stream.model_artifact import ArtifactError
from stream.sources.synthetic import SyntheticConfig, synthetic_events

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    ds = build_dataset(synthetic_events(SyntheticConfig(n_users=60, n_items=50, n_sessions=300)))
    tables = ContentTables(ds.catalogue)
    c = ds.catalogue
    torch.manual_seed(0)
    student = Student(len(c.users), len(c.items), len(c.item_tokens), len(c.user_tokens)).eval()
    rows = tables.arrays(ds.test.user, ds.test.item, ds.test.recent)
    directory = tmp_path_factory.mktemp("staged")
    manifest = stage(student, "student", directory, c, tables, rows, ds.window, ds.events, {"validation": {}})
    with torch.no_grad():
        expected = student(tables.rows(ds.test))[0].numpy()
    return directory, manifest, rows, expected


def test_export_passes_its_parity_check_and_declares_its_inputs(staged):
    directory, manifest, _, _ = staged
    assert manifest.parity_max_abs_diff <= PARITY_TOLERANCE
    assert [t.name for t in manifest.inputs] == ["user", "item", "recent", "item_tokens", "user_tokens"]
    assert manifest.id_maps["items"] and (directory / "model.onnx").exists()


def test_a_fresh_process_scores_like_torch_without_importing_torch(staged, tmp_path):
    directory, _, rows, expected = staged
    np.savez(tmp_path / "rows.npz", **rows)
    code = (
        "import sys, json, numpy as np\n"
        "from pathlib import Path\n"
        "from serving.model import OnnxModel\n"
        f"rows = dict(np.load({str(tmp_path / 'rows.npz')!r}))\n"
        f"scores = OnnxModel.load(Path({str(directory)!r})).score(rows)\n"
        "print(json.dumps({'torch_loaded': 'torch' in sys.modules, 'scores': scores.tolist()}))\n"
    )
    out = json.loads(
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    )
    assert out["torch_loaded"] is False
    assert np.max(np.abs(np.array(out["scores"]) - expected)) <= 1e-4


def test_a_corrupt_model_file_is_refused(staged, tmp_path):
    directory, _, _, _ = staged
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("model.onnx", "manifest.json"):
        (broken / name).write_bytes((directory / name).read_bytes())
    data = bytearray((broken / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (broken / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"sha256|checksum"):
        OnnxModel.load(broken)
