"""What ``--cluster`` names: a Ray to start here, the cluster of ``RAY_ADDRESS``, or a Ray Client address.

::

    ray                 start a Ray on this machine (all its cores), bound to 127.0.0.1
    auto                join the cluster RAY_ADDRESS names (HOST:PORT of a head's GCS, or
                        ray://HOST:PORT); unset: the cluster `ray start` made on this machine
    ray://HOST[:PORT]   join through the Ray Client server of a head (port 10001 by default)

Parsed without Ray, so a bad value is one line before anything starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from swarm_engine.errors import ConfigError

__all__ = ["ClusterAddress", "parse_cluster", "CLIENT_PORT"]

CLIENT_PORT = 10001          # Ray Client's default (`ray start --head --ray-client-server-port`)
_EXPECTED = "expected ray, auto or ray://HOST:PORT"


@dataclass(frozen=True)
class ClusterAddress:
    """A parsed ``--cluster``.

    ``kind`` is ``local`` (start a Ray here), ``gcs`` (a head's HOST:PORT, the
    driver runs on a cluster machine) or ``client`` (``ray://``, the driver may
    run anywhere); ``address`` is what ``ray.init`` gets (None: start one), and
    ``host``/``port`` what is probed before connecting (None: nothing to probe).
    """

    text: str
    kind: str
    address: str | None
    host: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        return self.text if self.text == self.address or self.address is None else f"{self.text} ({self.address})"


def _host_port(text: str, default_port: int | None, source: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) with the port checked."""
    host, sep, port = text.rpartition(":") if not text.endswith("]") else (text, "", "")
    if not sep:
        host, port = text, ""
    host = host.strip("[]")
    if not host:
        raise ConfigError(f"no host in '{text}' ({_EXPECTED})", path=source)
    if not port:
        if default_port is None:
            raise ConfigError(f"no port in '{text}' (expected HOST:PORT)", path=source)
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"port '{port}' of '{text}' is not a number in 1..65535", path=source)
    return host, int(port)


def parse_cluster(text: str, env: Mapping[str, str] | None = None) -> ClusterAddress:
    """``--cluster TEXT`` as a :class:`ClusterAddress`; one ConfigError line when it is none of the forms."""
    env = os.environ if env is None else env
    value = text.strip()
    if value == "ray":
        return ClusterAddress(text, "local", None)
    if value.startswith("ray://"):
        host, port = _host_port(value[len("ray://"):], CLIENT_PORT, "--cluster")
        return ClusterAddress(text, "client", f"ray://{_join(host, port)}", host, port)
    if value == "auto":
        named = env.get("RAY_ADDRESS", "").strip()
        if not named or named == "auto":
            return ClusterAddress(text, "gcs", "auto")        # Ray looks for a `ray start` cluster here
        if named.startswith("ray://"):
            host, port = _host_port(named[len("ray://"):], CLIENT_PORT, "$RAY_ADDRESS")
            return ClusterAddress(text, "client", f"ray://{_join(host, port)}", host, port)
        host, port = _host_port(named, None, "$RAY_ADDRESS")
        return ClusterAddress(text, "gcs", _join(host, port), host, port)
    raise ConfigError(f"{_EXPECTED}, got '{text}'", path="--cluster")


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
