"""``PATH[:SCALE]``: the one parser behind ``swarm llama start --lora`` and a
scenario's ``[llm] lora`` (no file system, no model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm_engine.errors import ConfigError
from swarm_engine.llm.lora_spec import LoraSpec, lora_pairs, parse_lora_spec


@pytest.mark.parametrize("spec, path, scale", [
    ("a.gguf", "a.gguf", None),                                  # no scale: the backend's default
    ("a.gguf:0.5", "a.gguf", 0.5),
    ("a.gguf:0", "a.gguf", 0.0),                                 # loaded, switched off
    ("a.gguf:2", "a.gguf", 2.0),
    ("a.gguf:1e-1", "a.gguf", 0.1),
    ("/runs/a:b/adapter.gguf", "/runs/a:b/adapter.gguf", None),  # a ':' whose tail is no number is path
    ("/runs/a:b/adapter.gguf:0.25", "/runs/a:b/adapter.gguf", 0.25),
    ("dir:v2", "dir:v2", None),
    ("a.gguf::1", "a.gguf:", 1.0),                               # the last ':' counts: a file named 'a.gguf:'
])
def test_path_and_scale(spec, path, scale):
    assert parse_lora_spec(spec) == LoraSpec(Path(path), scale)


@pytest.mark.parametrize("spec, why", [
    ("a.gguf:", "nothing after ':'"),
    ("a.gguf:  ", "nothing after ':'"),
    (":0.5", "no adapter path"),
    ("a.gguf:-0.5", "finite number >= 0"),
    ("a.gguf:-1", "finite number >= 0"),
    ("a.gguf:nan", "finite number >= 0"),
    ("a.gguf:inf", "finite number >= 0"),
    ("a.gguf:-inf", "finite number >= 0"),
    ("", "expected PATH or PATH:SCALE"),
])
def test_malformed_specs_are_config_errors_naming_the_spec(spec, why):
    with pytest.raises(ConfigError) as e:
        parse_lora_spec(spec, source="[llm] lora")
    msg = str(e.value)
    assert why in msg and msg.startswith(f"[llm] lora {spec!r}:") and "\n" not in msg


def test_pairs_default_the_scale_to_one():
    assert lora_pairs(["a.gguf", "b.gguf:0.5", "/x:y/c.gguf"]) == [
        ("a.gguf", 1.0), ("b.gguf", 0.5), ("/x:y/c.gguf", 1.0)]
    with pytest.raises(ConfigError, match=r"\[llm\] lora 'b.gguf:-2'"):
        lora_pairs(["a.gguf", "b.gguf:-2"])


def test_the_factory_and_the_server_share_it(tmp_path):
    from swarm_engine.llm import factory, server

    assert factory.lora_pairs is lora_pairs
    a = tmp_path / "a.gguf"
    a.write_bytes(b"GGUF")
    assert server.parse_lora(f"{a}:0.5") == LoraSpec(a.resolve(), 0.5)
    for bad in (f"{a}:", f"{a}:-1", f"{a}:nan"):
        with pytest.raises(ConfigError, match="--lora"):
            server.parse_lora(bad)          # no longer a file named 'a.gguf:' or a silent scale
