"""The exported request graph: onnxruntime scores a request's candidates as the torch model ranks the
whole catalogue (the same user state, the same item vectors), for any number of candidates; a graph
that disagrees is not written."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline import export
from offline.export import ExportError
from offline.sequence_export import export_sequence_onnx, ms_per_request, request_inputs
from offline.sequence_fit import next_click_logits
from offline.sequence_model import SequenceModel, Shape
from offline.sequences import NextClicks
from serving.model import onnx_session

ITEMS, LENGTH = 40, 8


def model(encoder: str = "attention") -> SequenceModel:
    torch.manual_seed(0)
    tokens = torch.from_numpy(np.random.default_rng(0).integers(0, 5, (ITEMS + 1, 3)))
    tokens[0] = 0
    m = SequenceModel(tokens, 5, LENGTH, Shape(dim=8, heads=2, blocks=2, dropout=0.0, encoder=encoder))  # type: ignore[arg-type]
    with torch.no_grad():  # a trained model's biases are not all zero
        m.item_bias.weight.normal_()
    return m.eval()


def history(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    item = np.zeros(LENGTH, dtype=np.int64)
    item[:n] = rng.integers(1, ITEMS + 1, n)
    return item, np.where(item > 0, rng.integers(1, 4, LENGTH), 0), np.where(item > 0, rng.integers(0, 9, LENGTH), 0)


@pytest.mark.parametrize("encoder", ["attention", "gru"])
def test_the_graph_scores_candidates_as_the_model_ranks_the_catalogue(tmp_path, encoder):
    m, path = model(encoder), tmp_path / "m.onnx"
    diff = export_sequence_onnx(m, path, request_inputs(*history(5, 0), np.arange(1, 11)))
    assert diff <= 1e-4
    sess = onnx_session(path)
    for n, candidates in ((1, np.array([3])), (8, np.arange(1, ITEMS + 1)), (3, np.array([7, 2, 7, 40]))):
        item, kind, gap = history(n, seed=n)
        got = sess.run(["click_logit"], request_inputs(item, kind, gap, candidates))[0]
        point = NextClicks(item[None], kind[None], gap[None], np.array([1]), ["u"], np.array([0]))
        expected = next_click_logits(m, point)[0, candidates]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert ms_per_request(path, [request_inputs(*history(4, 1), np.arange(1, 30))], repeats=2) > 0


def test_a_graph_that_disagrees_with_torch_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "PARITY_TOLERANCE", -1.0)  # the check both exports share
    path = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="not exported"):
        export_sequence_onnx(model(), path, request_inputs(*history(5, 0), np.arange(1, 11)))
    assert not path.exists()


def test_a_frozen_model_exports_too(tmp_path):
    """Without trainable parameters PyTorch's attention takes a fused fast path with no ONNX form."""
    m = model().requires_grad_(False)
    assert export_sequence_onnx(m, tmp_path / "m.onnx", request_inputs(*history(5, 0), np.arange(1, 11))) <= 1e-4
