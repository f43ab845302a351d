"""The periodic trainer: retrain when enough new events were logged, when enough time passed, or when
the stream's drift detector fired -- whichever comes first.

``RetrainTrigger`` is the decision alone (pure, tested with made-up clocks); ``run_periodic`` is the
loop around it, with every side effect passed in: counting logged events, draining drift signals,
training, and the stop event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class RetrainTrigger:
    every_events: int  # 0: never by count
    every_s: float  # 0: never by time
    on_drift: bool
    last_events: int = 0
    last_time: float = 0.0

    def reason(self, now: float, logged_events: int, drift_signals: int) -> str | None:
        """Why a retrain is due now, or None. The first call (nothing trained yet) is always due."""
        if self.last_time == 0.0:
            return "first run"
        if self.every_events and logged_events - self.last_events >= self.every_events:
            return f"{logged_events - self.last_events} new events"
        if self.every_s and now - self.last_time >= self.every_s:
            return f"{now - self.last_time:.0f} s since the last training"
        if self.on_drift and drift_signals:
            return f"{drift_signals} drift signal(s)"
        return None

    def trained(self, now: float, logged_events: int) -> None:
        self.last_time, self.last_events = now, logged_events


def run_periodic(
    trigger: RetrainTrigger,
    count_logged: Callable[[], int],
    drain_drift: Callable[[], int],
    train: Callable[[str], None],
    stop: threading.Event,
    poll_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Until ``stop`` is set: check the trigger every ``poll_s`` and train when it fires. A failed
    training is logged and retried at the next trigger; the current model stays. Returns the
    number of trainings that completed."""
    done = 0
    drift = 0
    while not stop.is_set():
        drift += drain_drift()
        logged = count_logged()
        why = trigger.reason(clock(), logged, drift)
        if why:
            log.info("retraining: %s", why)
            try:
                train(why)
                done += 1
            except Exception as exc:
                log.warning("training failed, current model kept: %s", exc)
            trigger.trained(clock(), logged)
            drift = 0
        stop.wait(poll_s)
    return done
