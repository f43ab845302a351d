"""Concept-drift detection on a learner's prequential loss (river's Page-Hinkley test).

Page-Hinkley is chosen over ADWIN because its whole state is a handful of floats, so it is
snapshotted exactly with the rest of the partition (ADWIN's window lives in a native object).
``delta`` is the tolerated rise of the mean loss; ``threshold`` the evidence needed to fire.
"""

from __future__ import annotations

from typing import Any

from river import drift


class DriftMonitor:
    def __init__(self, threshold: float = 20.0, delta: float = 0.05, min_instances: int = 200) -> None:
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
            "fields": {f: getattr(d, f) for f in self._FIELDS},
            "mean": [d._x_mean.n, d._x_mean._mean],
            "detections": self.detections,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        for f, v in state["fields"].items():
            setattr(self.detector, f, v)
        self.detector._x_mean.n, self.detector._x_mean._mean = state["mean"]
        self.detections = list(state["detections"])
