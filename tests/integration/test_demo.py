"""The demo as a whole: a part that fails ends the process with one line and an exit code, soon."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

# A process that runs the demo on an embedded broker with its trainer swapped for one that fails
# (argv[1]: the data dir, which does not exist yet).
FAILING_TRAINER = """
import sys, threading
from pathlib import Path

import msgspec

import streamrec.demo_parts as parts
from stream.config import load_config
from stream.kafka.broker import EmbeddedBroker
from stream.kafka.clients import ensure_topics
from stream.sources.synthetic import SyntheticConfig, synthetic_events
from streamrec.demo import DemoOptions, run_demo

parts.trainer_command = lambda *_: [sys.executable, "-c", "import sys; print('torch is on fire'); sys.exit(3)"]
data = Path(sys.argv[1])
with EmbeddedBroker() as broker:
    cfg = load_config(None, [
        f'kafka.bootstrap_servers="{broker.bootstrap_servers}"', f'worker.data_dir="{data}"',
        "serving.port=0", "metrics.port=0",
    ])
    ensure_topics(cfg.kafka)
    events = synthetic_events(SyntheticConfig(n_sessions=2000))
    run_demo(cfg, events, data / "models", threading.Event(), DemoOptions(rate=2000, first_model_after=500))
print("the demo returned")
"""


def test_a_failing_trainer_ends_the_demo_with_one_line_and_exit_code_1(tmp_path):
    data = tmp_path / "not" / "there" / "yet"  # the demo makes it (it used to crash, then hang)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", FAILING_TRAINER, str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr[-2000:]
    assert done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"streamrec demo: the trainer exited with code 3: torch is on fire (log: {data / 'trainer.log'})"
    assert "Traceback" not in done.stderr and "%3|" not in done.stderr
    assert took < 60, f"took {took:.0f} s to end"
