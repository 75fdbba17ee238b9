"""Every script in docs/examples/ runs and exits 0: the documented API is the real one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.paths import DATA, EXAMPLES

SCRIPTS = sorted(EXAMPLES.glob("*.py"))


def test_there_are_examples():
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_example_runs(script, subprocess_env, tmp_path):
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
                          env={**subprocess_env, "PYTHONWARNINGS": "error"}, timeout=120)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert proc.stdout.strip(), f"{script.name} printed nothing"
    assert proc.stderr == ""


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_example_is_referenced_in_the_docs(script):
    docs = "".join(p.read_text(encoding="utf-8") for p in EXAMPLES.parent.glob("*.md"))
    assert f"examples/{script.name}" in docs


# ----------------------------------------------------------------------------- docs/scenarios.md


SCENARIOS_MD = EXAMPLES.parent / "scenarios.md"


def _documented_errors() -> list[tuple[str, str]]:
    """(file name, message) from the error table of docs/scenarios.md."""
    import re

    rows = []
    for line in SCENARIOS_MD.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| [^|]+ \| `+(.+?)`* \|$", line)
        if m and ".toml" in m.group(1):
            message = m.group(1).strip()
            rows.append((message.split(":", 1)[0], message))
    return rows


@pytest.mark.parametrize(("name", "message"), _documented_errors(), ids=[n for n, _ in _documented_errors()])
def test_documented_error_messages_are_real(name, message):
    from swarm_engine import ScenarioError, load_scenario

    variant = "nope" if "unknown variant" in message else None
    with pytest.raises(ScenarioError) as info:
        load_scenario(DATA / name, variant=variant)
    actual = str(info.value).replace(f"{DATA}/", "")
    pos = 0
    for piece in message.split("..."):       # '...' in the docs elides part of the message
        found = actual.find(piece, pos)
        assert found >= 0, f"docs say {message!r}, the loader says {actual!r}"
        pos = found + len(piece)


def test_documented_error_table_is_complete():
    assert len(_documented_errors()) >= 15


def _schema_fields() -> set[str]:
    import msgspec

    from swarm_engine.eval import schema

    names = set()
    for obj in vars(schema).values():
        if isinstance(obj, type) and issubclass(obj, msgspec.Struct) and obj is not schema.Base:
            names.update(f.encode_name for f in msgspec.structs.fields(obj))
    return names


def _code_identifiers(text: str) -> set[str]:
    """Identifiers that appear in code: inline `spans` and fenced blocks."""
    import re

    code = re.findall(r"```.*?```", text, flags=re.S) + re.findall(r"`([^`\n]+)`", text)
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", " ".join(code)))


@pytest.mark.parametrize("field", sorted(_schema_fields()))
def test_every_schema_field_is_documented(field):
    assert field in _code_identifiers(SCENARIOS_MD.read_text(encoding="utf-8"))


def test_every_metric_is_documented():
    from swarm_engine.eval.conditions import METRICS

    text = SCENARIOS_MD.read_text(encoding="utf-8")
    for metric in METRICS:
        assert f"`{metric}`" in text


def _builtin_environments() -> list[str]:
    from swarm_engine.eval.environments import BUILTIN

    return sorted(BUILTIN)


@pytest.mark.parametrize("env_type", _builtin_environments())
def test_every_builtin_environment_is_documented(env_type):
    from swarm_engine.eval.environments import BUILTIN

    face = BUILTIN[env_type]
    text = SCENARIOS_MD.read_text(encoding="utf-8")
    row = next((line for line in text.splitlines() if line.startswith(f"| `{env_type}` |")), None)
    assert row is not None, f"docs/scenarios.md has no row for env_type '{env_type}'"
    for op in face.ops:
        assert op in row
    for param in face.params:
        assert f"`{param}`" in row
