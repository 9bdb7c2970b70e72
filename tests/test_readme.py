"""The README's commands, run as written: the quick start's set-up, the extras' installation from the clone and the
WiSE-FT example on the demo's output (a tiny demo run stands in for `make demo`'s)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
VENV_BIN = Path(sys.executable).parent


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, re.S)


def run_bash(script: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-e", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ)
    )


@pytest.fixture
def beside_the_readme(tiny_demo, tmp_path):
    """A folder laid out like the clone after `make demo`: `.venv` (the interpreter running the tests) and
    `demo_output/`."""
    if not (VENV_BIN / "activate").is_file():
        pytest.skip(f"the tests do not run in a virtual environment ({sys.prefix}): there is no .venv to activate")
    os.symlink(Path(sys.prefix), tmp_path / ".venv")
    os.symlink(tiny_demo[0] / "demo_output", tmp_path / "demo_output")
    return tmp_path


def test_quick_start_after_make_puts_the_actionclip_command_on_the_path(beside_the_readme):
    """The first block, after its `make` lines (which made `.venv` and `demo_output/`), runs in a fresh shell whose
    PATH does not hold the virtual environment."""
    lines = [line for line in bash_blocks()[0].splitlines() if line.strip() and not line.startswith("make ")]
    assert any(line.split()[0] == "actionclip" for line in lines), "the quick start shows no actionclip command"
    env_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != VENV_BIN)
    result = run_bash(f"export PATH={env_path}\n" + "\n".join(lines), beside_the_readme)
    assert result.returncode == 0, result.stderr
    assert "Not for real videos" in result.stdout


def test_extras_install_from_the_clone_as_written(tmp_path):
    """Every `pip install` in the README, run where the README says (the clone's root; here a copy of what pip
    reads from it), offline: the package must come from the clone and provide the extras asked for."""
    pytest.importorskip("setuptools", reason="offline, pip builds the clone's metadata with the installed setuptools")
    commands = re.findall(r"(?m)^\s*(pip install [^\n#`]+?)\s*(?:#.*)?$", README)
    commands += re.findall(r"`(pip install [^`]+)`", README)
    assert {"app", "onnx"} <= {extra for c in commands for extra in re.findall(r"\[(\w+)\]", c)}, commands
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    shutil.copytree(REPO_ROOT / "actionclip", tmp_path / "actionclip", ignore=shutil.ignore_patterns("__pycache__"))
    for command in dict.fromkeys(" ".join(command.split()) for command in commands):
        report = tmp_path / "report.json"
        # `python -m pip`: the `pip` of the activated .venv; --ignore-installed: not the copy already installed here.
        offline = "--dry-run --no-index --no-deps --ignore-installed --no-build-isolation --quiet --report"
        result = run_bash(f"{sys.executable} -m {command} {offline} {report}", tmp_path, timeout=300)
        assert result.returncode == 0, f"{command}: {result.stderr}"
        (installed,) = json.loads(report.read_text())["install"]
        assert installed["metadata"]["name"] == "actionclip", command
        assert set(installed["requested_extras"]) <= set(installed["metadata"]["provides_extra"]), command


def test_wise_ft_on_the_demo_runs_as_written(beside_the_readme):
    (block,) = [block for block in bash_blocks() if "actionclip wise-ft demo_output/" in block]
    result = run_bash(f"source .venv/bin/activate\n{block}", beside_the_readme)
    assert result.returncode == 0, result.stderr
    words = shlex.split(block, comments=True)
    zero_shot, _, out = words[words.index("wise-ft") + 1 : words.index("wise-ft") + 4]
    sweep = json.loads((beside_the_readme / out / "wise_ft.json").read_text())
    assert sweep["zero_shot_model"] == zero_shot == "demo_output/model_transf_initial"
    assert [row["alpha"] for row in sweep["table"]] == pytest.approx([i / 10 for i in range(11)])
