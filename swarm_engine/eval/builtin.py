"""Where the built-in scenario files are: inside an installed wheel
(swarm_engine/scenarios, copied there at build time by setup.py, subfolders
such as llm/ kept) or, in a source checkout and editable installs, the
repository's scenarios/ folder."""

from __future__ import annotations

from pathlib import Path

__all__ = ["builtin_scenarios_dir", "builtin_scenario", "builtin_scenario_files"]


def builtin_scenarios_dir() -> Path:
    pkg = Path(__file__).resolve().parent.parent            # .../swarm_engine
    shipped = pkg / "scenarios"                             # an installed wheel
    checkout = pkg.parent / "scenarios"                     # the repository (editable or in-place)
    if not shipped.is_dir() and checkout.is_dir() and (pkg.parent / "pyproject.toml").is_file():
        return checkout
    return shipped


def builtin_scenario(name: str) -> Path:
    """The path of a built-in scenario by name: ``troubleshooting``, or
    ``llm/troubleshooting_llm`` for one in a subfolder."""
    return builtin_scenarios_dir() / f"{name.removesuffix('.toml')}.toml"


def builtin_scenario_files() -> list[Path]:
    """Every shipped scenario file, subfolders included, in a stable order."""
    return sorted(builtin_scenarios_dir().rglob("*.toml"))
