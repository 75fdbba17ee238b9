"""Extension table only; all metadata lives in pyproject.toml.

SWARM_DEBUG_BUILD=1 turns on bounds checks and wraparound in the kernels.
No -march=native: the wheel must run on any x86-64 / aarch64 machine.
"""
import os
import shutil
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_py import build_py

DEBUG = os.environ.get("SWARM_DEBUG_BUILD") == "1"

EXTENSIONS = {
    "swarm_engine._native._troubleshooting": ["swarm_engine/_native/_troubleshooting.pyx"],
    "swarm_engine._native._grid": ["swarm_engine/_native/_grid.pyx"],
    "swarm_engine._native._code_tree": ["swarm_engine/_native/_code_tree.pyx"],
    "swarm_engine._native._search": ["swarm_engine/_native/_search.pyx"],
    "swarm_engine._native._diagnosis": ["swarm_engine/_native/_diagnosis.pyx"],
    "swarm_engine._native._cascade": ["swarm_engine/_native/_cascade.pyx"],
    "swarm_engine._native._envs": ["swarm_engine/_native/_envs.pyx"],
    "swarm_engine._native._kernel": ["swarm_engine/_native/_kernel.pyx"],
    "swarm_engine._native._json_rows": ["swarm_engine/_native/_json_rows.pyx"],
}

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

extensions = [
    Extension(
        name,
        sources,
        include_dirs=[numpy.get_include(), "csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # no fused multiply-add contraction: traces stay bit-identical across
        # architectures (aarch64 GCC contracts by default) and to the reference
        extra_compile_args=(["-O0", "-g"] if DEBUG else ["-O3"]) + ["-ffp-contract=off"],
    )
    for name, sources in EXTENSIONS.items()
]

class BuildPyWithScenarios(build_py):
    """Ship scenarios/**/*.toml inside the wheel as swarm_engine/scenarios/,
    subfolders kept (scenarios/llm/ holds the LLM-managed ones)."""

    def run(self):
        super().run()
        source = Path("scenarios")
        target = Path(self.build_lib) / "swarm_engine" / "scenarios"
        for src in sorted(source.rglob("*.toml")):
            dst = target / src.relative_to(source)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)


setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES,
                            include_path=["."], annotate=False),
      cmdclass={"build_py": BuildPyWithScenarios})
