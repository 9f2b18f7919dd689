"""``mlm --help`` and every command's help: flags are listed without a value placeholder."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from market_liquidity_monitor.cli import app

COMMANDS = [
    [],
    ["up"],
    ["serve"],
    ["watch"],
    ["ask"],
    ["eval"],
    ["import"],
    ["export"],
    ["record"],
    ["replay"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "mlm")
def test_help_shows_no_bool_placeholder_for_flags(command):
    res = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"}, terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "<bool>" not in res.output, res.output
    assert "--help" in res.output
    if command == ["up"]:
        assert "--no-ui" in res.output and "--verbose" in res.output
        assert "<int>" in res.output  # options that take a value keep their type
