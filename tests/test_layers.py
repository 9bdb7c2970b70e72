"""The package's layers (docs/ARCHITECTURE.md, "Layers"): every folder is a layer, no module imports a higher one,
the modules import each other without cycles, no module takes another's private names, and the files that
`save_pretrained` copies as remote code are exactly the root modules that are not package glue.

Imports are read from the source (`ast`), inside functions too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "actionclip"
ARCHITECTURE = REPO_ROOT / "docs" / "ARCHITECTURE.md"
# The files `save_pretrained` writes beside the weights (with `auto_map` entries), whose code transformers copies
# together with every module they import.
SAVED_FILES = (
    "configuration_actionclip.py",
    "modeling_actionclip.py",
    "processing_actionclip.py",
    "video_processing_actionclip.py",
    "pipeline_zero_shot_video_classification.py",
)
GLUE = {"package", "entry"}  # the layers of the package glue: the root modules that do not travel


def read_layer_table() -> tuple[list[tuple[str, list[str]]], dict[str, set[str]]]:
    """``([(layer, [path patterns])] in table order, {layer: layers it may import})`` from ARCHITECTURE.md."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    order, allowed = [], {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        layer = cells[0].strip("`")
        order.append((layer, re.findall(r"`([^`]+)`", cells[1])))
        allowed[layer] = set(re.findall(r"`([^`]+)`", cells[2])) | {layer}
    return order, allowed


LAYER_ORDER, ALLOWED = read_layer_table()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
TREES = {module: ast.parse(path.read_text(encoding="utf-8")) for module, path in MODULES.items()}


def layer_of(module: str) -> str:
    """The first row of the table whose pattern matches the module's path under ``actionclip/``."""
    relative = str(MODULES[module].relative_to(PACKAGE))
    for layer, patterns in LAYER_ORDER:
        for pattern in patterns:
            if pattern.endswith("/") and relative.startswith(pattern):
                return layer
            if pattern == relative or (pattern == "*.py" and "/" not in relative):
                return layer
    raise AssertionError(f"{relative} is in no layer of docs/ARCHITECTURE.md")


def import_targets(module: str, node: ast.ImportFrom | ast.Import) -> list[tuple[str, str | None]]:
    """``[(package module, name taken from it or None)]`` for one import statement of ``module``."""
    if isinstance(node, ast.Import):
        candidates = [(alias.name, None) for alias in node.names]
    else:
        if node.level:
            base = module.split(".")
            if MODULES[module].name != "__init__.py":
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        candidates = []
        for alias in node.names:
            submodule = f"{prefix}.{alias.name}"
            candidates.append((submodule, None) if submodule in MODULES else (prefix, alias.name))
    found = []
    for target, name in candidates:
        while target and target not in MODULES:
            target, name = target.rpartition(".")[0], None
        if target.startswith("actionclip"):
            found.append((target, name))
    return found


def imports(module: str) -> set[str]:
    found = set()
    for node in ast.walk(TREES[module]):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(target for target, _ in import_targets(module, node))
    found.discard(module)
    return found - {"actionclip"}  # the package itself: its __init__ resolves names lazily


def test_the_layer_table_is_read_and_every_folder_is_a_layer():
    layers = [layer for layer, _ in LAYER_ORDER]
    assert {"core", "data", "onnx", "apps", "evaluation", "training", "hub", "commands", *GLUE} <= set(layers)
    assert all(ALLOWED[layer] <= set(layers) for layer in layers)
    folders = {path.parent.relative_to(PACKAGE).parts[0] for path in PACKAGE.rglob("*.py") if path.parent != PACKAGE}
    for folder in folders:
        rows = [layer for layer, patterns in LAYER_ORDER if f"{folder}/" in patterns]
        assert len(rows) == 1, f"actionclip/{folder}/ must be a layer of its own in the table, is in {rows}"
        assert rows[0] not in {"core", *GLUE}, folder


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer(module):
    layer = layer_of(module)
    for target in sorted(imports(module)):
        target_layer = layer_of(target)
        assert target_layer in ALLOWED[layer], f"{module} ({layer}) imports {target} ({target_layer})"


def test_nothing_imports_the_commands_but_the_entry_points():
    importers = {module for module in MODULES if layer_of(module) != "commands" and any(
        layer_of(target) == "commands" for target in imports(module)
    )}  # fmt: skip
    assert importers <= {"actionclip.__main__"}, importers
    assert layer_of("actionclip.__main__") == "entry"


def test_no_import_cycle_counting_imports_inside_functions():
    graph = {module: imports(module) for module in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def _defined_private_names(tree: ast.AST) -> set[str]:
    """Private names a module defines: functions, classes, methods, module and instance attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


PRIVATE_NAMES = {module: _defined_private_names(tree) for module, tree in TREES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_takes_another_modules_private_names(module):
    own = PRIVATE_NAMES[module]
    elsewhere = set().union(*(names for other, names in PRIVATE_NAMES.items() if other != module)) - own
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.ImportFrom):
            for target, name in import_targets(module, node):
                if target != module and name and name.startswith("_") and not name.startswith("__"):
                    raise AssertionError(f"{module} imports the private {name} of {target}")
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            continue
        if isinstance(node, ast.Attribute) and node.attr in elsewhere:
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id in {"self", "cls"}):
                raise AssertionError(
                    f"{module} line {node.lineno} uses {ast.unparse(node)}: a private member defined in another "
                    "module of the package"
                )


def test_remote_code_copies_exactly_the_root_modules_that_are_not_glue():
    # transformers copies a saved file and every module it names in a `from .x import` line, recursively (flat
    # siblings only): that set must be what we mean to travel, and must not grow with every application.
    from transformers.dynamic_module_utils import get_relative_import_files

    copied = set(SAVED_FILES)
    for name in SAVED_FILES:
        copied.update(Path(path).name for path in get_relative_import_files(str(PACKAGE / name)))
    root = {path.name for path in PACKAGE.glob("*.py")}
    glue = {name for name in root if layer_of(module_name(PACKAGE / name)) in GLUE}
    assert copied == root - glue, (sorted(copied - (root - glue)), sorted((root - glue) - copied))
    for name in sorted(copied):  # what travels imports only what travels: no folder of the package
        for target in imports(module_name(PACKAGE / name)):
            assert layer_of(target) == "core", f"{name} imports {target}"


def test_the_package_root_stays_small():
    root = sorted(path.name for path in PACKAGE.glob("*.py"))
    # 31: the image-text families (backbones.py) joined the model files that travel with a saved model.
    assert len(root) <= 31, root
