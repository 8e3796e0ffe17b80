"""Architecture rules that code review alone would not keep: the import boundaries."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import cxr_viewer
from tests.conftest import REPO_ROOT


def _all_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(cxr_viewer.__path__, prefix="cxr_viewer."):
        if info.name == "cxr_viewer.__main__":
            continue
        names.append(info.name)
    return sorted(names)


def test_every_module_is_found() -> None:
    names = _all_modules()
    # The walk must see the core packages; an empty walk would make the next test vacuous.
    for pkg in ("cxr_viewer.io", "cxr_viewer.imaging", "cxr_viewer.inference", "cxr_viewer.cli"):
        assert pkg in names


def test_no_module_imports_tensorflow_at_import_time() -> None:
    """TensorFlow loads lazily, inside functions: the window must appear before TF is up."""
    code = (
        "import importlib, sys\n"
        f"names = {_all_modules()!r}\n"
        "for n in names:\n"
        "    importlib.import_module(n)\n"
        "bad = sorted(m for m in ('tensorflow', 'keras', 'tf_keras_vis') if m in sys.modules)\n"
        "print('LOADED:' + ','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert "LOADED:\n" in out.stdout or out.stdout.strip() == "LOADED:", out.stdout


def test_core_never_imports_qt() -> None:
    """The import-linter contract in pyproject.toml: only cxr_viewer.ui may import Qt."""
    lint = REPO_ROOT / ".venv" / "bin" / "lint-imports"
    exe = str(lint) if lint.exists() else "lint-imports"
    out = subprocess.run([exe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 1 kept, 0 broken" in out.stdout, out.stdout
