"""Compressing the sequence student.

* a narrower model is the original restricted to the kept channels: where the pruned channels carry
  nothing (zero columns, no influence on the others), every kept quantity is computed exactly as
  before, in the tables, the GRU's gates and the conversion head;
* the channels pruned are the least important ones;
* the exported graph's served-rule figures are the torch model's (items logged after the training
  part scoring as row 0 in both), so an int8 graph is judged by what serving would rank.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.samples import TestClick as Click
from offline.sequence_compress import graph_served_gains, narrower, pruned_channels, quantise_sequence_if_harmless
from offline.sequence_data import ServedPoints, served_gains, served_rows
from offline.sequence_export import export_sequence_onnx, request_inputs, timing_requests
from offline.sequence_model import SequenceModel, Shape, Tokens

ITEMS, LENGTH, DIM = 30, 8, 6
KEEP = np.array([0, 2, 3, 5])
DROPPED = np.array([1, 4])


def gru(seed: int = 0, blocks: int = 1) -> SequenceModel:
    torch.manual_seed(seed)
    tokens = torch.from_numpy(np.random.default_rng(seed).integers(0, 4, (ITEMS + 1, 2)))
    tokens[0] = 0
    m = SequenceModel(tokens, 4, LENGTH, Shape(dim=DIM, heads=1, blocks=blocks, dropout=0.0, encoder="gru"))
    with torch.no_grad():  # trained-looking weights: tables and biases far from their initialisation
        for table in (m.item, m.token, m.kind, m.gap, m.position):
            table.weight.normal_()
        m.item_bias.weight.normal_()
        m.norm.weight.uniform_(0.5, 1.5)
    return m.eval()


def silence(m: SequenceModel, dropped: np.ndarray) -> SequenceModel:
    """Make the ``dropped`` channels carry nothing: zero input columns, and neither the GRU's other
    units nor the conversion head read them."""
    d = torch.from_numpy(dropped)
    with torch.no_grad():
        for table in (m.item, m.token, m.kind, m.gap, m.position):
            table.weight[:, d] = 0
        for layer in range(m.shape.blocks):
            getattr(m.blocks, f"weight_hh_l{layer}")[:, d] = 0
            if layer:
                getattr(m.blocks, f"weight_ih_l{layer}")[:, d] = 0
        m.conversion[2].weight[:, d] = 0
    return m


def tokens(seed: int) -> Tokens:
    rng = np.random.default_rng(seed)
    item = torch.from_numpy(rng.integers(1, ITEMS + 1, (5, LENGTH)))
    item[:, 6:] = 0
    return Tokens(item, torch.where(item > 0, 2, 0), torch.where(item > 0, 1, 0))


@pytest.mark.parametrize("blocks", [1, 2])
def test_a_narrower_model_computes_the_kept_channels_as_before(blocks):
    m = silence(gru(blocks=blocks), DROPPED)
    narrow = narrower(m, KEEP)
    x = tokens(1)
    with torch.no_grad():
        torch.testing.assert_close(narrow.item_vectors(), m.item_vectors()[:, KEEP])
        h = m.item_vectors(x.item) + m.kind(x.kind) + m.gap(x.gap) + m.position(torch.arange(LENGTH))
        raw = m.blocks(h)[0][..., KEEP]
        torch.testing.assert_close(narrow.blocks(h[..., KEEP])[0], raw)
        states = torch.randn(5, DIM)
        states[:, DROPPED] = 0
        items = x.item[:, 0]
        torch.testing.assert_close(
            narrow.conversion_logit(states[:, KEEP], items), m.conversion_logit(states, items), atol=1e-6, rtol=0
        )
    assert narrow.shape.dim == len(KEEP) and sum(w.numel() for w in narrow.parameters()) < sum(
        w.numel() for w in m.parameters()
    )


def test_the_least_important_channels_are_pruned():
    m = gru()
    with torch.no_grad():
        m.item.weight[:, 4] *= 1e-3
        m.token.weight[:, 4] = 0
        m.norm.weight[1] = 1e-3
    keep = pruned_channels(m, share=1 / 3)
    assert keep.tolist() == [0, 2, 3, 5]


def test_the_attention_teacher_is_not_pruned():
    torch.manual_seed(0)
    teacher = SequenceModel(torch.zeros((ITEMS + 1, 2), dtype=torch.long), 2, LENGTH, Shape(8, 2, 1, 0.0))
    with pytest.raises(ValueError, match="GRU student"):
        narrower(teacher, np.arange(4))


def points(n: int, seed: int) -> ServedPoints:
    """Clicks whose catalogue grew past the model's rows: some clicked items have no table row."""
    rng = np.random.default_rng(seed)
    x = tokens(seed)
    clicks = []
    for i in range(n):
        known = int(rng.integers(ITEMS - 5, ITEMS + 6))
        item = int(rng.integers(1, known + 1))
        seen = rng.choice(np.arange(1, known + 1), 3, replace=False)
        clicks.append(Click(i, item, np.zeros(LENGTH, np.int64), seen[seen != item], known, 0, i))
    rows = np.resize(np.arange(5), n)
    return ServedPoints(x.item.numpy()[rows], x.kind.numpy()[rows], x.gap.numpy()[rows], clicks)


def test_items_logged_after_the_training_part_score_as_row_zero():
    p = points(3, seed=0)
    for c, known in zip(p.clicks, (4, 7, 2), strict=True):
        c.known = known
    assert served_rows(5, p).tolist() == [1, 2, 3, 4, 0, 0, 0]  # the latest click knows 7 items


def test_the_graph_is_judged_on_the_served_rule_as_the_model_is(tmp_path):
    m, p = gru(seed=3), points(40, seed=4)
    path = tmp_path / "m.onnx"
    export_sequence_onnx(m, path, request_inputs(p.item[0], p.kind[0], p.gap[0], np.arange(1, 6)))
    expected = served_gains(m, p, k=10)
    assert expected.sum() > 0
    np.testing.assert_allclose(graph_served_gains(path, p, ITEMS + 1, k=10), expected, atol=1e-9)


def test_int8_reports_both_graphs_and_keeps_the_float_one_unless_worth_it(tmp_path):
    m, p = gru(seed=3), points(40, seed=4)
    path = tmp_path / "m.onnx"
    export_sequence_onnx(m, path, request_inputs(p.item[0], p.kind[0], p.gap[0], np.arange(1, 6)))
    before = path.read_bytes()
    requests = timing_requests((p.item, p.kind, p.gap), ITEMS, 20)
    result = quantise_sequence_if_harmless(path, p, ITEMS + 1, requests)
    assert result.ndcg_float == pytest.approx(served_gains(m, p).mean())
    assert result.ms_float > 0 and result.ms_int8 > 0 and 0 <= result.ndcg_int8 <= 1
    assert (path.read_bytes() == before) is not result.kept
    assert not path.with_suffix(".int8.onnx").exists()
