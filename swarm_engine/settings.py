"""User configuration: defaults < ~/.swarm-engine/config.toml < ./swarm-engine/config.toml
< SWARM_<SECTION>_<KEY> environment variables < command-line flags.

Paths: ``~/.swarm-engine/`` holds config, logs, pid files, cache and the
learning store; ``~/swarm-engine/`` holds the user's scenarios and reports.
``SWARM_HOME`` moves both (tests and sandboxes set it).

Every layer is validated with one schema (:class:`ConfigFile`, msgspec, the
same machinery and messages as scenario files): a config.toml is read only
when it is a regular file of at most 1 MiB of UTF-8, and an unknown key, a
wrong type (``enabled = "yes"`` is not a boolean) or a value out of range is
one ConfigError line naming the file, line and key (or the variable).
Variables spell booleans 1/0, true/false, yes/no or on/off, and ints in
decimal.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import msgspec.inspect as mi
from msgspec import Meta

from swarm_engine.errors import ConfigError
from swarm_engine.inputs import convert, limits, parse_toml, read_text

__all__ = ["DEFAULTS", "Settings", "load_settings", "engine_dir", "user_dir", "config_path",
           "DEFAULT_CONFIG_TOML", "ConfigFile", "TRUE_WORDS", "FALSE_WORDS"]

# the spellings a SWARM_* variable may give a boolean (config.toml takes TOML's true / false only)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class _Section(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """Options of every section: unknown keys are errors naming the file and line."""


class EvalSettings(_Section, frozen=True):
    runs: Annotated[int, Meta(ge=1, le=limits.MAX_RUNS)] = 1
    seed: limits.Seed = 42
    jobs: limits.Jobs = 0
    reports_dir: str = ""
    llm_fallback: bool = False


class LlmSettings(_Section, frozen=True):
    # the providers of swarm_engine.llm.spec.Llm (tests/cli/test_hostile_config.py keeps them equal)
    provider: Literal["llama-server", "llama-cpp", "ollama", "openai", "none"] = "none"
    endpoint: str = "http://127.0.0.1:8080"
    model: str = ""


class LearningSettings(_Section, frozen=True):
    enabled: bool = False
    daemon_episodes: limits.Count32 = 100
    daemon_minutes: limits.Count32 = 60
    daemon_trigger: str = ""
    daemon_check_seconds: Annotated[int, Meta(ge=1, le=86_400)] = 5
    daemon_serve_port: limits.Port = 8080


class ConfigFile(_Section, frozen=True):
    """A config.toml: the schema every layer is validated with."""

    eval: EvalSettings = EvalSettings()
    llm: LlmSettings = LlmSettings()
    learning: LearningSettings = LearningSettings()


DEFAULTS: dict[str, dict[str, Any]] = msgspec.to_builtins(ConfigFile())

DEFAULT_CONFIG_TOML = """\
# swarm-engine configuration. Every key is optional; what is absent keeps its
# default. ./swarm-engine/config.toml in a project overrides this file, and
# SWARM_<SECTION>_<KEY> environment variables override both (e.g. SWARM_EVAL_RUNS=100).

[eval]
runs = 1                 # swarm eval -n default
seed = 42                # swarm eval -s default
jobs = 0                 # swarm eval -j default: threads or processes; 0 = every core this process may use
reports_dir = ""         # "" = ~/swarm-engine/reports
llm_fallback = false     # --llm-fallback: an LLM that does not answer -> warn, run on the bandit alone

[llm]
provider = "none"        # llama-server | llama-cpp | ollama | openai | none
endpoint = "http://127.0.0.1:8080"
model = ""

[learning]
enabled = false
daemon_episodes = 100    # swarm learn daemon: learn after this many new episodes ...
daemon_minutes = 60      # ... or after this many minutes (0 switches a part off)
daemon_trigger = ""      # or a full spec, e.g. "quality_drop 0.1 and 50 episodes or 6h"
daemon_check_seconds = 5 # how often time triggers and the LoRA pointer are checked
daemon_serve_port = 8080 # swarm learn daemon --serve: the blue-green endpoint's port
"""


def _home() -> Path:
    return Path(os.environ.get("SWARM_HOME") or Path.home())


def engine_dir() -> Path:
    """~/.swarm-engine: config, logs, pid files, cache, learning store."""
    return _home() / ".swarm-engine"


def user_dir() -> Path:
    """~/swarm-engine: the user's scenarios, reports and exports."""
    return _home() / "swarm-engine"


def config_path() -> Path:
    return engine_dir() / "config.toml"


@dataclass
class Settings:
    """The merged configuration and, per value, where it came from."""

    values: dict[str, dict[str, Any]]
    sources: dict[str, str]

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    @property
    def reports_dir(self) -> Path:
        d = self.values["eval"]["reports_dir"]
        return Path(d).expanduser() if d else user_dir() / "reports"


def _read_layer(path: Path, values: dict[str, dict[str, Any]], sources: dict[str, str]) -> None:
    """Validate one config.toml (regular file, 1 MiB, UTF-8, the schema) and lay its keys over ``values``."""
    if not os.path.lexists(path):
        return
    text = read_text(path, limit=limits.MAX_CONFIG_BYTES, error=ConfigError)
    data = parse_toml(text, str(path), ConfigError)
    layer = convert(data, ConfigFile, text=text, source=str(path), error=ConfigError)
    for section, table in data.items():
        for key in table:
            values[section][key] = getattr(getattr(layer, section), key)
            sources[f"{section}.{key}"] = str(path)


def _from_env(text: str, kind: mi.Type, env: str, field: str) -> Any:
    """A SWARM_* variable's text as the field's type (the range is checked with the schema)."""
    if isinstance(kind, mi.BoolType):
        word = text.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise ConfigError(f"got {text!r}, expected a boolean: {', '.join(TRUE_WORDS)} or {', '.join(FALSE_WORDS)}",
                          path=f"${env}", field=field)
    if isinstance(kind, mi.IntType):
        if not re.fullmatch(r"\s*[+-]?\d{1,30}\s*", text):
            raise ConfigError(f"got {text!r}, expected an int", path=f"${env}", field=field)
        return int(text)
    return text


def load_settings(cwd: Path | None = None) -> Settings:
    """Merge the layers; every bad file, key or value is one ConfigError naming it."""
    values = {section: dict(table) for section, table in DEFAULTS.items()}
    sources = {f"{s}.{k}": "default" for s, table in DEFAULTS.items() for k in table}
    for path in (config_path(), (cwd or Path.cwd()) / "swarm-engine" / "config.toml"):
        _read_layer(path, values, sources)
    schema = mi.type_info(ConfigFile)
    assert isinstance(schema, mi.StructType)
    for section in schema.fields:
        table = section.type
        assert isinstance(table, mi.StructType)
        for f in table.fields:
            env = f"SWARM_{section.name.upper()}_{f.name.upper()}"
            if env in os.environ:
                field = f"{section.name}.{f.name}"
                value = _from_env(os.environ[env], f.type, env, field)
                convert({section.name: {f.name: value}}, ConfigFile, text=None, source=f"${env}", error=ConfigError)
                values[section.name][f.name] = value
                sources[field] = f"${env}"
    merged = convert(values, ConfigFile, text=None, source="the merged configuration", error=ConfigError)
    bad_seed = limits.seeds_error(merged.eval.seed)
    if bad_seed:
        raise ConfigError(bad_seed, path=sources["eval.seed"], field="eval.seed")
    return Settings(values, sources)
