"""Typed errors. Each names the input that was wrong, what was wrong with it and, where it helps, what to do."""


class ActionCLIPError(Exception):
    """Base class of every error this package raises on purpose."""


class VideoDecodeError(ActionCLIPError, ValueError):
    """A video could not be opened or decoded (missing, empty, not a video, corrupt, unsupported, too large)."""

    def __init__(self, source, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"cannot decode video {describe_source(source)}: {reason}")


class VideoTimeoutError(VideoDecodeError, TimeoutError):
    """Opening or decoding a video took longer than the allowed time (a stalled URL, a pathological file)."""


class CheckpointConversionError(ActionCLIPError, ValueError):
    """A checkpoint cannot be mapped onto ActionCLIP (unknown keys, inconsistent shapes, unsafe pickle)."""


class UnsafeCheckpointError(CheckpointConversionError):
    """A checkpoint needs arbitrary code to load (a pickle with a code payload): refused."""


class InvalidLabelsError(ActionCLIPError, ValueError):
    """Candidate labels are empty, duplicated or otherwise unusable."""


class InvalidTemplateError(ActionCLIPError, ValueError):
    """A prompt template is unusable (for instance it has no ``{}`` placeholder)."""


class TooManyBadSamplesError(ActionCLIPError, RuntimeError):
    """A dataset skipped more unreadable samples than its limit allows."""


def describe_source(source) -> str:
    """A short, printable name for a video source: a path or URL as is, bytes and file objects by kind and size."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    name = getattr(source, "name", None)
    if name is not None and not isinstance(source, str):
        return repr(str(name))
    if hasattr(source, "read"):
        return f"<file object {type(source).__name__}>"
    return repr(str(source))
