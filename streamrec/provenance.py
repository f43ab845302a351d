"""Date, commit, machine and command: the stamp every figure written to ``docs/results/`` carries
(``streamrec.reference.results`` refuses a results file without it)."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, timeout=10, cwd=Path(__file__).resolve().parent
        ).stdout.strip()
    except OSError:
        return ""


def run_stamp(default_command: str) -> dict[str, Any]:
    """The stamp of a bench run now: ``default_command`` names it when not run from the CLI."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty": bool(_git("status", "--porcelain")),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "command": "streamrec " + " ".join(sys.argv[1:]) if sys.argv[1:] else default_command,
    }
