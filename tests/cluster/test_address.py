"""``--cluster`` values, parsed without Ray: each form, and one line for a bad one."""

from __future__ import annotations

import pytest

from swarm_engine.cluster.address import CLIENT_PORT, parse_cluster
from swarm_engine.errors import ConfigError


@pytest.mark.parametrize(("text", "env", "kind", "address", "host", "port"), [
    ("ray", {}, "local", None, None, None),
    ("ray://10.0.0.5:10002", {}, "client", "ray://10.0.0.5:10002", "10.0.0.5", 10002),
    ("ray://head", {}, "client", f"ray://head:{CLIENT_PORT}", "head", CLIENT_PORT),
    ("ray://[::1]:7000", {}, "client", "ray://[::1]:7000", "::1", 7000),
    ("auto", {}, "gcs", "auto", None, None),
    ("auto", {"RAY_ADDRESS": "127.0.0.1:6379"}, "gcs", "127.0.0.1:6379", "127.0.0.1", 6379),
    ("auto", {"RAY_ADDRESS": "ray://h:1234"}, "client", "ray://h:1234", "h", 1234),
])
def test_forms(text, env, kind, address, host, port):
    addr = parse_cluster(text, env)
    assert (addr.kind, addr.address, addr.host, addr.port) == (kind, address, host, port)


@pytest.mark.parametrize(("text", "env", "message"), [
    ("rai", {}, "--cluster: expected ray, auto or ray://HOST:PORT, got 'rai'"),
    ("http://h:1", {}, "--cluster: expected ray, auto or ray://HOST:PORT, got 'http://h:1'"),
    ("ray://h:99999", {}, "--cluster: port '99999' of 'h:99999' is not a number in 1..65535"),
    ("ray://:10001", {}, "--cluster: no host in ':10001'"),
    ("auto", {"RAY_ADDRESS": "headnode"}, "$RAY_ADDRESS: no port in 'headnode' (expected HOST:PORT)"),
])
def test_bad_values_are_one_line(text, env, message):
    with pytest.raises(ConfigError) as info:
        parse_cluster(text, env)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
