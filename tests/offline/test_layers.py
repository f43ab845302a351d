"""offline.layers: building blocks shared by the teacher and the student.

* ``masked_mean`` averages only the non-padding ids and gives zeros when every id is padding;
* ``TargetAttention`` puts no weight on padding keys, pools to a convex mix of the real keys, and a
  user with no history pools to zeros when padding embeddings are zero;
* ``init_weights`` leaves the padding row of every embedding at exactly zero, zeroes biases, uses He
  init for layers followed by ReLU and Xavier for the rest.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from offline.layers import TargetAttention, init_weights, masked_mean, mlp


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


# -- masked_mean ------------------------------------------------------------------------------------


def _table(rows: int = 10, dim: int = 5) -> nn.Embedding:
    return nn.Embedding(rows, dim, padding_idx=0)


def test_masked_mean_averages_only_real_ids():
    table = _table()
    ids = torch.tensor([[3, 0, 7, 0], [1, 2, 3, 4], [0, 0, 0, 9]])
    out = masked_mean(table, ids)
    w = table.weight
    assert torch.allclose(out[0], (w[3] + w[7]) / 2)
    assert torch.allclose(out[1], w[1:5].mean(0))
    assert torch.allclose(out[2], w[9])


def test_masked_mean_of_all_padding_is_zero():
    out = masked_mean(_table(), torch.zeros(2, 3, dtype=torch.int64))
    assert torch.equal(out, torch.zeros(2, 5))
    assert torch.isfinite(out).all()


def test_masked_mean_matches_an_embedding_bag_with_padding():
    table = _table(dim=4)
    ids = torch.tensor([[3, 0, 7, 0], [0, 0, 0, 0], [9, 1, 2, 0]])
    bag = torch.nn.EmbeddingBag.from_pretrained(table.weight, mode="mean", padding_idx=0)
    assert torch.allclose(masked_mean(table, ids), bag(ids), atol=1e-6)


# -- TargetAttention --------------------------------------------------------------------------------


def test_target_attention_puts_no_weight_on_padding():
    att = TargetAttention(8)
    query, keys = torch.randn(3, 8), torch.randn(3, 5, 8)
    ids = torch.tensor([[4, 2, 0, 0, 0], [1, 0, 3, 0, 6], [9, 9, 9, 9, 0]])
    before = att(query, keys, ids)
    changed = keys.clone()
    changed[ids == 0] = torch.randn(int((ids == 0).sum()), 8) * 100.0
    assert torch.allclose(att(query, changed, ids), before, atol=1e-6)


def test_target_attention_pools_a_convex_mix_of_the_real_keys():
    att = TargetAttention(4)
    query = torch.randn(1, 4)
    keys = torch.randn(1, 3, 4)
    ids = torch.tensor([[5, 0, 6]])
    out = att(query, keys, ids)[0]
    scores = keys[0] @ att.project(query)[0] / math.sqrt(4)
    w = torch.softmax(scores[[0, 2]], 0)
    assert torch.allclose(out, w[0] * keys[0, 0] + w[1] * keys[0, 2], atol=1e-6)


def test_a_single_real_key_is_returned_as_is():
    att = TargetAttention(6)
    keys = torch.randn(2, 4, 6)
    ids = torch.tensor([[0, 0, 3, 0], [7, 0, 0, 0]])
    out = att(torch.randn(2, 6), keys, ids)
    assert torch.allclose(out[0], keys[0, 2], atol=1e-6) and torch.allclose(out[1], keys[1, 0], atol=1e-6)


def test_a_user_without_history_pools_to_zeros_when_padding_embeddings_are_zero():
    table = nn.Embedding(10, 8, padding_idx=0)
    init_weights(table)
    att = TargetAttention(8)
    ids = torch.tensor([[0, 0, 0], [2, 5, 0]])
    out = att(torch.randn(2, 8), table(ids), ids)
    assert torch.equal(out[0], torch.zeros(8))
    assert out[1].abs().sum() > 0


# -- init_weights -----------------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.items = nn.Embedding(50, 16, padding_idx=0)
        self.plain = nn.Embedding(20, 16)
        self.body = mlp([16, 64, 32])
        self.head = nn.Linear(32, 1)


def test_init_weights_keeps_padding_rows_at_zero_and_the_rest_small():
    model = Tiny()
    init_weights(model, embedding_std=0.05)
    assert torch.equal(model.items.weight[0], torch.zeros(16))
    rest = model.items.weight[1:]
    assert (rest != 0).all() and 0.03 < rest.std().item() < 0.07
    assert (model.plain.weight != 0).all()  # no padding row: nothing is zeroed


def test_init_weights_zeroes_biases_and_uses_he_before_relu_and_xavier_elsewhere():
    model = Tiny()
    init_weights(model)
    first, second = model.body[0], model.body[2]
    for layer in (first, second, model.head):
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))

    def bound_ratio(layer: nn.Linear, bound: float) -> float:
        return layer.weight.abs().max().item() / bound

    def he(fan_in):
        return math.sqrt(6.0 / fan_in)  # kaiming_uniform, relu gain

    def xavier(fan_in, fan_out):
        return math.sqrt(6.0 / (fan_in + fan_out))

    assert 0.9 < bound_ratio(first, he(16)) <= 1.0  # He: followed by ReLU in the Sequential
    assert 0.9 < bound_ratio(second, he(64)) <= 1.0  # mlp ends with ReLU too
    assert 0.5 < bound_ratio(model.head, xavier(32, 1)) <= 1.0  # a linear head: Xavier


def test_mlp_is_a_hidden_block_ending_in_relu():
    block = mlp([4, 8, 2], dropout=0.1)
    kinds = [type(m) for m in block]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout]
    assert (block.eval()(torch.randn(10, 4)) >= 0).all()
