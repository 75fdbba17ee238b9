"""Where the built-in scenario files are: inside an installed wheel
(swarm_engine/scenarios, copied there at build time) or, in a source checkout
and editable installs, the repository's scenarios/ folder."""

from __future__ import annotations

from pathlib import Path

__all__ = ["builtin_scenarios_dir", "builtin_scenario"]


def builtin_scenarios_dir() -> Path:
    pkg = Path(__file__).resolve().parent.parent
    for candidate in (pkg / "scenarios", pkg.parent / "scenarios"):
        if candidate.is_dir():
            return candidate
    return pkg / "scenarios"


def builtin_scenario(name: str) -> Path:
    """The path of a built-in scenario by name (``troubleshooting``)."""
    return builtin_scenarios_dir() / f"{name.removesuffix('.toml')}.toml"
