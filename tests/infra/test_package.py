"""What `func publish` / azd packages: `.funcignore` and requirements.txt fit the app.

- Every top-level entry of the repository is either part of the deployed app or excluded
  by `.funcignore`, so a new folder has to be decided on; web/vendor (served) is kept.
- requirements.txt pins exactly the distributions the deployed code imports directly
  (Azure's remote build installs it without constraints.txt, so a transitive version of
  something we import would float), and what it pins brings in nothing else we import.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata as md
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

DEPLOYED = {"function_app.py", "host.json", "requirements.txt", "api", "activities",
            "orchestrations", "relay", "web", "README.md", ".funcignore"}  # fmt: skip
NEVER = {"local", "tests", "bench", "docs", "infra", "scripts", "node_modules", ".venv",
         ".venv-infra", ".dev", "local.settings.json", "requirements-dev.txt"}  # fmt: skip
APP_CODE = ("function_app.py", "api", "activities", "orchestrations", "relay")


def _patterns() -> list[str]:
    lines = (ROOT / ".funcignore").read_text().splitlines()
    return [ln.strip().rstrip("/") for ln in lines if ln.strip() and not ln.startswith("#")]


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pat) for pat in _patterns())


def test_every_top_level_entry_is_deployed_or_ignored() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
    tops = {path.split("/", 1)[0] for path in tracked} | NEVER
    undecided = sorted(t for t in tops if t not in DEPLOYED and not _excluded(t))
    assert undecided == [], "deploy or add to .funcignore"
    assert not any(_excluded(name) for name in DEPLOYED)
    assert all(_excluded(name) for name in NEVER)
    assert not any(_excluded(part) for part in ("web/vendor", "vendor", "signalr.min.js"))


def _imports() -> set[str]:
    files = [ROOT / "function_app.py"]
    files += [p for d in APP_CODE[1:] for p in (ROOT / d).rglob("*.py")]
    names: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    local = {Path(n).stem for n in APP_CODE}
    return {n for n in names if n.split(".")[0] not in local | set(sys.stdlib_module_names)}


def _dist_of(module: str, by_file: dict[Path, str]) -> str:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, module
    return by_file[Path(spec.origin).resolve()]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_requirements_pin_exactly_what_the_app_imports() -> None:
    pinned = {_norm(line.split("==")[0]) for line in (ROOT / "requirements.txt").read_text()
              .splitlines() if "==" in line and not line.startswith("#")}  # fmt: skip
    by_file: dict[Path, str] = {}
    for dist in md.distributions():
        for f in dist.files or []:
            if f.suffix == ".py" or f.name.endswith(".so"):
                by_file[Path(str(dist.locate_file(f))).resolve()] = _norm(dist.metadata["Name"])
    imported = {_dist_of(m, by_file) for m in _imports()}
    assert imported - pinned == set(), "imported but not pinned in requirements.txt"
    assert pinned - imported == set(), "pinned in requirements.txt but never imported"
