"""Reach the Ray cluster ``--cluster`` names, or start one here; Ray is imported only now.

An unreachable address is probed with a plain TCP connect first (a few
seconds), so it is one :class:`ClusterError` line naming the address instead
of Ray's minute of retries and its log lines.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from swarm_engine.cluster.address import ClusterAddress
from swarm_engine.errors import ClusterError

__all__ = ["import_ray", "ray_cluster", "check_reachable", "INSTALL_HINT", "CONNECT_TIMEOUT_S"]

INSTALL_HINT = "pip install 'swarm-engine[cluster]' (or pip install 'ray[client]>=2.40')"
CONNECT_TIMEOUT_S = 5.0


def import_ray() -> ModuleType:
    """The ``ray`` module; one line saying how to install it when it is absent."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--cluster needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def check_reachable(addr: ClusterAddress, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A TCP connect to the address's host and port; ClusterError naming it when nothing answers."""
    if addr.host is None or addr.port is None:
        return
    try:
        with socket.create_connection((addr.host, addr.port), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError | socket.timeout):
            why = f"no answer in {timeout:g} s"
        raise ClusterError(f"cannot reach the Ray cluster at {addr}: {why}") from None


@contextmanager
def ray_cluster(addr: ClusterAddress, *, num_cpus: int | None = None, temp_dir: str | None = None,
                timeout: float = CONNECT_TIMEOUT_S) -> Iterator[ModuleType]:
    """Connected to ``addr`` while inside; Ray shut down after (a Ray this process
    had already connected is used as it is and left running)."""
    if addr.kind == "local":
        # Ray starts its clusters with token authentication (2.5x+) and warns that it did;
        # asked for by name (before the import: Ray reads it then), it is the same without the line
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    check_reachable(addr, timeout)
    quiet = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if addr.kind == "local":
            # a Ray of this machine alone: bound to loopback, nothing listens outside
            ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", _temp_dir=temp_dir, **quiet)
        elif addr.kind == "client":
            ray.init(address=addr.address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(address=addr.address, **quiet)
    except (ConnectionError, RuntimeError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot connect to the Ray cluster at {addr}: {_first_line(exc)}{_auth_hint(exc)}") \
            from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _auth_hint(exc: BaseException) -> str:
    """Ray (2.5x+) turns token authentication on for clusters it starts, and a driver
    given an address explicitly does not look for the token: say what to set."""
    chain: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        chain.append(f"{type(seen).__name__} {seen}")
        seen = seen.__cause__ or seen.__context__
    if any("AuthToken" in text or "AuthenticationError" in text for text in chain):
        return (" (the cluster wants its token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN, or "
                "RAY_AUTH_TOKEN_PATH, as its nodes have it)")
    return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
