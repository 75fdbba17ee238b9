"""The package's layers point one way, and no modules import each other in a circle.

Every ``import`` in every module of ``swarm_engine`` is read with :mod:`ast`:
top-level ones, those inside functions and those under ``if TYPE_CHECKING:``
alike (each is a dependency a reader has to hold in mind, and a
``TYPE_CHECKING`` one is a circle that merely does not crash). Relative imports
are resolved against the importing module's package.

A module may import its own layer and anything below it, never above.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.paths import ROOT

# Top to bottom: the one list of layers. Each layer is a tuple of module
# prefixes; the longest matching prefix decides a module's layer, so
# ``swarm_engine`` alone (the package face, ``swarm_engine/__init__.py``)
# only catches what no deeper prefix does.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # the dashboard sits beside the command line: `swarm gui` mounts it, it reuses cli's helpers
    ("cli", ("swarm_engine.cli", "swarm_engine.gui")),
    ("bench", ("swarm_engine.bench",)),
    ("face", ("swarm_engine",)),
    ("cluster", ("swarm_engine.cluster",)),
    ("learn", ("swarm_engine.learn",)),
    ("eval", ("swarm_engine.eval",)),
    ("llm", ("swarm_engine.llm",)),
    ("core", ("swarm_engine.core",)),
    ("exploration", ("swarm_engine.exploration",)),
    ("_reference", ("swarm_engine._reference",)),
    ("_native", ("swarm_engine._native",)),
    ("base", ("swarm_engine.settings", "swarm_engine.inputs", "swarm_engine.fsio", "swarm_engine.errors",
              "swarm_engine._version")),
)

# Upward imports known and accepted: (importer module, imported module).
# Empty, and it stays so: an entry here is a bug with a name on it.
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()

ALLOWED = KNOWN_VIOLATIONS


@dataclass(frozen=True)
class Import:
    importer: str       # dotted module name
    target: str         # dotted module name (a submodule when ``from pkg import submodule``)
    path: Path
    line: int


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path, package: str) -> Iterator[Path]:
    """Every .py / .pyi file of ``package`` under ``root`` (a .pyi beside its .py is the same module)."""
    base = root / package
    for path in sorted(base.rglob("*.py*")):
        if path.suffix == ".py" or (path.suffix == ".pyi" and not path.with_suffix(".py").exists()):
            yield path


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    parts = importer.split(".")
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)]
    return ".".join(parts + ([module] if module else []))


def imports_of(path: Path, root: Path, modules: set[str], package: str) -> Iterator[Import]:
    """The imports of one file that name modules of ``package`` (each resolved to the module it loads)."""
    importer = module_name(path, root)
    is_package = path.stem == "__init__"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == package or alias.name.startswith(package + "."):
                    yield Import(importer, alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = (_resolve_relative(importer, is_package, node.level, node.module) if node.level
                    else node.module or "")
            if not (base == package or base.startswith(package + ".")):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                # ``from pkg import submodule`` loads the submodule; ``from pkg import name`` loads pkg
                yield Import(importer, sub if sub in modules else base, path, node.lineno)


def collect(root: Path, package: str) -> tuple[set[str], list[Import]]:
    files = list(source_files(root, package))
    modules = {module_name(p, root) for p in files}
    found = [imp for p in files for imp in imports_of(p, root, modules, package)]
    return modules, found


def layer_of(module: str, layers=LAYERS) -> tuple[int, str]:
    best: tuple[int, int, str] | None = None     # (prefix length, index, name)
    for index, (name, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), index, name)
    if best is None:
        raise AssertionError(f"module {module} is in no layer: add it to LAYERS in tests/test_layers.py")
    return best[1], best[2]


def upward_imports(found: Iterable[Import], root: Path, layers=LAYERS,
                   allowed: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    problems: dict[str, None] = {}          # one line per import statement, in order
    for imp in found:
        src_index, src_layer = layer_of(imp.importer, layers)
        dst_index, dst_layer = layer_of(imp.target, layers)
        if dst_index < src_index and (imp.importer, imp.target) not in allowed:
            problems[f"{imp.path.relative_to(root)}:{imp.line}: {src_layer} imports {dst_layer} "
                     f"({imp.importer} -> {imp.target}); {dst_layer} is above {src_layer}"] = None
    return list(problems)


def cycles(found: Iterable[Import], modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module
    importing itself), by Tarjan's algorithm; each as a closed path through it."""
    edges: dict[str, set[str]] = {m: set() for m in modules}
    for imp in found:
        if imp.target in modules:
            edges[imp.importer].add(imp.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:          # recursion depth is bounded by the module count (~200)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in edges[v]:
                components.append(sorted(comp))

    for v in sorted(modules):
        if v not in index:
            visit(v)
    return [_closed_path(comp, edges) for comp in components]


def _closed_path(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One cycle inside a strongly connected component, start == end: the
    shortest way back to its first module (breadth first)."""
    members = set(component)
    start = component[0]
    parents: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v] & members):
                if w == start:
                    path = [v]
                    while (parent := parents[path[-1]]) is not None:
                        path.append(parent)
                    return path[::-1] + [start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{component} is not a cycle")


def describe_cycles(found: list[Import], modules: set[str]) -> list[str]:
    where = {(i.importer, i.target): i for i in found}
    out = []
    for path in cycles(found, modules):
        steps = []
        for a, b in zip(path, path[1:]):
            imp = where.get((a, b))
            steps.append(f"{a} -> {b}" + (f" ({imp.path.name}:{imp.line})" if imp else ""))
        out.append("import cycle: " + "; ".join(steps))
    return out


# ------------------------------------------------------------------ the package


@pytest.fixture(scope="module")
def package_imports() -> tuple[set[str], list[Import]]:
    return collect(ROOT, "swarm_engine")


def test_every_module_has_a_layer(package_imports):
    modules, _ = package_imports
    assert len(modules) > 50                      # the walk found the package
    for module in modules:
        layer_of(module)


def test_layers_point_down(package_imports):
    _, found = package_imports
    assert len(found) > 100
    problems = upward_imports(found, ROOT, allowed=ALLOWED)
    assert not problems, "imports point up the layers:\n" + "\n".join(problems)


def test_allowances_still_exist(package_imports):
    """An allowance for an import that is gone must go too (or it would hide its return)."""
    _, found = package_imports
    edges = {(i.importer, i.target) for i in found}
    stale = sorted(ALLOWED - edges)
    assert not stale, f"remove these allowances from tests/test_layers.py, the imports are gone: {stale}"


def test_no_import_cycles(package_imports):
    modules, found = package_imports
    problems = describe_cycles(found, modules)
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ the checker itself

TINY_LAYERS = (
    ("top", ("pkg.top",)),
    ("face", ("pkg",)),
    ("mid", ("pkg.mid",)),
    ("low", ("pkg.low", "pkg.base")),
)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_checker_sees_every_kind_of_import(tmp_path):
    root = _tree(tmp_path, {
        "pkg/__init__.py": "from pkg.mid import thing\n",
        "pkg/base.py": "",
        "pkg/top/__init__.py": "",
        "pkg/top/cmd.py": "import pkg.mid.a\nfrom pkg import base\n",
        "pkg/mid/__init__.py": "",
        "pkg/mid/a.py": "from .b import x\nfrom . import b\n",
        "pkg/mid/b.py": ("from typing import TYPE_CHECKING\n"
                         "if TYPE_CHECKING:\n    from pkg.top.cmd import C\n"
                         "def f():\n    from ..low import y\n    import os\n"),
        "pkg/low/__init__.py": "",
    })
    modules, found = collect(root, "pkg")
    edges = {(i.importer, i.target, i.line) for i in found}
    assert modules == {"pkg", "pkg.base", "pkg.top", "pkg.top.cmd", "pkg.mid", "pkg.mid.a", "pkg.mid.b",
                       "pkg.low"}
    assert edges == {
        ("pkg", "pkg.mid", 1),
        ("pkg.top.cmd", "pkg.mid.a", 1),
        ("pkg.top.cmd", "pkg.base", 2),           # ``from pkg import base`` is the submodule
        ("pkg.mid.a", "pkg.mid.b", 1),            # relative, both forms
        ("pkg.mid.a", "pkg.mid.b", 2),
        ("pkg.mid.b", "pkg.top.cmd", 3),          # under TYPE_CHECKING
        ("pkg.mid.b", "pkg.low", 5),              # inside a function, relative two levels up
    }


def test_checker_flags_an_upward_import_with_file_line_and_layers(tmp_path):
    root = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/top/__init__.py": "import pkg.mid\n",
        "pkg/mid/__init__.py": "\n\nfrom pkg.top import x\nimport pkg\n",
        "pkg/low/__init__.py": "import pkg.mid\n",
    })
    _, found = collect(root, "pkg")
    problems = upward_imports(found, root, TINY_LAYERS)
    assert sorted(problems) == [
        "pkg/low/__init__.py:1: low imports mid (pkg.low -> pkg.mid); mid is above low",
        "pkg/mid/__init__.py:3: mid imports top (pkg.mid -> pkg.top); top is above mid",
        "pkg/mid/__init__.py:4: mid imports face (pkg.mid -> pkg); face is above mid",
    ]
    # an allowance silences exactly its own edge
    allowed = frozenset({("pkg.low", "pkg.mid")})
    assert len(upward_imports(found, root, TINY_LAYERS, allowed)) == 2


def test_checker_flags_a_module_in_no_layer(tmp_path):
    root = _tree(tmp_path, {"pkg/__init__.py": "", "pkg/stray.py": "import pkg\n"})
    _, found = collect(root, "pkg")
    layers = (("top", ("pkg.top",)), ("face", ("pkg",)))
    assert upward_imports(found, root, layers) == []          # face catches stray by prefix
    with pytest.raises(AssertionError, match="pkg.stray is in no layer"):
        upward_imports(found, root, (("top", ("pkg.top",)), ("face", ("pkg.face",))))


def test_checker_names_a_cycle(tmp_path):
    root = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/mid/__init__.py": "",
        "pkg/mid/a.py": "from pkg.mid import b\n",
        "pkg/mid/b.py": "def f():\n    from pkg.mid.c import z\n",
        "pkg/mid/c.py": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                         "    from pkg.mid.a import A\n"),
        "pkg/mid/d.py": "from pkg.mid import a\n",          # points into the cycle, not part of it
        "pkg/mid/e.py": "import pkg.mid.e\n",               # imports itself
    })
    modules, found = collect(root, "pkg")
    assert sorted(cycles(found, modules)) == [
        ["pkg.mid.a", "pkg.mid.b", "pkg.mid.c", "pkg.mid.a"],
        ["pkg.mid.e", "pkg.mid.e"],
    ]
    text = describe_cycles(found, modules)
    assert any("pkg.mid.b -> pkg.mid.c (b.py:2)" in t for t in text)
    assert not upward_imports(found, root, TINY_LAYERS)


def test_checker_passes_a_clean_tree(tmp_path):
    root = _tree(tmp_path, {
        "pkg/__init__.py": "from pkg.mid import a\n",
        "pkg/top/__init__.py": "import pkg\nfrom pkg.low import q\n",
        "pkg/mid/__init__.py": "",
        "pkg/mid/a.py": "from pkg.low import q\nfrom pkg import base\n",
        "pkg/low/__init__.py": "",
        "pkg/base.py": "",
    })
    modules, found = collect(root, "pkg")
    assert len(found) == 5
    assert upward_imports(found, root, TINY_LAYERS) == []
    assert cycles(found, modules) == []
