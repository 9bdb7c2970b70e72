"""Typed errors. Each names the input that was wrong, what was wrong with it and, where it helps, what to do.

This module imports nothing from the package: the modules that travel as remote code next to the weights
(modeling, configuration, visual prompts, loss, scoring, the pipeline) import it, and it travels with them.
"""


class ActionCLIPError(Exception):
    """Base class of every error this package raises on purpose.

    Errors pickle with their attributes (``source``, ``reason``, ...) and message, so one raised in a decoding worker
    process arrives in the parent as the same class; a source that does not pickle (a file object) travels as its
    description.
    """

    def __reduce__(self):
        state = {key: _picklable_attribute(value) for key, value in vars(self).items()}
        return _rebuild_error, (type(self), self.args, state)


class VideoDecodeError(ActionCLIPError, ValueError):
    """A video could not be opened or decoded (missing, empty, not a video, corrupt, unsupported, too large)."""

    def __init__(self, source, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"cannot decode video {describe_source(source)}: {reason}")


class VideoInputError(ActionCLIPError, ValueError):
    """An input that is not a usable video although nothing failed to decode: an unsupported type, frames of the
    wrong shape, dtype or range, frames too small for the crop, pre-processed tensors of the wrong shape."""

    def __init__(self, source, reason: str):
        self.source = source
        self.reason = reason
        super().__init__(f"unusable video input {describe_source(source)}: {reason}")


class DecodeWorkerDiedError(VideoDecodeError):
    """The worker process decoding a video died (a crash in the decoder, killed by a signal); the video's result is
    this error and a fresh worker takes the next videos."""


class VideoTimeoutError(VideoDecodeError, TimeoutError):
    """Opening or decoding a video took longer than the allowed time (a stalled URL, a pathological file)."""


class VideoTooLargeError(VideoDecodeError):
    """A video, or the data holding one, is larger than the limits (frame pixels, output bytes, an archive member's
    declared size): refused before the memory is allocated. A `VideoDecodeError`, so skipping logic skips it."""


class FrameIndexError(VideoDecodeError, IndexError):
    """A wanted frame index is negative, not an integer, or not below the video's frame count."""


class VideoWriteError(ActionCLIPError, ValueError):
    """Frames or options given to :func:`write_video` cannot be encoded (bad shape, dtype, timestamps, codec)."""


class PartialDecodeWarning(UserWarning):
    """Some wanted frames could not be decoded and were replaced by the closest decoded frame."""


class SamplingError(ActionCLIPError, ValueError):
    """A sampler was configured or called with unusable values (no frames, non-positive counts, unknown name)."""


class VideoProcessingError(ActionCLIPError, ValueError):
    """An option of the video processor is unusable (an unknown backend, a probability outside [0, 1], ...)."""


class ProcessorArgumentError(VideoProcessingError, TypeError):
    """A keyword argument of `ActionCLIPProcessor`'s call is unknown, or has an unusable value (a padding or
    tensor type the tokenizer does not know, texts of different lengths with ``padding=False`` and tensors)."""


class PipelineArgumentError(ActionCLIPError, ValueError):
    """An option of the zero-shot pipeline is unusable (top_k, num_clips, ensemble, batch_size, ...)."""


class MissingProcessorError(ActionCLIPError, FileNotFoundError):
    """The model directory has no ``ActionCLIPProcessor`` (``processor_config.json`` and tokenizer files)."""


class ModelFolderError(ActionCLIPError, ValueError):
    """A model folder cannot be used: a local path that is not a directory (the message names close matches), no
    ``config.json`` where a saved model is needed, or a ``config.json`` that cannot be read."""


class HubUnreachableError(ActionCLIPError, OSError):
    """A Hub id was given, the Hugging Face Hub is out of reach (``HF_HUB_OFFLINE``, no connection) and the local cache
    does not hold that checkpoint: the message says how to pass a local folder instead."""


class WrongModelKindError(ActionCLIPError):
    """A model of another kind than the code needs: a closed-set `ActionCLIPForVideoClassification` given to the
    zero-shot path or to `AutoModel` (its text tower was not saved), an `ActionCLIPModel` asked for as a closed-set
    classifier without label names, or a model that is not ActionCLIP at all.

    Not a `ValueError`: transformers' `pipeline()` catches ValueError (and OSError, TypeError, RuntimeError) from a
    model class to try the next one, then raises a generic error holding every traceback; a model of the wrong kind
    is final, and this message must reach the user as itself.
    """


class ModelInputError(ActionCLIPError, ValueError):
    """A model was called without an input it needs (no ``input_ids``: a batch from a collator that makes no
    prompts), or with inputs that do not fit together."""


class CheckpointConversionError(ActionCLIPError, ValueError):
    """A checkpoint cannot be mapped onto ActionCLIP (unknown keys, inconsistent shapes, unsafe pickle)."""


class UnsafeCheckpointError(CheckpointConversionError):
    """A checkpoint needs arbitrary code to load (a pickle with a code payload): refused."""


class InvalidWeightsError(ActionCLIPError):
    """A model's weight file cannot be used: damaged or hostile (truncated, a header that claims more bytes than the
    file holds, a pickle that would run code), or holding a tensor whose shape does not fit the configuration.
    Refused before any tensor is read (`weight_files.check_saved_weights`).

    Not a ``ValueError`` or ``OSError``: transformers' ``pipeline()`` catches those from each model class it tries
    and ends with an error of its own that buries this one in tracebacks.
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot use weights {self.path!r}: {reason}")


class MissingWeightsError(InvalidWeightsError):
    """A model's weight files lack tensors the model needs (``missing``, e.g. a fusion saved without its weights):
    loaded anyway, they would start from random values and the scores would look like results. Refused where a
    complete model is required (the zero-shot pipeline, the command line); `from_pretrained` alone leaves them to
    transformers, which initialises them with a warning."""

    # Tensors named in the message; the rest are counted.
    NAMES_SHOWN = 5

    def __init__(self, path, missing, total: int):
        self.missing = list(missing)
        shown = ", ".join(self.missing[: self.NAMES_SHOWN])
        if len(self.missing) > self.NAMES_SHOWN:
            shown += f" and {len(self.missing) - self.NAMES_SHOWN} more"
        super().__init__(
            path,
            f"lacks {len(self.missing)} of the model's {total} tensors ({shown}); they would start from random values "
            "and give random scores. Save the whole model (model.save_pretrained), or load it with "
            "ActionCLIPModel.from_pretrained, which fills them in at random with a warning",
        )


class InputTooLargeError(ActionCLIPError, ValueError):
    """A file given as input (a label or template list, a checkpoint) declares or holds more data than its limit."""


class InvalidConfigError(ActionCLIPError, ValueError):
    """A model configuration holds unusable or absurd values (sizes no real model has); refused when loaded."""


class InvalidLogitScaleError(ActionCLIPError, ValueError):
    """A logit scale (the similarity multiplier) is not a finite positive number."""


class NonFiniteScoresError(ActionCLIPError, ValueError):
    """A model produced NaN or infinite scores (corrupt weights, or an overflow in reduced precision)."""


class InvalidLabelsError(ActionCLIPError, ValueError):
    """Candidate labels are empty, duplicated or otherwise unusable."""


class InvalidTemplateError(ActionCLIPError, ValueError):
    """A prompt template is unusable (for instance it has no ``{}`` placeholder)."""


class TooManyBadSamplesError(ActionCLIPError, RuntimeError):
    """A dataset skipped more unreadable samples than its limit allows."""


class InvalidSyntheticConfigError(ActionCLIPError, ValueError):
    """A :class:`SyntheticActionConfig` cannot produce a dataset (sizes, counts, an infeasible zero-shot split)."""


class InvalidProtocolError(ActionCLIPError, ValueError):
    """A protocol cannot be built from its inputs (unknown classes, too few videos, bad fractions or seeds)."""


class InvalidSplitFileError(InvalidProtocolError):
    """A split or list file is malformed (bad line, unknown class, label that contradicts its folder)."""

    def __init__(self, path, line_number: int | None, reason: str):
        self.path = path
        self.line_number = line_number
        self.reason = reason
        where = f"{str(path)!r}" + (f", line {line_number}" if line_number is not None else "")
        super().__init__(f"bad split file {where}: {reason}")


class IncompatibleModelsError(ActionCLIPError, ValueError):
    """Two models cannot be interpolated in weight space (different architectures, shapes or weight names)."""


class InvalidDescriptionsError(ActionCLIPError, ValueError):
    """Label descriptions are unusable: not a JSON object of label -> list of sentences, empty, or not text."""


class DatasetFormatError(ActionCLIPError, ValueError):
    """A dataset description (folder, list file, CSV, shards, arguments) cannot be turned into samples."""


class ModelCardError(ActionCLIPError, ValueError):
    """A model card cannot be made: the model folder, an evaluation report or the card's metadata is unusable."""


class ModelConfigNotFoundError(ModelCardError, FileNotFoundError):
    """The model folder a card describes has no `config.json`."""


class EvaluationReportError(ActionCLIPError, ValueError):
    """An evaluation report (`evaluation.json`) cannot be read: not JSON, or not written by our evaluation."""


class EvaluationReportNotFoundError(EvaluationReportError, FileNotFoundError):
    """An evaluation report named by path does not exist."""


class InvalidWindowError(PipelineArgumentError):
    """Localisation windows cannot be laid on a video: a window or stride that is not positive, or a window longer
    than the video."""


class VideoIndexError(ActionCLIPError, ValueError):
    """A video index (``actionclip index``) cannot be built, read or searched (bad file, bad query, bad options)."""


class IndexMismatchError(VideoIndexError):
    """An index was made by another model or other preprocessing than the one given; its vectors do not compare."""


class IndexLockedError(VideoIndexError):
    """Another process is writing to an index (it holds the index's lock): wait for it, or ask to wait."""

    def __init__(self, index, pid):
        self.index, self.pid = str(index), pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"index {self.index!r} is being written by {holder}: wait for it to finish (or pass --wait)")


class EmptyVideoFolderError(VideoIndexError, FileNotFoundError):
    """A folder to index holds no video file."""


class AppInputError(ActionCLIPError, ValueError):
    """A request to the web app is unusable: no video given, or a video over the app's size or duration limit."""


class MissingAppDependencyError(ActionCLIPError, ImportError):
    """An optional extra is missing: the web app's Gradio (``pip install 'actionclip[app]'``), the cluster path's Ray
    Data (``pip install 'actionclip[ray]'``)."""


class SpaceFolderError(ActionCLIPError, ValueError):
    """A Hub Space folder cannot be written (not a Hub model id, the output exists) or fails the offline check."""


class OnnxExportError(ActionCLIPError, ValueError):
    """An ONNX export was asked for what cannot be exported (an unknown opset or dtype, fp16 with int8, a model
    kind without a text encoder, an output directory in the way); refused before anything is written."""


class OnnxModelError(ActionCLIPError, ValueError):
    """An exported ONNX directory cannot be used: a missing or foreign ``onnx_export.json`` or graph, or inputs the
    graphs were not exported for (another image size, more frames than the model's limit)."""


class ModelCompileError(ActionCLIPError, RuntimeError):
    """``torch.compile`` of the model failed (no C++ compiler for the CPU backend, an unknown backend or mode, an
    operation the compiler cannot handle); the message names the cause and says to pass ``compile=False``."""


class EvaluationSetupError(ActionCLIPError, ValueError):
    """An evaluation was asked for with inputs that do not fit (missing files or arguments, a bad view count)."""


class InvalidTrainingOptionError(ActionCLIPError, ValueError):
    """A training option (`ActionCLIPTrainingArguments`, the training script's flags) holds an unusable value; the
    message names the option."""


class ShardedRunError(ActionCLIPError, RuntimeError):
    """A run shared among a launcher's processes cannot start: the launcher's environment (``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``) is incomplete or wrong, or the processes cannot meet."""


class CommandLineError(ActionCLIPError, ValueError):
    """Bad input on the command line (a missing video, model or labels file, an output in the way): reported by the
    `actionclip` command as one line, exit status 2."""


def _picklable_attribute(value):
    if value is None or isinstance(value, (str, int, float, bool, tuple, list, dict)):
        return value
    if hasattr(value, "__fspath__"):
        return value
    return describe_source(value)


def _rebuild_error(cls, args, state):
    # Not through __init__, whose signature varies; through the __new__ of the built-in base whose memory layout the
    # class has (OSError's for a TimeoutError, BaseException's otherwise).
    for base in cls.__mro__:
        if "__new__" in vars(base) and base.__module__ == "builtins":
            try:
                error = base.__new__(cls, *args)
                break
            except TypeError:
                continue
    error.args = args
    error.__dict__.update(state)
    return error


def describe_source(source) -> str:
    """A short, printable name for a video source: a path or URL as is, bytes and file objects by kind and size."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    name = getattr(source, "name", None)
    if isinstance(name, int) and not isinstance(name, bool):  # os.fdopen's file objects are named by descriptor
        return f"<file object on descriptor {name}>"
    if name is not None and not isinstance(source, str):
        return repr(str(name))
    if hasattr(source, "read"):
        return f"<file object {type(source).__name__}>"
    return repr(str(source))


# ---------------------------------------------------------------------------------------- shared argument checks
# The one copy of each check of a number a caller passes; the caller names the error class its users catch.


def positive_int(value, name: str, error: type[Exception] = ValueError, allowed=None) -> int:
    """``value`` as an ``int`` if it is a positive integer (not a bool; numpy integers count), else ``error``.

    ``allowed``: the only values accepted, when there is such a list.
    """
    if isinstance(value, bool) or not _is_integer(value) or value < 1:
        raise error(f"{name} must be a positive integer, got {value!r}")
    if allowed is not None and value not in allowed:
        raise error(f"{name} must be one of {tuple(allowed)}, got {value!r}")
    return int(value)


def positive_number(value, name: str, error: type[Exception] = ValueError, unit: str = "") -> float:
    """``value`` as a ``float`` if it is a finite number above 0 (not a bool), else ``error``; ``unit`` ("seconds")
    goes into the message."""
    what = f"a positive number of {unit}" if unit else "a positive number"
    if isinstance(value, bool) or not (_is_integer(value) or _is_real(value)):
        raise error(f"{name} must be {what}, got {value!r}")
    number = float(value)
    if not (number > 0 and number != float("inf")):
        raise error(f"{name} must be {what}, got {value!r}")
    return number


def _is_integer(value) -> bool:
    # numpy integers without importing numpy: they index like ints
    return isinstance(value, int) or (hasattr(value, "__index__") and type(value).__module__ == "numpy")


def _is_real(value) -> bool:
    return isinstance(value, float) or (hasattr(value, "__float__") and type(value).__module__ == "numpy")
