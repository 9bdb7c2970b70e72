"""Make transformers' own common test machinery importable for `test_modeling_actionclip_common.py`.

`make test-transformers` downloads the source archive of the installed transformers from PyPI and extracts it under
`.cache/transformers/` (see the Makefile); its `tests/` holds `test_modeling_common.py` and
`test_configuration_common.py`. Nothing of it is copied into this repository. Without the archive the tests here
skip, saying how to get it (`make test` does not collect this folder).

The source archive lacks three helper packages those two files import (`tests/exporters/`, `tests/generation/`,
`tests/utils/`): stand-ins written here provide the names they import. `ExportTesterMixin` and
`GenerationTesterMixin` become empty mixins, so transformers' torch.export and `generate` tests are not collected
(ActionCLIP does not generate); `config_common_kwargs` is our own set of common configuration arguments.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def transformers_source_root() -> Path:
    """Where the extracted source archive of the installed transformers lies (`TRANSFORMERS_SOURCE_DIR` overrides)."""
    import transformers

    default = REPO_ROOT / ".cache" / "transformers" / f"transformers-{transformers.__version__}"
    return Path(os.environ.get("TRANSFORMERS_SOURCE_DIR", default))


def _install_stand_ins() -> None:
    """Modules the archive's common tests import but the archive does not ship."""

    class ExportTesterMixin:
        """Stand-in: transformers' torch.export tests are not in the source archive."""

    class GenerationTesterMixin:
        """Stand-in: transformers' generation tests are not in the source archive (ActionCLIP does not generate)."""

    config_common_kwargs = {
        "return_dict": False,
        "output_hidden_states": True,
        "output_attentions": True,
        "dtype": "float16",
        "chunk_size_feed_forward": 5,
        "architectures": ["ActionCLIPModel"],
        "id2label": {0: "tai chi", 1: "abseiling"},
        "label2id": {"tai chi": 0, "abseiling": 1},
    }
    for name, attributes in {
        "tests.exporters": {},
        "tests.exporters.test_export": {"ExportTesterMixin": ExportTesterMixin},
        "tests.generation": {},
        "tests.generation.test_utils": {"GenerationTesterMixin": GenerationTesterMixin},
        "tests.utils": {},
        "tests.utils.test_configuration_utils": {"config_common_kwargs": config_common_kwargs},
    }.items():
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__dict__.update(attributes)
            if "." not in name.removeprefix("tests."):
                module.__path__ = []  # a package, so that its submodule resolves
            sys.modules[name] = module


SOURCE_ROOT = transformers_source_root()
SOURCE_AVAILABLE = (SOURCE_ROOT / "tests" / "test_modeling_common.py").is_file()
if SOURCE_AVAILABLE:
    # The archive's tests/ lacks the repository's empty __init__.py, which test_configuration_common.py loads; it
    # also makes `tests` the archive's regular package (our own tests/ has none and is never imported as `tests`).
    (SOURCE_ROOT / "tests" / "__init__.py").touch()
    sys.path.insert(0, str(SOURCE_ROOT))
    _install_stand_ins()


def pytest_configure(config) -> None:
    # Marks transformers' own pytest configuration registers.
    for mark in (
        "accelerate_tests",
        "flash_attn_test",
        "flash_attn_3_test",
        "flash_attn_4_test",
        "torch_compile_test",
    ):
        config.addinivalue_line("markers", f"{mark}: transformers' mark")
