"""Training the sequence teacher: next-click cross-entropy over the whole catalogue, plus the
conversion head's log-loss on the clicks, early-stopped on validation NDCG@k.

Full softmax rather than sampled: the catalogues this runs on hold thousands of items, where one
(B x L, items) product is cheap and the gradient reaches every item at each step; RecBole's SASRec
is trained the same way (``loss_type: CE``), which makes the side-by-side like for like.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from offline.sequence_teacher import SequenceTeacher, Tokens
from offline.sequences import NextClicks, Windows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SequenceFitSettings:
    epochs: int = 200
    batch: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    conversion_weight: float = 0.2  # 0: the single-task ablation
    patience: int = 5  # epochs without a better validation NDCG before stopping
    k: int = 10
    seed: int = 0


@dataclass
class SequenceFitResult:
    epochs: int
    best_epoch: int
    validation_ndcg: list[float] = field(default_factory=list)
    seconds: float = 0.0


def tokens(item: np.ndarray, kind: np.ndarray, gap: np.ndarray) -> Tokens:
    return Tokens(torch.from_numpy(item), torch.from_numpy(kind), torch.from_numpy(gap))


def window_loss(model: SequenceTeacher, w: Windows, idx: np.ndarray, conversion_weight: float) -> torch.Tensor:
    """Mean next-click cross-entropy over the positions followed by a click, plus the conversion
    head's log-loss on those clicks, weighted ``conversion_weight``."""
    states = model.states(tokens(w.item[idx], w.kind[idx], w.gap[idx]))
    target = torch.from_numpy(w.target[idx])
    at = target > 0
    picked = states[at]
    logits = model.click_logits(picked)
    logits[:, 0] = -math.inf
    loss = F.cross_entropy(logits, target[at])
    if conversion_weight:
        converted = torch.from_numpy(w.converted[idx][at.numpy()]).float()
        loss = loss + conversion_weight * F.binary_cross_entropy_with_logits(
            model.conversion_logit(picked, target[at]), converted
        )
    return loss


@torch.no_grad()
def next_click_logits(model: SequenceTeacher, clicks: NextClicks, batch: int = 1024) -> np.ndarray:
    """(N, items + 1) logits of each prediction point's next click, from its last real token's state."""
    model.eval()
    out = []
    for start in range(0, len(clicks), batch):
        s = slice(start, start + batch)
        states = model.last_state(tokens(clicks.item[s], clicks.kind[s], clicks.gap[s]))
        logits = model.click_logits(states)
        logits[:, 0] = -math.inf
        out.append(logits.numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def target_ranks(logits: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N, items) logits, (N,) target rows -> (N,) 0-based rank of each target (ties count for it).
    A non-finite target score is an error, not a rank: NaN compares false with everything, and
    would rank first."""
    target_score = logits[np.arange(len(target)), target][:, None]
    if not np.isfinite(target_score).all():
        raise ValueError(f"{int((~np.isfinite(target_score)).sum())} target scores are not finite")
    ranks: np.ndarray = (logits > target_score).sum(axis=1)
    return ranks


def hits(logits: np.ndarray, target: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N,) recall@k and NDCG@k of one relevant item per row (ties rank against the target)."""
    ranks = target_ranks(logits, target)
    hit = ranks < k
    return hit.astype(np.float64), np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)


def fit_sequence_teacher(
    model: SequenceTeacher, train: Windows, validation: NextClicks, settings: SequenceFitSettings
) -> SequenceFitResult:
    """Adam on shuffled windows; after each epoch, validation NDCG@k; the best epoch's weights are
    kept (loaded back into ``model``)."""
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    opt = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    result = SequenceFitResult(0, 0)
    best, best_state = -1.0, copy.deepcopy(model.state_dict())
    for epoch in range(1, settings.epochs + 1):
        model.train()
        order = rng.permutation(len(train))
        for start in range(0, len(order), settings.batch):
            opt.zero_grad()
            window_loss(model, train, order[start : start + settings.batch], settings.conversion_weight).backward()
            opt.step()
        ndcg = float(hits(next_click_logits(model, validation), validation.target, settings.k)[1].mean())
        result.validation_ndcg.append(round(ndcg, 5))
        result.epochs = epoch
        log.info("sequence teacher epoch %d: validation NDCG@%d %.4f", epoch, settings.k, ndcg)
        if ndcg > best:
            best, best_state, result.best_epoch = ndcg, copy.deepcopy(model.state_dict()), epoch
        elif epoch - result.best_epoch >= settings.patience:
            break
    model.load_state_dict(best_state)
    result.seconds = round(time.perf_counter() - started, 1)
    return result
