"""ActionCLIP for Hugging Face Transformers."""

__version__ = "0.1.0"

from .errors import (  # noqa: F401
    ActionCLIPError,
    CheckpointConversionError,
    InvalidLabelsError,
    InvalidTemplateError,
    TooManyBadSamplesError,
    UnsafeCheckpointError,
    VideoDecodeError,
    VideoTimeoutError,
)
