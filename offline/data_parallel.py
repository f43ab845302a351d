"""Which data-parallel process this is, under ``torchrun`` (``streamrec train --once`` launched with
``torch.distributed.run``; the CLI initialises a gloo group on CPU).

Both fits (``offline.fit`` for the pointwise teacher and student, ``offline.sequence_fit`` for the
sequence ones) wrap their model in ``DistributedDataParallel`` and give every rank the same epoch
order, each taking its own share of every global batch; rank 0 alone evaluates, exports and
registers.
"""

from __future__ import annotations

import torch


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside torchrun."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def secondary_rank() -> bool:
    """Whether this process is a data-parallel rank other than 0 (which returns no report)."""
    return rank_and_world()[0] > 0


def rank_zero_value(value: float) -> float:
    """Rank 0's ``value`` on every rank. Every rank must take the same decisions (early stopping,
    the best epoch), and a figure each computes itself may round differently on another host."""
    if rank_and_world()[1] == 1:
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return float(box[0])
