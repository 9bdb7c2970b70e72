"""Old import paths kept for one release (issue 15's layout): each warns with a `DeprecationWarning` naming the new
home and gives the very objects the new modules define."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# old module -> (a name it held, the module that defines it now)
OLD_MODULES = {
    "actionclip.protocols": ("load_label_names", "actionclip.data.labels"),
    "actionclip.evaluate_protocols": ("ProtocolEvaluator", "actionclip.evaluation.runner"),
    "actionclip.demo": ("run_demo", "actionclip.commands.demo"),
    "actionclip.metrics": ("make_compute_metrics", "actionclip.evaluation.metrics"),
    "actionclip.model_card": ("write_model_card", "actionclip.evaluation.model_card"),
    "actionclip.published_splits": ("published_few_shot", "actionclip.evaluation.published_splits"),
    "actionclip.weight_ensembling": ("wise_ft", "actionclip.evaluation.weight_ensembling"),
    "actionclip.command_errors": ("exit_on_bad_input", "actionclip.commands._exit"),
    "actionclip.app": ("AppLimits", "actionclip.commands.app"),
    "actionclip.space": ("write_space", "actionclip.commands.space"),
}
# old attribute of a module that still exists -> the module that defines it now
OLD_ATTRIBUTES = {
    ("actionclip.evaluation", "write_evaluation_report"): "actionclip.evaluation.reports",
    ("actionclip.cli", "load_pipeline"): "actionclip.commands._inputs",
    ("actionclip.cli", "CommandLineError"): "actionclip.errors",
    ("actionclip", "VideoDecodeError"): "actionclip.errors",
}

SCRIPT = """
import importlib, json, sys, warnings
old_modules, old_attributes = json.loads(sys.argv[1]), json.loads(sys.argv[2])
results = {}
for old, (name, new) in old_modules.items():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
        value = getattr(module, name)
    same = value is getattr(importlib.import_module(new), name)
    results[old] = [same, [str(w.message) for w in caught if w.category is DeprecationWarning]]
for key, new in old_attributes:
    old, name = key
    module = importlib.import_module(old)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = getattr(module, name)
    same = value is getattr(importlib.import_module(new), name)
    results[old + "." + name] = [same, [str(w.message) for w in caught if w.category is DeprecationWarning]]
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def results():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    attributes = [[list(key), new] for key, new in OLD_ATTRIBUTES.items()]
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(OLD_MODULES), json.dumps(attributes)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("old", sorted(OLD_MODULES))
def test_an_old_module_path_warns_and_forwards_to_the_new_module(results, old):
    same, messages = results[old]
    assert same
    new_home = OLD_MODULES[old][1]
    assert any(old in message and new_home in message and "deprecated" in message for message in messages), messages


@pytest.mark.parametrize("old, name", sorted(OLD_ATTRIBUTES))
def test_an_old_attribute_warns_and_is_the_new_object(results, old, name):
    same, messages = results[f"{old}.{name}"]
    assert same
    assert any(
        f"{old}.{name} is deprecated" in message and OLD_ATTRIBUTES[old, name] in message for message in messages
    )


def test_new_paths_do_not_warn():
    script = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "import actionclip, actionclip.evaluation.reports, actionclip.evaluation.runner, actionclip.commands\n"
        "import actionclip.data.labels, actionclip.commands.demo, actionclip.cli\n"
        "from actionclip.commands import build_parser; build_parser()\n"
        "print(actionclip.ActionCLIPConfig.__name__)\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])))
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "ActionCLIPConfig"
