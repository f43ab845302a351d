"""A partition the worker owns: its processor, where it stands in the log, and the lock readers share."""

import threading
import time
from dataclasses import dataclass, field

from stream.processor import PartitionProcessor


@dataclass
class OwnedPartition:
    processor: PartitionProcessor
    next_offset: int  # the offset of the next event to apply
    snapshot_offset: int
    snapshot_time: float = field(default_factory=time.time)
    assigned_at: float = field(default_factory=time.time)  # when this worker took it over (serving.directory)
    # Held while an event is applied; readers on other threads (the HTTP scorer) hold it while
    # they read the state, so they never see an event half-applied.
    lock: threading.Lock = field(default_factory=threading.Lock)
