"""CLIP's tokenizer, shipped inside the package so it works with no Hub access, and the same tokenizer through the
`tokenizers` library alone (numpy ids; no transformers, no torch) for the ONNX runtime."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

TOKENIZER_DIR = Path(__file__).with_name("tokenizer_files")
# CLIP's text context: prompts are truncated to it, the end-of-text token kept.
CONTEXT_LENGTH = 77


def load_clip_tokenizer(**kwargs):
    """Return a ``CLIPTokenizer`` built from the vocabulary shipped with this package (ids equal OpenAI CLIP's)."""
    from transformers import CLIPTokenizer

    kwargs.setdefault("model_max_length", CONTEXT_LENGTH)
    return CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR), **kwargs)


# The files a saved tokenizer of a supported family leaves: the `tokenizers` serialisation, or a slow tokenizer's own
# vocabulary (CLIP's BPE, BERT's word pieces, SentencePiece's model).
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "spiece.model", "sentencepiece.bpe.model")


def has_tokenizer_files(directory) -> bool:
    """Whether the folder ``directory`` holds the vocabulary of a saved tokenizer (`TOKENIZER_FILES`)."""
    return any((Path(str(directory)) / name).is_file() for name in TOKENIZER_FILES)


def tokenizer_class(location, subfolder: str = ""):
    """The class of the tokenizer saved at ``location``: the transformers class its ``tokenizer_config.json`` names
    (`CLIPTokenizer`, `SiglipTokenizer`, `XLMRobertaTokenizer`, ...), else `AutoTokenizer`.

    Named directly rather than through `AutoTokenizer`, which also reads the folder's ``config.json``: for a saved
    ActionCLIP model that is a configuration of remote code, and transformers would ask to trust it only to learn
    what the tokenizer's own file already says."""
    from transformers import AutoTokenizer
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    settings_file = Path(str(location)) / subfolder / "tokenizer_config.json"
    if settings_file.is_file():
        try:
            name = json.loads(settings_file.read_text(encoding="utf-8")).get("tokenizer_class")
        except (ValueError, UnicodeDecodeError, AttributeError):
            name = None
        found = tokenizer_class_from_name(name) if isinstance(name, str) else None
        if found is not None:
            return found
    return AutoTokenizer


def load_tokenizer(location, config):
    """The tokenizer of the model saved at ``location`` (its processor's files: the family's own tokenizer), or,
    for a CLIP model saved without one, the CLIP tokenizer shipped with this package.

    Raises:
        OSError: a model of another family saved without its tokenizer files (named).
    """
    directory = Path(str(location))
    if directory.is_dir() and not has_tokenizer_files(directory):
        if config.backbone == "clip":
            return load_clip_tokenizer()
        raise OSError(
            f"{str(location)!r} holds a {config.backbone} model without its tokenizer: save the processor of the "
            "model beside it (ActionCLIPProcessor.from_backbone(...).save_pretrained(folder))"
        )
    return tokenizer_class(location).from_pretrained(str(location))


def long_texts(lengths: Sequence[int], max_length: int) -> str | None:
    """The texts (by index, with their token counts) longer than ``max_length`` tokens, named in one phrase (the
    first five, then how many more), or ``None`` when there are none."""
    too_long = [index for index, length in enumerate(lengths) if length > max_length]
    if not too_long:
        return None
    shown = ", ".join(f"text[{i}] ({lengths[i]} tokens)" for i in too_long[:5])
    return shown + (f" and {len(too_long) - 5} more" if len(too_long) > 5 else "")


def warn_truncated(lengths: Sequence[int], max_length: int, stacklevel: int = 2) -> None:
    """One `UserWarning` naming the texts (by index, with their token counts) longer than ``max_length`` tokens."""
    named = long_texts(lengths, max_length)
    if named:
        warnings.warn(
            f"{named} exceed {max_length} tokens and are truncated (the end-of-text token is kept)",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


class NumpyClipTokenizer:
    """The ``tokenizer.json`` a `CLIPTokenizer` saved (its fast backend, which it runs itself), run with the
    `tokenizers` library: the same ids and attention mask as the processor's tokenizer with ``padding=True`` (to
    the longest text) and truncation to ``max_length`` (end-of-text kept, a warning naming the long texts), as int64
    numpy arrays.

    Args:
        directory: a folder holding ``tokenizer.json`` and ``tokenizer_config.json`` (a saved processor's).
        max_length: the text context (77).
    """

    def __init__(self, directory: str | os.PathLike, max_length: int = CONTEXT_LENGTH):
        from tokenizers import Tokenizer

        directory = Path(directory)
        settings = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
        self.max_length = max_length
        # Two copies: one that counts the full length of every text, one that truncates and pads (tokenizers keeps
        # those settings in the object, so switching them per call would not be safe across threads).
        self._counting = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._counting.no_truncation()
        self._counting.no_padding()
        self._encoding = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._encoding.enable_truncation(max_length)
        pad_token = settings.get("pad_token") or settings.get("eos_token")
        self._encoding.enable_padding(pad_id=self._encoding.token_to_id(pad_token), pad_token=pad_token)

    def __call__(self, texts: Sequence[str], truncation: bool = True, verbose: bool = True) -> dict:
        """``texts`` -> ``{"input_ids", "attention_mask"}`` int64 ``(N, L)``, L the longest text's length (at most
        ``max_length``). ``truncation=False`` gives each text's full ids as lists, unpadded (as a `CLIPTokenizer`
        does: what `descriptions.long_prompts` counts); ``verbose`` is accepted for that call and has no effect."""
        texts = list(texts)
        full = self._counting.encode_batch(texts)
        if not truncation:
            return {"input_ids": [encoding.ids for encoding in full]}
        warn_truncated([len(encoding.ids) for encoding in full], self.max_length, 2)
        encodings = self._encoding.encode_batch(texts)
        return {
            "input_ids": np.array([encoding.ids for encoding in encodings], dtype=np.int64),
            "attention_mask": np.array([encoding.attention_mask for encoding in encodings], dtype=np.int64),
        }


__all__ = [
    "CONTEXT_LENGTH",
    "NumpyClipTokenizer",
    "TOKENIZER_DIR",
    "TOKENIZER_FILES",
    "has_tokenizer_files",
    "load_clip_tokenizer",
    "load_tokenizer",
    "tokenizer_class",
    "warn_truncated",
]
