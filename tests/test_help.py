"""Every `--help` works: the first command a new user types. Subcommands are discovered from the parser, scripts
from `training_scripts/`, so new ones are covered without editing this file."""

import argparse
import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from actionclip.commands import build_parser, main

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
    result = run_python("-m", "actionclip", "--help")
    assert result.returncode == 0, result.stderr
    assert "COMMAND" in result.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_training_script_help_exits_0(script):
    result = run_python(str(script), "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_training_script_uses_only_public_names_of_the_package(script):
    """The scripts are programs built on the package, as a user's would be: no ``_private`` module or name."""
    private = []
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("actionclip"):
            names = [*node.module.split("."), *(alias.name for alias in node.names)]
        elif isinstance(node, ast.Import):
            names = [
                part for alias in node.names if alias.name.startswith("actionclip") for part in alias.name.split(".")
            ]
        else:
            continue
        private += [name for name in names if name.startswith("_")]
    assert not private, f"{script.name} imports private names: {private}"


def subparser(command: str) -> argparse.ArgumentParser:
    actions = [action for action in build_parser()._actions if isinstance(action, argparse._SubParsersAction)]
    return actions[0].choices[command]


def _long_options(parser: argparse.ArgumentParser) -> list[tuple[argparse.Action, str]]:
    return [
        (action, option)
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and "-" in option[2:]
    ]


def _a_value(action: argparse.Action) -> list[str]:
    """Command-line words that ``action`` takes: none for a flag, its last choice, else a value its type accepts."""
    if action.nargs == 0:
        return []
    if action.choices:
        return [str(list(action.choices)[-1])]
    for candidate in ("3", "0.5", "2s", "labels.txt"):
        try:
            (action.type or str)(candidate)
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
        return [candidate]
    raise AssertionError(f"no test value for {action.option_strings}")


@pytest.mark.parametrize("command", subcommands())
def test_every_multi_word_option_takes_both_spellings_alike(command):
    parser = subparser(command)
    # One option at a time: what is required otherwise is given a placeholder or waived.
    for group in parser._mutually_exclusive_groups:
        group.required = False
    positionals = []
    for action in parser._actions:
        if action.option_strings:
            action.required = False
        elif action.nargs != argparse.REMAINDER:
            positionals.append("placeholder")
    for action, option in _long_options(parser):
        value = _a_value(action)
        hyphens = vars(parser.parse_args([*positionals, option, *value]))
        underscores = vars(parser.parse_args([*positionals, "--" + option[2:].replace("-", "_"), *value]))
        assert underscores == hyphens, option


@pytest.mark.parametrize("command", sorted(set(subcommands()) - {"train"}))  # train's help is transformers'
def test_help_shows_one_spelling_of_each_option(command):
    text = subparser(command).format_help()
    assert not re.findall(r"--[a-z0-9]+_[a-z0-9_]+", text)
    for action, option in _long_options(subparser(command)):
        assert "--" + option[2:].replace("-", "_") not in action.option_strings


def test_no_option_offers_a_single_choice():
    for command in subcommands():
        for action in subparser(command)._actions:
            assert action.choices is None or len(action.choices) > 1, (command, action.option_strings)
