"""User configuration: defaults < ~/.swarm-engine/config.toml < ./swarm-engine/config.toml
< SWARM_<SECTION>_<KEY> environment variables < command-line flags.

Paths: ``~/.swarm-engine/`` holds config, logs, pid files, cache and the
learning store; ``~/swarm-engine/`` holds the user's scenarios and reports.
``SWARM_HOME`` moves both (tests and sandboxes set it).
"""

from __future__ import annotations

import copy
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm_engine.errors import ConfigError

__all__ = ["DEFAULTS", "Settings", "load_settings", "engine_dir", "user_dir", "config_path",
           "DEFAULT_CONFIG_TOML"]

DEFAULTS: dict[str, dict[str, Any]] = {
    "eval": {"runs": 1, "seed": 42, "reports_dir": "", "llm_fallback": False},
    "llm": {"provider": "none", "endpoint": "http://127.0.0.1:8080", "model": ""},
    "learning": {"enabled": False, "daemon_episodes": 100, "daemon_minutes": 60, "daemon_trigger": "",
                 "daemon_check_seconds": 5, "daemon_serve_port": 8080},
}

DEFAULT_CONFIG_TOML = """\
# swarm-engine configuration. Every key is optional; what is absent keeps its
# default. ./swarm-engine/config.toml in a project overrides this file, and
# SWARM_<SECTION>_<KEY> environment variables override both (e.g. SWARM_EVAL_RUNS=100).

[eval]
runs = 1                 # swarm eval -n default
seed = 42                # swarm eval -s default
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


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None


def _coerce(value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        try:
            if not isinstance(value, bool) and int(value) == float(value):
                return int(value)
        except (TypeError, ValueError):
            pass
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    raise ConfigError(f"{where}: expected {type(default).__name__}, got {value!r}")


def load_settings(cwd: Path | None = None) -> Settings:
    """Merge the layers; an unknown section or key is an error naming the file."""
    values = copy.deepcopy(DEFAULTS)
    sources = {f"{s}.{k}": "default" for s, table in DEFAULTS.items() for k in table}
    layers = [(config_path(), _read(config_path())),
              ((cwd or Path.cwd()) / "swarm-engine" / "config.toml",
               _read((cwd or Path.cwd()) / "swarm-engine" / "config.toml"))]
    for path, data in layers:
        for section, table in data.items():
            if section not in DEFAULTS or not isinstance(table, dict):
                raise ConfigError(f"{path}: unknown section [{section}] (known: {', '.join(DEFAULTS)})")
            for key, value in table.items():
                if key not in DEFAULTS[section]:
                    raise ConfigError(f"{path}: unknown key '{key}' in [{section}] "
                                      f"(known: {', '.join(DEFAULTS[section])})")
                values[section][key] = _coerce(value, DEFAULTS[section][key], f"{path}: {section}.{key}")
                sources[f"{section}.{key}"] = str(path)
    for section, table in DEFAULTS.items():
        for key, default in table.items():
            env = f"SWARM_{section.upper()}_{key.upper()}"
            if env in os.environ:
                values[section][key] = _coerce(os.environ[env], default, f"${env}")
                sources[f"{section}.{key}"] = f"${env}"
    return Settings(values, sources)
