"""Build step: carry the pack's own files inside the ``dispatch_kit`` package.

The plugin layout fixes where the templates, agents, bundled example and
manifests live: at the repository root, beside ``scripts/``. A wheel has no
root, and data files installed beside it land in a different place for every
install scheme (a venv, ``pip install --user``, a system prefix), which the
package cannot find reliably. So ``build_py`` copies them into
``dispatch_kit/pack/``: ``dispatch_kit.packroot`` then finds them next to its
own ``__file__``, whatever the scheme.

An editable install runs from ``scripts/`` and reads the root itself, so
nothing is copied for it. The sdist carries the root files (MANIFEST.in), so a
wheel built from it is whole too. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import glob
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
# The folder inside the package that mirrors the pack root; packroot.py names it too.
PACK = "pack"
# What the CLI reads from the pack root: render and lint (templates, agents),
# demo (the example and its variables), manifests (the three manifests).
# MANIFEST.in lists the same files for the sdist.
PACK_FILES = (
    "plugin.json",
    ".claude-plugin/plugin.json",
    ".claude-plugin/marketplace.json",
    "templates/**/*.j2",
    "agents/*.md",
    "examples/**/*",
)
SKIP_PARTS = ("__pycache__",)
SKIP_SUFFIXES = (".pyc", ".pyo")


def pack_files(root: str = HERE) -> list[str]:
    """Every file of :data:`PACK_FILES` under ``root``, relative, in a stable order.

    A pattern that matches nothing means a broken checkout or sdist: the build
    fails then, rather than ship a wheel that cannot render or run the demo.
    """
    found: list[str] = []
    for pattern in PACK_FILES:
        matched = [
            rel
            for rel in sorted(glob.glob(pattern, root_dir=root, recursive=True))
            if os.path.isfile(os.path.join(root, rel))
            and not any(part in SKIP_PARTS for part in rel.split(os.sep))
            and not rel.endswith(SKIP_SUFFIXES)
        ]
        if not matched:
            raise SystemExit(f"{os.path.join(root, pattern)}: no such file; the pack is incomplete")
        found += [rel for rel in matched if rel not in found]
    return found


class build_py_with_pack(build_py):
    """``build_py`` that also copies the pack root's files into ``dispatch_kit/pack/``."""

    def _pack_target(self) -> str:
        return os.path.join(self.build_lib, "dispatch_kit", PACK)

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # the editable package reads the checkout's root
        target = self._pack_target()
        # A file deleted from the pack must not survive from an earlier build.
        shutil.rmtree(target, ignore_errors=True)
        for rel in pack_files():
            destination = os.path.join(target, rel)
            self.mkpath(os.path.dirname(destination))
            self.copy_file(os.path.join(HERE, rel), destination, preserve_mode=True)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not self.editable_mode:
            outputs += [os.path.join(self._pack_target(), rel) for rel in pack_files()]
        return outputs


setup(cmdclass={"build_py": build_py_with_pack})
