"""Offline checks of infra/: every Bicep file parses, and checkov's Bicep scan passes.

Runs with the infra venv (`.venv-infra/bin/python scripts/infra_check.py`), which holds
checkov and, in `.venv-infra/pycep`, pycep-parser 0.7.x (checkov's own pin, 0.5.1, cannot
parse `extension`). Neither proves that the templates compile or deploy: there is no
offline Bicep compiler. See docs/deploy.md.

    infra_check.py parse [--infra DIR]     JSON of every parsed file and the app settings
    infra_check.py checkov [--infra DIR]   checkov scan; fails on any failure or parse error
    infra_check.py all [--infra DIR]       both, in one JSON document (the default)

Exit status: 0 when everything passes, 1 on a finding (printed), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["app_settings", "main", "parse_all", "run_checkov"]

ROOT = Path(__file__).resolve().parent.parent
PYCEP_DIR = Path(sys.prefix) / "pycep"  # pycep-parser 0.7.x, installed with --target
if PYCEP_DIR.is_dir() and str(PYCEP_DIR) not in sys.path:
    sys.path.insert(0, str(PYCEP_DIR))

# A skip must say why; "checkov:skip=CKV_X" alone, or a word or two, is not a reason.
_MIN_REASON = 20
_LITERAL = re.compile(r"^'([^'$]*)'$")  # a plain single-quoted string: no interpolation


class InfraCheckError(Exception):
    """A finding: a file that does not parse, a failed or unjustified check."""


def _bicep_files(infra: Path) -> list[Path]:
    return sorted(p for p in infra.rglob("*.bicep") if p.is_file())


def parse_all(infra: Path) -> dict[str, dict[str, Any]]:
    """Parse every .bicep file under `infra`; raise naming each one that does not parse."""
    from pycep import BicepParser  # type: ignore[import-not-found]

    parsed: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    files = _bicep_files(infra)
    if not files:
        raise InfraCheckError(f"no .bicep files under {infra}")
    for path in files:
        rel = path.relative_to(infra).as_posix()
        try:
            result = BicepParser().parse(text=path.read_text(encoding="utf-8"))
        except Exception as exc:  # lark raises several unrelated types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(f"{rel}: {first}")
            continue
        if not isinstance(result, dict):
            problems.append(f"{rel}: parser returned {type(result).__name__}")
            continue
        parsed[rel] = result
    if problems:
        raise InfraCheckError("Bicep parse errors:\n  " + "\n  ".join(problems))
    return parsed


def app_settings(infra: Path, parsed: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The function app's settings: name -> {"literal": value or None, "expr": source text}.

    Keys come from pycep; whether a value is a literal comes from the source line, because
    pycep renders a reference (`identityClientId`) and a literal ('identityClientId') alike.
    """
    found: dict[str, dict[str, Any]] = {}
    for rel, tree in parsed.items():
        for resource in (tree.get("resources") or {}).values():
            config = resource.get("config") or {}
            if resource.get("type") != "Microsoft.Web/sites/config":
                continue
            if config.get("name") != "appsettings":
                continue
            source = (infra / rel).read_text(encoding="utf-8")
            for name in config.get("properties") or {}:
                line = re.search(rf"^\s*{re.escape(name)}:\s*(.+?)\s*$", source, re.MULTILINE)
                expr = line.group(1) if line else None
                literal = _LITERAL.match(expr) if expr else None
                found[name] = {"literal": literal.group(1) if literal else None, "expr": expr}
    if not found:
        raise InfraCheckError("no Microsoft.Web/sites/config 'appsettings' resource in infra/")
    return found


def run_checkov(infra: Path) -> dict[str, Any]:
    """Run checkov's Bicep scan with the custom checks; raise on anything but a clean pass."""
    checkov = Path(sys.prefix) / "bin" / "checkov"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PYCEP_DIR), env.get("PYTHONPATH")) if p)
    cmd = [
        str(checkov),
        "-d",
        str(infra),
        "--framework",
        "bicep",
        "--skip-download",  # no network: without it checkov tries to fetch policies
        "-o",
        "json",
        "--external-checks-dir",
        str(infra / "checks"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError as exc:
        tail = proc.stderr.strip()[-2000:]
        raise InfraCheckError(f"checkov gave no JSON (exit {proc.returncode}): {tail}") from exc
    reports = report if isinstance(report, list) else [report]
    bicep = [r for r in reports if isinstance(r, dict) and r.get("check_type") == "bicep"]
    if not bicep:
        raise InfraCheckError("checkov report has no bicep section (no files scanned?)")
    problems: list[str] = []
    summary = bicep[0].get("summary", {})
    results = bicep[0].get("results", {})
    # checkov exits 0 on a file it cannot parse: the count is the only signal.
    if summary.get("parsing_errors", 0):
        problems.append(f"checkov could not parse: {results.get('parsing_errors')}")
    for failed in results.get("failed_checks", []):
        where = f"{failed.get('file_path')} {failed.get('resource')}"
        problems.append(f"{failed.get('check_id')} failed: {where}: {failed.get('check_name')}")
    for skipped in results.get("skipped_checks", []):
        reason = (skipped.get("check_result") or {}).get("suppress_comment") or ""
        if len(reason.strip()) < _MIN_REASON:
            where = f"{skipped.get('file_path')} {skipped.get('resource')}"
            problems.append(f"{skipped.get('check_id')} skipped without a reason: {where}")
    if problems:
        raise InfraCheckError("checkov findings:\n  " + "\n  ".join(problems))
    return {
        "summary": summary,
        "passed": sorted({c["check_id"] for c in results.get("passed_checks", [])}),
        "skipped": [
            {
                "check_id": s.get("check_id"),
                "resource": s.get("resource"),
                "reason": (s.get("check_result") or {}).get("suppress_comment"),
            }
            for s in results.get("skipped_checks", [])
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="all", choices=("parse", "checkov", "all"))
    parser.add_argument("--infra", type=Path, default=ROOT / "infra")
    args = parser.parse_args(argv)
    infra: Path = args.infra.resolve()
    out: dict[str, Any] = {}
    try:
        if args.command in ("parse", "all"):
            parsed = parse_all(infra)
            out["files"] = sorted(parsed)
            out["app_settings"] = app_settings(infra, parsed)
            out["parsed"] = parsed
        if args.command in ("checkov", "all"):
            out["checkov"] = run_checkov(infra)
    except InfraCheckError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
