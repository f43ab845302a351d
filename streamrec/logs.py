"""The one place logging is configured. Every module logs through ``logging.getLogger(__name__)``;
stdout is left to the results a command prints (its JSON), diagnostics go to stderr."""

from __future__ import annotations

import logging
import sys
import time

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def setup(level: str = "INFO") -> None:
    """Send every logger's records at ``level`` and above to stderr, one line each, with time,
    level and logger name. Called once by the command-line entry point; calling it again replaces
    the handler rather than adding a second one."""
    name = level.upper()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    logging.basicConfig(level=name, format=FORMAT, stream=sys.stderr, force=True)
    logging.captureWarnings(True)  # warnings.warn (torch, onnx, uvicorn) through the same channel


class Throttle:
    """True at most once every ``every_s`` seconds: progress lines a terminal and a CI log both read well."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self.last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return False
        self.last = now
        return True
