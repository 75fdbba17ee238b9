"""Each compiled extension of swarm_engine._native against its .pyi stub.

mypy reads the stubs instead of the extensions, so a name the stub lacks is an
error in every caller (and a name only the stub has hides a missing one). The
stubs are parsed with ``ast``: module-level names, the members of each public
class, and the members (with values) of each enum.
"""

from __future__ import annotations

import ast
import enum
import importlib
import importlib.machinery
import types
from pathlib import Path

import pytest

import swarm_engine._native as native

NATIVE = Path(native.__file__).resolve().parent
EXTENSIONS = sorted({p.name.split(".")[0] for p in NATIVE.iterdir()
                     if any(p.name.endswith(s) for s in importlib.machinery.EXTENSION_SUFFIXES)})


def _public(names) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def _runtime_names(mod: types.ModuleType) -> set[str]:
    """Public module-level names, less the modules it imported (np)."""
    return _public(n for n, v in vars(mod).items() if not isinstance(v, types.ModuleType))


def _body_names(body: list[ast.stmt]) -> dict[str, ast.AST]:
    """Names a stub's module or class body declares (imports left out)."""
    out: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
        elif isinstance(node, ast.Assign):
            out.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
    return out


def _diff(what: str, runtime: set[str], stub: set[str]) -> str:
    lines = [f"{what}: the extension and its stub disagree"]
    if runtime - stub:
        lines.append(f"  in the extension, missing from the stub: {sorted(runtime - stub)}")
    if stub - runtime:
        lines.append(f"  in the stub, not in the extension: {sorted(stub - runtime)}")
    return "\n".join(lines)


def test_extensions_found():
    assert "_kernel" in EXTENSIONS and "_envs" in EXTENSIONS, EXTENSIONS


@pytest.mark.parametrize("name", EXTENSIONS)
def test_stub_matches_extension(name):
    mod = importlib.import_module(f"swarm_engine._native.{name}")
    runtime = _runtime_names(mod)
    stub_path = NATIVE / f"{name}.pyi"
    if not stub_path.exists():
        assert not runtime, f"{name} has public names {sorted(runtime)} but no {stub_path.name}"
        return
    tree = ast.parse(stub_path.read_text(), filename=str(stub_path))
    declared = _body_names(tree.body)
    assert runtime == _public(declared), _diff(name, runtime, _public(declared))
    for cname in sorted(runtime):
        cls = getattr(mod, cname)
        if not isinstance(cls, type):
            continue
        node = declared[cname]
        assert isinstance(node, ast.ClassDef), f"{name}.{cname} is a class; the stub declares it otherwise"
        members = _body_names(node.body)
        if issubclass(cls, enum.Enum):
            values = {m: ast.literal_eval(n.value) for m, n in members.items()
                      if isinstance(n, ast.Assign) and not m.startswith("_")}
            real = {m: int(v.value) for m, v in cls.__members__.items()}
            assert set(real) == set(values), _diff(f"{name}.{cname}", set(real), set(values))
            assert real == values, f"{name}.{cname}: values differ: extension {real}, stub {values}"
        else:
            assert _public(dir(cls)) == _public(members), \
                _diff(f"{name}.{cname}", _public(dir(cls)), _public(members))
