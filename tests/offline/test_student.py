"""offline.student: the served model.

* a candidate list, scored with one batch row's user side, gets exactly the logits the same
  (user, history, item) rows get when scored one by one -- the shortcut changes no arithmetic;
* without lists the output carries no candidate logits (what is exported).
"""

from __future__ import annotations

import torch

from offline.features import Inputs
from offline.student import CandidateLists, Student


def _inputs(gen: torch.Generator, b: int) -> Inputs:
    return Inputs(
        user=torch.randint(0, 6, (b,), generator=gen),
        item=torch.randint(1, 30, (b,), generator=gen),
        recent=torch.randint(0, 30, (b, 5), generator=gen),
        item_tokens=torch.randint(0, 9, (b, 3), generator=gen),
        user_tokens=torch.randint(0, 4, (b, 2), generator=gen),
    )


def test_candidate_lists_score_as_their_rows_scored_one_by_one():
    gen = torch.Generator().manual_seed(0)
    model = Student(6, 30, 9, 4, dim=4, hidden=8).eval()
    x = _inputs(gen, 7)
    rows = torch.tensor([5, 1])  # lists for batch rows 5 and 1
    items = torch.randint(1, 30, (2, 4), generator=gen)
    tokens = torch.randint(0, 9, (2, 4, 3), generator=gen)
    with torch.no_grad():
        out = model(x, CandidateLists(rows, items, tokens))
        one_by_one = model(
            Inputs(
                user=x.user[rows].repeat_interleave(4),
                item=items.reshape(-1),
                recent=x.recent[rows].repeat_interleave(4, dim=0),
                item_tokens=tokens.reshape(8, 3),
                user_tokens=x.user_tokens[rows].repeat_interleave(4, dim=0),
            )
        )
        plain = model(x)
    assert out.candidate_logits.shape == (2, 4)
    assert torch.allclose(out.candidate_logits.reshape(-1), one_by_one.click_logit, atol=1e-6)
    assert torch.equal(out.click_logit, plain.click_logit)
    assert plain.candidate_logits is None
