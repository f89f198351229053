"""The README's settings table lists every setting of the manifest (and nothing else)."""

from __future__ import annotations

import re
from pathlib import Path

from relay._manifest import MANIFEST

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_once() -> None:
    section = README.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Za-z_]+)` \|", section, flags=re.M)
    assert sorted(rows) == sorted(s.name for s in MANIFEST)


def test_the_two_commands_are_shown() -> None:
    assert "make dev" in README and "make test" in README
