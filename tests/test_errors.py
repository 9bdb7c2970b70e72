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
    "actionclip.protocols": ["InvalidProtocolError", "InvalidSplitFileError"],
    "actionclip.data.datasets": ["DatasetFormatError"],
}


@pytest.mark.parametrize("module_name", sorted(FIRST_HOMES))
def test_errors_are_the_same_class_from_errors_the_package_and_their_first_module(module_name):
    module = importlib.import_module(module_name)
    for name in FIRST_HOMES[module_name]:
        assert getattr(module, name) is getattr(errors, name) is getattr(actionclip, name), name
        assert name in actionclip.__all__


def test_every_error_class_of_errors_is_exported_by_the_package():
    defined = {
        name for name, value in vars(errors).items() if isinstance(value, type) and value.__module__ == errors.__name__
    }
    assert defined <= set(actionclip.__all__)
    for name in defined - {"PartialDecodeWarning"}:
        assert issubclass(getattr(errors, name), errors.ActionCLIPError), name


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
