"""The sequence teacher: causal (a state never reads a later token), and trained on next clicks it
learns an order that only the sequence carries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from offline.curriculum import Curriculum, next_click_difficulty
from offline.samples import Catalogue
from offline.sequence_fit import (
    LabelLoss,
    NextClickNDCG,
    SequenceFitSettings,
    fit_sequence_model,
    hits,
    next_click_logits,
    target_ranks,
)
from offline.sequence_model import SequenceModel, Shape, Tokens
from offline.sequences import NextClicks, Windows, next_clicks, training_windows, user_sequences
from tests.offline.test_samples import Log

N_ITEMS = 30


def model(length: int = 8, item_tokens: torch.Tensor | None = None, encoder: str = "attention") -> SequenceModel:
    """A small teacher over N_ITEMS items (all of one content token unless ``item_tokens``)."""
    torch.manual_seed(0)
    if item_tokens is None:
        item_tokens = torch.zeros((N_ITEMS + 1, 2), dtype=torch.long)
        item_tokens[1:, 0] = 1
    shape = Shape(dim=16, heads=2, blocks=2, dropout=0.0, encoder=encoder)  # type: ignore[arg-type]
    return SequenceModel(item_tokens, n_tokens=2, length=length, shape=shape)


ENCODERS = pytest.mark.parametrize("encoder", ["attention", "gru"])


def random_tokens(rows: int, length: int, real: list[int]) -> Tokens:
    """Right-padded tokens: row r has ``real[r]`` random items, then padding."""
    rng = np.random.default_rng(0)
    items = torch.from_numpy(rng.integers(1, N_ITEMS + 1, (rows, length)))
    for r, n in enumerate(real):
        items[r, n:] = 0
    return Tokens(items, torch.where(items > 0, 2, 0), torch.zeros_like(items))


@ENCODERS
def test_a_state_does_not_read_later_tokens(encoder):
    m = model(encoder=encoder).eval()
    x = random_tokens(4, 8, [5, 8, 8, 6])
    before = m.states(x)
    changed = x.item.clone()
    changed[:, 5:] = torch.where(changed[:, 5:] > 0, (changed[:, 5:] % N_ITEMS) + 1, 0)
    after = m.states(Tokens(changed, x.kind, x.gap))
    torch.testing.assert_close(before[:, :5], after[:, :5])
    assert not torch.allclose(before[1:3, 5:], after[1:3, 5:])


@ENCODERS
def test_a_history_scores_the_same_however_much_padding_follows_it(encoder):
    m = model(length=12, encoder=encoder).eval()
    x = random_tokens(3, 12, [1, 4, 7])
    with torch.no_grad():  # the inference path, as serving and evaluation run it
        short = m.last_state(Tokens(x.item[:, :8], x.kind[:, :8], x.gap[:, :8]))
        long = m.last_state(x)
    assert torch.isfinite(long).all()
    torch.testing.assert_close(short, long)


def cyclic_log(users: int, clicks: int, seed: int) -> Log:
    """Each user clicks items in one fixed cycle from a random start: the next item is the current
    one plus 7 (mod N_ITEMS), which no item's popularity says."""
    rng = np.random.default_rng(seed)
    log = Log()
    for u in range(users):
        start = int(rng.integers(N_ITEMS))
        for n in range(clicks):
            log.click(u * clicks + n, f"u{u}", f"i{(start + 7 * n) % N_ITEMS}")
    return log


@ENCODERS
def test_it_learns_an_order_that_only_the_sequence_carries(encoder):
    log = cyclic_log(users=80, clicks=12, seed=1)
    catalogue = Catalogue()
    seqs = user_sequences(log.events, catalogue)
    assert len(catalogue.items) == N_ITEMS + 1
    n = len(log.events)
    train = training_windows(seqs.values(), 8, until=n * 6 // 10)
    valid = next_clicks(seqs, 8, since=n * 6 // 10, until=n * 8 // 10)
    test = next_clicks(seqs, 8, since=n * 8 // 10)
    m = model(8, torch.from_numpy(catalogue.item_token_matrix(2)), encoder)
    settings = SequenceFitSettings(epochs=30, batch=32, learning_rate=1e-2, conversion_weight=0.0, patience=3, k=1)
    fitted = fit_sequence_model(m, train, NextClickNDCG(valid, k=1), settings)
    recall_at_1 = hits(next_click_logits(m, test), test.target, 1)[0].mean()
    assert recall_at_1 > 0.9, (recall_at_1, fitted.validation_ndcg[-5:])


def test_a_non_finite_score_is_refused_rather_than_ranked_first():
    logits = np.array([[0.0, 1.0, np.nan], [0.0, 2.0, 1.0]])
    assert target_ranks(logits[1:], np.array([2])).tolist() == [1]
    with pytest.raises(ValueError, match="not finite"):
        target_ranks(logits, np.array([2, 1]))


def cyclic_split(users: int, clicks: int, seed: int) -> tuple[Catalogue, Windows, NextClicks]:
    """A ``cyclic_log``'s windows of 8 tokens before 70 % of the log and its next clicks after."""
    log = cyclic_log(users=users, clicks=clicks, seed=seed)
    catalogue = Catalogue()
    seqs = user_sequences(log.events, catalogue)
    n = len(log.events)
    return catalogue, training_windows(seqs.values(), 8, until=n * 7 // 10), next_clicks(seqs, 8, since=n * 7 // 10)


def test_under_a_curriculum_the_first_epoch_trains_only_the_easiest_windows():
    catalogue, train, valid = cyclic_split(users=30, clicks=10, seed=3)
    seen: list[set[int]] = []

    def recording(m: SequenceModel, w, idx: np.ndarray) -> torch.Tensor:
        seen[-1].update(idx.tolist())
        return LabelLoss(0.0)(m, w, idx)

    class PerEpoch(NextClickNDCG):
        def __call__(self, m: SequenceModel) -> float:
            seen.append(set())
            return super().__call__(m)

    curriculum = Curriculum(enabled=True, start=0.4, ramp_epochs=2)
    settings = SequenceFitSettings(epochs=3, batch=16, patience=5, curriculum=curriculum)
    seen.append(set())
    fit_sequence_model(
        model(8, torch.from_numpy(catalogue.item_token_matrix(2))), train, PerEpoch(valid), settings, recording
    )
    easiest = set(np.argsort(next_click_difficulty(train.target), kind="stable")[: round(0.4 * len(train))].tolist())
    assert seen[0] == easiest
    assert len(seen[1]) == round(0.7 * len(train)) and seen[2] == set(range(len(train)))
