"""What the wheel ships: every scenario (subfolders kept), the type stubs and
py.typed, the compiled extensions; no Cython sources, generated C or tests.
And the shipped scenarios are found both in the checkout and in an install."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from swarm_engine._version import __version__
from swarm_engine.eval.builtin import builtin_scenario, builtin_scenario_files, builtin_scenarios_dir
from tests.paths import ROOT, SCENARIOS

SOURCE_SCENARIOS = sorted(p.relative_to(SCENARIOS).as_posix() for p in SCENARIOS.rglob("*.toml"))


def test_the_checkout_has_scenarios_in_subfolders():
    assert "llm/troubleshooting_llm.toml" in SOURCE_SCENARIOS      # or the recursive checks test nothing


def test_builtin_scenarios_in_the_checkout():
    assert builtin_scenarios_dir() == SCENARIOS
    assert [p.relative_to(SCENARIOS).as_posix() for p in builtin_scenario_files()] == SOURCE_SCENARIOS
    assert builtin_scenario("llm/troubleshooting_llm").is_file()
    assert builtin_scenario("troubleshooting.toml") == SCENARIOS / "troubleshooting.toml"


def _copy_source(dst: Path) -> Path:
    """The source tree as a fresh clone would have it (tracked and new files, no
    build outputs), so the build neither sees nor leaves artefacts in the checkout."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
        for rel in (r.decode() for r in listed if r):
            src = ROOT / rel
            if src.is_file():
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst / rel)
    else:
        shutil.copytree(ROOT, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            "*.so", "build", "dist", "*.egg-info", "__pycache__", ".venv", ".hypothesis", ".pytest_cache",
            ".mypy_cache", ".ruff_cache", "out", ".benchmarks"))
        for generated in (dst / "swarm_engine" / "_native").glob("*.c"):
            generated.unlink()
    return dst


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("Cython", reason="building the wheel without isolation needs Cython (the test extra)")
    src = _copy_source(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                           "--quiet", "-w", str(out)], cwd=src, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = out.glob("swarm_engine-*.whl")
    return built


@pytest.fixture(scope="module")
def names(wheel) -> list[str]:
    with zipfile.ZipFile(wheel) as z:
        return z.namelist()


@pytest.mark.slow
def test_wheel_ships_every_scenario(names):
    shipped = sorted(n.removeprefix("swarm_engine/scenarios/") for n in names
                     if n.startswith("swarm_engine/scenarios/"))
    assert shipped == SOURCE_SCENARIOS


@pytest.mark.slow
def test_wheel_ships_types_and_extensions(names):
    native = ROOT / "swarm_engine" / "_native"
    assert "swarm_engine/py.typed" in names
    for stub in sorted(native.glob("*.pyi")):
        assert f"swarm_engine/_native/{stub.name}" in names
    built = {Path(n).name.split(".")[0] for n in names if n.startswith("swarm_engine/_native/") and n.endswith(".so")}
    assert built == {p.stem for p in native.glob("*.pyx")}          # every extension compiled


@pytest.mark.slow
def test_wheel_ships_the_dashboard_page(names):
    """`swarm gui` from an installed wheel serves swarm_engine/gui/static (package data)."""
    static = ROOT / "swarm_engine" / "gui" / "static"
    for f in sorted(static.iterdir()):
        assert f"swarm_engine/gui/static/{f.name}" in names


@pytest.mark.slow
def test_wheel_has_no_sources_build_files_or_tests(names):
    assert not [n for n in names if n.endswith((".pyx", ".c", ".h"))]
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    assert {n.split("/")[0] for n in names} == {"swarm_engine", f"swarm_engine-{__version__}.dist-info"}


@pytest.mark.slow
def test_installed_wheel_finds_its_scenarios(wheel, tmp_path):
    """Unpacked as pip would install it, the package finds its own copy of every scenario."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    # first on sys.path, ahead of this checkout or an editable install; numpy and
    # msgspec still come from this interpreter's site-packages
    probe = (f"import sys\nsys.path.insert(0, {str(site)!r})\nimport json\nimport swarm_engine\n"
             "from swarm_engine.eval.builtin import builtin_scenario_files, builtin_scenarios_dir\n"
             "root = builtin_scenarios_dir()\n"
             "files = [p.relative_to(root).as_posix() for p in builtin_scenario_files()]\n"
             "swarm_engine.load_scenario(root / 'llm' / 'troubleshooting_llm.toml')\n"
             "print(json.dumps({'package': swarm_engine.__file__, 'root': str(root), 'files': files,\n"
             "                  'version': swarm_engine.__version__}))")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("SWARM_")}
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["package"] == str(site / "swarm_engine" / "__init__.py")
    assert seen["root"] == str(site / "swarm_engine" / "scenarios")
    assert seen["files"] == SOURCE_SCENARIOS
    assert seen["version"] == __version__


def test_no_file_of_the_package_is_ignored_by_git():
    """A file under swarm_engine/ that .gitignore hides is missing from every clean
    clone (the dashboard's index.html once was: `*.html`); only build outputs may be."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "swarm_engine"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    built = (".so", ".c", ".pyc", ".pyd")
    hidden = [p for p in out if "__pycache__" not in p and not p.endswith(built)]
    assert hidden == [], f"ignored by git, so not in a clone: {hidden}"
