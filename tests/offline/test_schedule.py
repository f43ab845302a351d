"""When the periodic trainer retrains, and that a failed run keeps the trainer (and the model) going."""

import threading

from offline.schedule import RetrainTrigger, run_periodic


def test_the_first_check_always_trains():
    assert RetrainTrigger(every_events=10, every_s=60, on_drift=True).reason(5.0, 0, 0) == "first run"


def test_retrains_on_new_events_time_or_drift_whichever_comes_first():
    t = RetrainTrigger(every_events=100, every_s=60, on_drift=True)
    t.trained(now=1000.0, logged_events=500)
    assert t.reason(1010.0, 599, 0) is None
    assert "100 new events" in t.reason(1010.0, 600, 0)
    assert "since the last training" in t.reason(1060.0, 500, 0)
    assert "drift" in t.reason(1010.0, 500, 1)


def test_zero_disables_a_trigger_and_drift_can_be_ignored():
    t = RetrainTrigger(every_events=0, every_s=0, on_drift=False)
    t.trained(now=1.0, logged_events=0)
    assert t.reason(1e9, 10**9, 5) is None


def test_loop_trains_on_triggers_and_survives_a_failed_run():
    stop = threading.Event()
    clock = iter(float(x) for x in range(1, 1000))
    logged = iter([0, 0, 50, 120, 130, 130, 130])
    calls = []

    def train(why: str) -> None:
        calls.append(why)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        if len(calls) == 3:
            stop.set()

    def count() -> int:
        return next(logged)

    drift = iter([0, 0, 0, 0, 1, 0, 0])
    done = run_periodic(
        RetrainTrigger(every_events=100, every_s=0, on_drift=True),
        count,
        lambda: next(drift),
        train,
        stop,
        poll_s=0,
        clock=lambda: next(clock),
    )
    assert calls[0] == "first run" and "new events" in calls[1] and "drift" in calls[2]
    assert done == 2  # the failed run is not counted, and the loop went on to the next trigger
