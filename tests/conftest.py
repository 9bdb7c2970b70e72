"""Shared test fixtures: where the project's shared data lives, and small real inputs."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
REFERENCE_DIR = SHARED_DIR / "reference" / "original_actionclip"
LABELS_DIR = SHARED_DIR / "data" / "labels"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference outputs of the authors' code (see its README)."""
    if not REFERENCE_DIR.is_dir():
        raise FileNotFoundError(
            f"reference fixtures not found at {REFERENCE_DIR}: the shared/ folder must lie beside the repo"
        )
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def reference_inputs(reference_dir):
    import torch

    return torch.load(reference_dir / "inputs.pt", weights_only=True, map_location="cpu")
