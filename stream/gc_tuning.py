"""The cyclic garbage collector's young generation, sized for a worker's batches.

CPython collects its youngest generation whenever tracked allocations minus deallocations exceed
``threshold0`` (700), and promotes what survives. A worker's batch keeps ``batch_size`` consumed
``Message`` objects (tracked) alive while it is applied, so at 700 most of them survive a young
collection or two and are promoted; promoted objects in turn trigger full collections, which walk
every long-lived object in the process -- the feature state and every module's functions, ~170k
objects, ~80 ms each. Measured on ``streamrec bench stream`` (2 cores, 3 runs each, one session):
21 full collections took 1.8 s of the runs at 700, none at 10,000, and the worker went from 43,739
to 51,011 events/s (with ``gc.disable()``: 51,280). A young generation that holds a whole batch
lets its messages die young, freed by their reference counts, and nothing is promoted on their
account. Full collections still happen when the long-lived state grows by a quarter, as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young collections per batch at most: a young generation twice a batch's size holds all its
# messages with room for what applying them allocates.
BATCHES_PER_YOUNG_GENERATION = 2


@contextmanager
def young_generation_for(batch_size: int) -> Iterator[None]:
    """While inside, the young generation's threshold is at least twice ``batch_size``; restored
    after (the setting is the process's: a test or a demo running workers in-process gets its own
    back)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], BATCHES_PER_YOUNG_GENERATION * batch_size), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
