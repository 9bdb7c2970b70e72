"""Every `--help` works: the first command a new user types. Subcommands are discovered from the parser, scripts
from `training_scripts/`, so new ones are covered without editing this file."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actionclip.cli import build_parser, main

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO_ROOT / "training_scripts").glob("*.py"))


def subcommands() -> list[str]:
    parser = build_parser()
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return sorted(name for action in actions for name in action.choices)


def run_python(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=env)


def test_the_parser_has_the_documented_subcommands():
    assert {"classify", "convert", "info", "eval", "card", "demo"} <= set(subcommands())


@pytest.mark.parametrize("command", subcommands())
def test_subcommand_help_exits_0(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: actionclip " + command in capsys.readouterr().out


def test_actionclip_help_exits_0_in_a_process():
    result = run_python("-m", "actionclip.cli", "--help")
    assert result.returncode == 0, result.stderr
    assert "COMMAND" in result.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_training_script_help_exits_0(script):
    result = run_python(str(script), "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
