"""Weight files read without running code: checkpoints for conversion, and the tensors a saved model directory holds,
checked against what the model needs before transformers reads any of them.

`check_saved_weights` is what `ActionCLIPModel.from_pretrained` (and `ActionCLIPForVideoClassification`'s) runs on
a local directory, so the pipeline, every command and every Python caller go through it. A damaged or hostile file
(truncated, a header that claims more bytes than the file holds, a pickle that would run code) and tensors whose
shapes do not fit the configuration raise `InvalidWeightsError`, naming the file; tensors the files lack raise
`MissingWeightsError` where a complete model is required (the zero-shot pipeline, the command line), since
transformers would give them fresh random values, and random scores look like results.

The model's module imports this one, so it travels with the weights as remote code: it imports only torch,
safetensors, transformers and the package's errors.
"""

from __future__ import annotations

import json
import os
import pickle
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from .errors import (
    CheckpointConversionError,
    InputTooLargeError,
    InvalidWeightsError,
    MissingWeightsError,
    UnsafeCheckpointError,
)

# transformers' file names, in the order it prefers them for a local directory (`_get_resolved_checkpoint_files`).
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint without running code: safetensors, or ``torch.load(weights_only=True)``.

    Raises:
        CheckpointConversionError: missing or unreadable file, TorchScript archive.
        UnsafeCheckpointError: a pickle that needs code (classes, functions) to load.
        InputTooLargeError: members or tensors that declare more bytes than the file stores (compressed members,
            stride-0 views), refused before anything is read or copied.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointConversionError(f"checkpoint {str(path)!r} does not exist or is not a file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:
            raise CheckpointConversionError(
                f"checkpoint {str(path)!r} is not a readable safetensors file: {error}"
            ) from None
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if any(info.filename.endswith("/constants.pkl") or "/code/" in info.filename for info in members):
                raise CheckpointConversionError(
                    f"checkpoint {str(path)!r} is a TorchScript archive (OpenAI's released CLIP .pt files are): "
                    "loading it would run its code. Start from a transformers CLIP checkpoint with "
                    "ActionCLIPModel.from_backbone(...) instead, or export its state_dict() yourself."
                )
        # torch.save stores members uncompressed: more declared bytes than the file holds is a decompression bomb.
        declared = sum(info.file_size for info in members)
        if declared > path.stat().st_size:
            raise InputTooLargeError(
                f"checkpoint {str(path)!r} declares {declared} bytes of members in a {path.stat().st_size}-byte "
                "file (compressed members; torch.save writes none): refused"
            )
    try:
        with warnings.catch_warnings():
            # torch warns about the pickle protocol of any file it did not write, just before refusing it.
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            # Memory-mapped, so storages are not read into memory before `_check_declared_sizes` has seen them.
            checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as error:
        raise UnsafeCheckpointError(
            f"checkpoint {str(path)!r} is a pickle that torch's weights-only loader refuses, since loading it could "
            f"run code; nothing in it ran (only tensors and plain containers are accepted): "
            f"{_unpickler_complaint(error)}"
        ) from None
    except Exception as error:
        raise CheckpointConversionError(
            f"checkpoint {str(path)!r} cannot be read as a PyTorch file: {error}"
        ) from None
    _check_declared_sizes(checkpoint, path)
    return checkpoint


def _unpickler_complaint(error: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler refused (a global, an operand), without its advice on how to run the
    file's code anyway, which comes first."""
    paragraphs = [
        paragraph.strip()
        for paragraph in str(error).split("\n\n")
        if paragraph.strip() and not paragraph.strip().startswith("Check the documentation")
    ]
    return " ".join(paragraphs[-1].split()) if paragraphs else type(error).__name__


def _tensors(value, where: str = ""):
    """``(name, tensor)`` for every tensor in nested dicts, lists and tuples."""
    if torch.is_tensor(value):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _tensors(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{where}[{index}]")


def _check_declared_sizes(checkpoint, path: Path) -> None:
    """Refuse tensors that claim more elements than their stored data holds (a stride-0 or overlapping view, which
    copying would blow up), before anything copies them. Views of one storage that fit inside it are kept."""
    for name, tensor in _tensors(checkpoint):
        claimed = tensor.numel() * tensor.element_size()
        stored = tensor.untyped_storage().nbytes()
        if claimed > stored:
            raise InputTooLargeError(
                f"checkpoint {str(path)!r}: tensor {name!r} of shape {tuple(tensor.shape)} claims {claimed} bytes "
                f"but its stored data holds {stored} (a stride-0 or overlapping view): refused before copying it"
            )


def _with_variant(name: str, variant: str | None) -> str:
    """transformers' ``_add_variant``: ``model.safetensors`` -> ``model.fp16.safetensors``."""
    if not variant:
        return name
    stem, _, suffix = name.partition(".")
    return f"{stem}.{variant}.{suffix}"


def weight_files(directory: str | os.PathLike, use_safetensors: bool | None = None, variant: str | None = None):
    """The weight files transformers would load from a local model directory: ``(entry, files)``, where ``entry``
    is the file that names them (the weights themselves, or a shard index) and ``files`` the files holding tensors;
    ``(None, [])`` when the directory holds none of transformers' names (transformers then says what it looked for).

    Raises:
        InvalidWeightsError: a shard index that is not JSON, or names a shard outside the directory or missing.
    """
    directory = Path(directory)
    names = []
    if use_safetensors is not False:
        names += [SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME]
    if not use_safetensors:
        names += [WEIGHTS_NAME, WEIGHTS_INDEX_NAME]
    for name in names:
        entry = directory / _with_variant(name, variant)
        if not entry.is_file():
            continue
        if not name.endswith(".index.json"):
            return entry, [entry]
        return entry, _shards(entry)
    return None, []


def _shards(index: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        shard_names = sorted(set(weight_map.values()))
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InvalidWeightsError(index, f"not a shard index (JSON with a 'weight_map' object): {error}") from None
    shards = []
    for name in shard_names:
        if not isinstance(name, str) or Path(name).name != name:
            raise InvalidWeightsError(index, f"names the shard {name!r}, which is not a file name in its directory")
        if not (index.parent / name).is_file():
            raise InvalidWeightsError(index, f"names the shard {name!r}, which does not exist")
        shards.append(index.parent / name)
    return shards


def stored_tensor_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor one weight file stores, without reading tensor data: a safetensors header
    (checked by safetensors against the file's size), or a pickle read with ``weights_only`` and memory-mapped.

    Raises:
        InvalidWeightsError: a damaged or truncated file, a header claiming more bytes than the file holds, a pickle
            that would run code, or a pickle that is not a state dict.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
        except (SafetensorError, OSError) as error:
            raise InvalidWeightsError(
                path,
                f"not a readable safetensors file of {path.stat().st_size} bytes ({' '.join(str(error).split())}): "
                "it is damaged or truncated, or its header claims more than the file holds; save or copy it again",
            ) from None
    try:
        state = load_checkpoint(path)
    except (CheckpointConversionError, InputTooLargeError) as error:
        # The same refusal, as the error transformers' pipeline() lets through; its message names the file already.
        reason = str(error).removeprefix(f"checkpoint {str(path)!r}").lstrip(" :")
        raise InvalidWeightsError(path, reason) from None
    if not isinstance(state, Mapping) or not all(torch.is_tensor(value) for value in state.values()):
        raise InvalidWeightsError(path, "not a state dict (a mapping of names to tensors)")
    return {str(name): tuple(tensor.shape) for name, tensor in state.items()}


def expected_tensor_shapes(model_class, config) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor ``model_class(config)`` saves, from a model on the meta device (no memory)."""
    from transformers.initialization import no_init_weights

    with torch.device("meta"), no_init_weights():
        model = model_class(config)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def saved_tensors(directory: str | os.PathLike, use_safetensors: bool | None = None, variant: str | None = None):
    """``(entry, {name: (shape, file)})`` for every tensor a local model directory stores (see `weight_files`);
    ``(None, {})`` when it holds no weight file.

    Raises:
        InvalidWeightsError: a damaged or hostile file (`stored_tensor_shapes`), or a bad shard index.
    """
    entry, files = weight_files(directory, use_safetensors, variant)
    stored = {}
    for path in files:
        stored.update({name: (shape, path) for name, shape in stored_tensor_shapes(path).items()})
    return entry, stored


def check_weights_fit(entry: Path, stored: Mapping, expected: Mapping, require_all: bool, check_shapes: bool = True):
    """Compare what the files store (`saved_tensors`) with what the model needs (name -> shape).

    Raises:
        InvalidWeightsError: with ``check_shapes``, a stored tensor whose shape differs from the model's, naming
            its file.
        MissingWeightsError: with ``require_all``, tensors the model needs that no file stores, naming the entry file.
    """
    if check_shapes:
        mismatched = [name for name, shape in expected.items() if name in stored and stored[name][0] != tuple(shape)]
        if mismatched:
            first = mismatched[0]
            shape, path = stored[first]
            others = f" ({len(mismatched) - 1} more tensors differ too)" if len(mismatched) > 1 else ""
            raise InvalidWeightsError(
                path,
                f"tensor {first!r} has shape {list(shape)} where the model's configuration needs "
                f"{list(expected[first])}{others}: the weights do not belong to this config.json, or were edited",
            )
    missing = [name for name in expected if name not in stored]
    if require_all and missing:
        raise MissingWeightsError(entry, missing, len(expected))


def check_saved_weights(model_class, name_or_path, load_kwargs: Mapping, require_all: bool) -> None:
    """Check the weight files of a local model directory before `from_pretrained` reads them; a Hub id, a
    directory without weight files, and loads from a ``state_dict`` or a GGUF file are left to transformers.

    Args:
        model_class: the class being loaded (its configuration class resolves the configuration as
            `from_pretrained` does, with the same overrides, unless ``load_kwargs`` holds a configuration).
        name_or_path: what `from_pretrained` was given.
        load_kwargs: the keyword arguments of `from_pretrained` (``config``, ``subfolder``, ``use_safetensors``,
            ``variant``, ``ignore_mismatched_sizes`` and configuration overrides are read).
        require_all: refuse files that lack tensors the model needs instead of leaving them to transformers, which
            initialises them at random with a warning.

    Raises:
        InvalidWeightsError: a damaged or hostile file, or a tensor whose shape does not fit the configuration
            (unless ``ignore_mismatched_sizes``).
        MissingWeightsError: with ``require_all``, tensors the files lack.
    """
    if not isinstance(name_or_path, (str, os.PathLike)) or load_kwargs.get("state_dict") is not None:
        return
    if load_kwargs.get("gguf_file"):
        return
    directory = Path(name_or_path) / (load_kwargs.get("subfolder") or "")
    if not directory.is_dir():
        return
    entry, stored = saved_tensors(directory, load_kwargs.get("use_safetensors"), load_kwargs.get("variant"))
    if entry is None:
        return
    from transformers import PretrainedConfig

    config = load_kwargs.get("config")
    if not isinstance(config, PretrainedConfig):
        # As `from_pretrained` resolves it: overrides among the keyword arguments change the model's shapes.
        overrides = {key: value for key, value in load_kwargs.items() if key != "config"}
        config, _ = model_class.config_class.from_pretrained(
            config if config is not None else name_or_path, return_unused_kwargs=True, **overrides
        )
    expected = expected_tensor_shapes(model_class, config)
    check_weights_fit(
        entry, stored, expected, require_all, check_shapes=not load_kwargs.get("ignore_mismatched_sizes")
    )


def check_loaded_weights_complete(model) -> None:
    """A loaded model's weight files held every tensor it has: none was initialised at random when it was loaded.

    Checked again from the files (their headers only) of the local directory the model was loaded from
    (``model.name_or_path``). A model from elsewhere (the Hub, built in memory) is not checked, nor one built from
    another kind of model's files (`ActionCLIPModel.from_backbone` names the CLIP directory, whose missing prompts are
    meant to start fresh).

    Raises:
        MissingWeightsError: the files lack tensors the model has, naming them.
    """
    location = getattr(model, "name_or_path", None)
    if not location or not Path(location).is_dir():
        return
    try:
        saved_type = json.loads((Path(location) / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return
    if saved_type != model.config.model_type:
        return
    entry, stored = saved_tensors(location)
    if entry is not None:
        expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
        check_weights_fit(entry, stored, expected, require_all=True, check_shapes=False)


__all__ = [
    "check_loaded_weights_complete",
    "check_saved_weights",
    "check_weights_fit",
    "expected_tensor_shapes",
    "load_checkpoint",
    "saved_tensors",
    "stored_tensor_shapes",
    "weight_files",
]
