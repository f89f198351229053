"""The infra venv and one shared run of scripts/infra_check.py.

checkov and pycep-parser live in `.venv-infra` (their pins conflict with the app's venv).
It is built only by `make infra-venv`; a test session runs that target when the venv's
stamp is missing or older than requirements-infra.txt, and uses what it built.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
INFRA_VENV = ROOT / ".venv-infra"
STAMP = INFRA_VENV / ".installed"
SCRIPT = ROOT / "scripts" / "infra_check.py"

RunInfra = Callable[..., "subprocess.CompletedProcess[str]"]


def _stale() -> bool:
    if not STAMP.exists():
        return True
    return STAMP.stat().st_mtime < (ROOT / "requirements-infra.txt").stat().st_mtime


@pytest.fixture(scope="session")
def infra_python() -> Path:
    if _stale():
        make = shutil.which("make")
        assert make, "make is needed to build .venv-infra (make infra-venv)"
        proc = subprocess.run(
            [make, "-s", "infra-venv"], cwd=ROOT, capture_output=True, text=True, timeout=900
        )
        assert proc.returncode == 0, f"make infra-venv failed:\n{proc.stdout}\n{proc.stderr}"
    python = INFRA_VENV / "bin" / "python"
    assert python.exists(), "make infra-venv did not create .venv-infra/bin/python"
    return python


@pytest.fixture(scope="session")
def run_infra(infra_python: Path) -> RunInfra:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(infra_python), str(SCRIPT), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    return run


@pytest.fixture(scope="session")
def infra_report(run_infra: RunInfra) -> dict[str, Any]:
    """`infra_check.py all` on the real infra/, once per session."""
    proc = run_infra("all")
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout)
    return report


@pytest.fixture
def scratch_infra(tmp_path: Path) -> Path:
    """An empty infra directory carrying the real custom checks."""
    target = tmp_path / "infra"
    shutil.copytree(
        INFRA / "checks", target / "checks", ignore=shutil.ignore_patterns("__pycache__")
    )
    return target
