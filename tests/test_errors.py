"""Typed errors live in one dependency-free module and stay importable where they were first defined."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import actionclip
from actionclip import errors

# Where each error was defined before errors.py held them all; code that imports them from there keeps working.
FIRST_HOMES = {
    "actionclip.video_io": ["VideoWriteError", "FrameIndexError", "PartialDecodeWarning"],
    "actionclip.sampling": ["SamplingError"],
    "actionclip.video_processing_actionclip": ["VideoProcessingError"],
    "actionclip.pipeline_zero_shot_video_classification": ["PipelineArgumentError", "MissingProcessorError"],
    "actionclip.data.synthetic": ["InvalidSyntheticConfigError"],
    "actionclip.evaluation.protocols": ["InvalidProtocolError"],
    "actionclip.data.splits": ["InvalidSplitFileError"],
    "actionclip.data.datasets": ["DatasetFormatError"],
}


@pytest.mark.parametrize("module_name", sorted(FIRST_HOMES))
def test_errors_are_the_same_class_from_errors_and_their_first_module(module_name):
    module = importlib.import_module(module_name)
    for name in FIRST_HOMES[module_name]:
        assert getattr(module, name) is getattr(errors, name), name


def error_classes() -> set[str]:
    return {
        name for name, value in vars(errors).items() if isinstance(value, type) and value.__module__ == errors.__name__
    }


def test_every_error_class_lives_in_errors_and_subclasses_actionclip_error():
    for name in error_classes() - {"PartialDecodeWarning"}:
        assert issubclass(getattr(errors, name), errors.ActionCLIPError), name
    # No module of the package defines an error class of its own (issue 15: every error class in errors.py).
    package = Path(actionclip.__file__).parent
    for path in package.rglob("*.py"):
        if path.name != "errors.py":
            text = path.read_text(encoding="utf-8")
            assert not any(
                line.startswith("class ") and ("Error(" in line or "Warning(" in line) for line in text.splitlines()
            ), path


def test_errors_are_only_under_actionclip_errors():
    assert not error_classes() & set(actionclip.__all__)  # the top level exports what users build
    for name in ("ActionCLIPError", "VideoDecodeError", "InvalidLabelsError", "OnnxModelError", "CommandLineError"):
        assert not hasattr(actionclip, name), name


def test_moved_errors_keep_their_bases_and_constructors():
    assert issubclass(errors.FrameIndexError, errors.VideoDecodeError) and issubclass(
        errors.FrameIndexError, IndexError
    )
    assert issubclass(errors.MissingProcessorError, FileNotFoundError)
    assert issubclass(errors.InvalidSplitFileError, errors.InvalidProtocolError)
    assert issubclass(errors.PartialDecodeWarning, UserWarning)
    error = errors.InvalidSplitFileError("splits/test.txt", 7, "unknown class 'x'")
    assert (error.path, error.line_number, error.reason) == ("splits/test.txt", 7, "unknown class 'x'")
    assert str(error) == "bad split file 'splits/test.txt', line 7: unknown class 'x'"
    error = errors.FrameIndexError(b"abc", "frame index 9 is out of range")
    assert str(error) == "cannot decode video <3 bytes>: frame index 9 is out of range"


def test_errors_module_loads_on_its_own_where_the_package_is_absent(tmp_path):
    # Remote code copies errors.py next to the weights: it must not need any other module of the package.
    source = Path(errors.__file__).read_text()
    (tmp_path / "errors.py").write_text(source)
    script = (
        "import sys; sys.modules['actionclip'] = None\n"
        "import errors\n"
        "assert issubclass(errors.PipelineArgumentError, errors.ActionCLIPError)\n"
        "print(sorted(m for m in sys.modules if m.startswith('actionclip')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['actionclip']"  # only the blocker put there above
