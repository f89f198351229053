"""`python -m bench load ...` reaches the load benchmark with its own options."""

from __future__ import annotations

import pytest

from bench.__main__ import main


def test_load_is_registered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["load", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m bench load" in out
    assert "--soak-seconds" in out


def test_load_options_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["load", "--levels", "0"])
    assert stop.value.code == 2
    assert "between 1 and 1000" in capsys.readouterr().err
