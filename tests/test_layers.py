"""The package's layers (docs/ARCHITECTURE.md, "Layers"): no module imports a higher layer, nothing imports the
deprecated aliases, and the modules import each other without cycles at module level.

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


def resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package modules an import statement of ``module`` names (a name of a package may be a submodule)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")
            if MODULES[module].name != "__init__.py":
                base = base[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        targets = [prefix] + [f"{prefix}.{alias.name}" for alias in node.names]
    found = []
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target.startswith("actionclip"):
            found.append(target)
    return found


def imports(module: str, top_level_only: bool = False) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.If) and top_level_only:  # `if TYPE_CHECKING:` and `if __name__ == "__main__":`
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(resolve(module, node))
    found.discard(module)
    return found - {"actionclip"}  # the package itself: its __init__ resolves names lazily


def test_the_layer_table_is_read():
    layers = [layer for layer, _ in LAYER_ORDER]
    assert {"core", "data", "evaluation", "commands", "aliases"} <= set(layers)
    assert all(ALLOWED[layer] <= set(layers) for layer in layers)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_higher_layer_or_a_deprecated_alias(module):
    layer = layer_of(module)
    for target in sorted(imports(module)):
        target_layer = layer_of(target)
        assert target_layer in ALLOWED[layer], f"{module} ({layer}) imports {target} ({target_layer})"
        if layer != "aliases":
            assert target_layer != "aliases", f"{module} imports the deprecated alias {target}"


def test_the_model_processor_and_pipeline_files_import_only_the_core():
    # What `save_pretrained` copies next to the weights must import only flat sibling modules.
    remote = [
        "actionclip.configuration_actionclip",
        "actionclip.modeling_actionclip",
        "actionclip.processing_actionclip",
        "actionclip.video_processing_actionclip",
        "actionclip.pipeline_zero_shot_video_classification",
    ]
    seen, stack = set(), list(remote)
    while stack:
        module = stack.pop()
        if module in seen:
            continue
        seen.add(module)
        assert layer_of(module) == "core", module
        stack.extend(imports(module))


def test_no_import_cycle_at_module_level():
    graph = {module: imports(module, top_level_only=True) for module in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target] if target in path else [module, target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
