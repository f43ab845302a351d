"""Concept-drift detection on a learner's every-event loss (river's Page-Hinkley test).

Page-Hinkley is chosen over ADWIN because its whole state is a handful of floats, so it is
snapshotted exactly with the rest of the partition (ADWIN's window lives in a native object).
``delta`` is the tolerated rise of the mean loss; ``threshold`` the evidence needed to fire.

The monitors watch losses measured on every event, never the full-catalogue ranking test: a worker
runs that test on one click in ``worker.prequential_every`` (20), and a drift's dip in recall lasts
about a thousand clicks -- some fifty sampled tests, too few to tell it from noise at any threshold
(docs/explanation/learners.md, "Drift"). What each learner's monitor is fed is
``PartitionProcessor``'s choice.
"""

from __future__ import annotations

from typing import Any

from river import drift

# What the monitors' losses are. A snapshot whose monitors watched something else (before version 2,
# each ranking test's 1 - hit; version 2, the click model's log-loss on non-clicks) restarts its
# detectors: their running mean is of another quantity.
SIGNAL = 3


class DriftMonitor:
    def __init__(self, threshold: float = 20.0, delta: float = 0.1, min_instances: int = 200) -> None:
        self.detector = drift.PageHinkley(min_instances=min_instances, delta=delta, threshold=threshold, mode="up")
        self.detections: list[int] = []  # stream positions at which the detector fired

    def update(self, loss: float, position: int) -> bool:
        self.detector.update(loss)
        if self.detector.drift_detected:
            self.detections.append(position)
            return True
        return False

    _FIELDS = ("_drift_detected", "_sum_increase", "_sum_decrease", "_min_increase", "_max_decrease")

    def to_state(self) -> dict[str, Any]:
        d = self.detector
        return {
            "signal": SIGNAL,
            "fields": {f: getattr(d, f) for f in self._FIELDS},
            "mean": [d._x_mean.n, d._x_mean._mean],
            "detections": self.detections,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.detections = list(state["detections"])
        if state.get("signal") != SIGNAL:
            return
        for f, v in state["fields"].items():
            setattr(self.detector, f, v)
        self.detector._x_mean.n, self.detector._x_mean._mean = state["mean"]
