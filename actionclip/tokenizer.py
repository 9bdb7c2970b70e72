"""CLIP's tokenizer, shipped inside the package so it works with no Hub access; a saved model's own tokenizer (any
family's); and a saved tokenizer run through the `tokenizers` library alone (numpy ids; no transformers, no torch)
for the ONNX runtime."""

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


def tokenizer_json(tokenizer) -> str:
    """The `tokenizers` serialisation (a ``tokenizer.json``) of a transformers tokenizer of a supported family, for
    `NumpyTokenizer`: a tokenizers-backed tokenizer's own backend (CLIP, XLM-R, BERT, Gemma), or SigLIP's
    SentencePiece tokenizer converted (`siglip_tokenizer_json`).

    Raises:
        ValueError: a tokenizer with neither (named).
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return backend.to_str()
    if type(tokenizer).__name__ == "SiglipTokenizer":
        return siglip_tokenizer_json(tokenizer)
    raise ValueError(
        f"{type(tokenizer).__name__} has no tokenizers backend and no conversion to one: the ONNX runtime cannot "
        "tokenize its texts"
    )


def siglip_tokenizer_json(tokenizer) -> str:
    """SigLIP's tokenizer (a SentencePiece ``spiece.model`` run by `SiglipTokenizer`) as a ``tokenizer.json``.

    transformers has no converter of its own for SigLIP (its `SpmConverter` is the generic SentencePiece one, and
    T5's needs T5's extra ids), so this is `SpmConverter` with SigLIP's two differences: the text is first
    canonicalised as `SiglipTokenizer.canonicalize_text` does (lower-cased where ``do_lower_case``, ASCII
    punctuation removed, whitespace runs made one space, stripped), and the end-of-text token closes every text.
    The same ids as `SiglipTokenizer` for any text, except one that holds a special token's string (``</s>``,
    ``<pad>``, ``<unk>``): `SiglipTokenizer` splits those out before canonicalising; here they are text."""
    import string

    from tokenizers import Regex, normalizers, processors
    from transformers.convert_slow_tokenizer import SpmConverter

    lower = [normalizers.Lowercase()] if getattr(tokenizer, "do_lower_case", True) else []
    punctuation = "[" + "".join("\\" + char for char in string.punctuation) + "]"
    canonical = lower + [
        normalizers.Replace(Regex(punctuation), ""),
        normalizers.Replace(Regex(r"\s+"), " "),
        normalizers.Strip(),
    ]

    class SiglipConverter(SpmConverter):
        def normalizer(self, proto):
            return normalizers.Sequence(canonical + [super().normalizer(proto)])

        def post_processor(self):
            eos = str(self.original_tokenizer.eos_token)
            return processors.TemplateProcessing(
                single=["$A", eos],
                pair=["$A", eos, "$B", eos],
                special_tokens=[(eos, self.original_tokenizer.eos_token_id)],
            )

    return SiglipConverter(tokenizer).converted().to_str()


def _token_text(token) -> str | None:
    """A special token as ``tokenizer_config.json`` saves it: a string, or an added token's ``{"content": ...}``."""
    return token.get("content") if isinstance(token, dict) else token


class NumpyTokenizer:
    """The ``tokenizer.json`` of a saved tokenizer of any supported family, run with the `tokenizers` library: the
    same ids and attention mask as the model's processor gives, as int64 numpy arrays: truncated to ``max_length``
    (the end token kept, a warning naming the long texts), padded to the longest text, or to ``max_length`` where
    ``pad_to_max_length`` (SigLIP), on the tokenizer's side (``padding_side``: SigLIP 2's pads on the left).

    Args:
        directory: a folder holding ``tokenizer.json`` and ``tokenizer_config.json`` (a saved processor's; an ONNX
            export writes a ``tokenizer.json`` for SigLIP's SentencePiece tokenizer, `tokenizer_json`).
        max_length: the text context (the model's: CLIP's 77, SigLIP's 64, ...).
        pad_to_max_length: pad every text to ``max_length`` (the families that pool a fixed position).
        padding_side, truncation_side: ``"left"`` or ``"right"``; default the saved ``tokenizer_config.json``'s,
            else right (a tokenizer class's own default is not in its saved files: an export records it).
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        max_length: int = CONTEXT_LENGTH,
        pad_to_max_length: bool = False,
        padding_side: str | None = None,
        truncation_side: str | None = None,
    ):
        from tokenizers import Tokenizer

        directory = Path(directory)
        settings = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
        self.max_length = max_length
        self.pad_to_max_length = pad_to_max_length
        # Two copies: one that counts the full length of every text, one that truncates and pads (tokenizers keeps
        # those settings in the object, so switching them per call would not be safe across threads).
        self._counting = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._counting.no_truncation()
        self._counting.no_padding()
        self._encoding = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._encoding.enable_truncation(
            max_length, direction=truncation_side or settings.get("truncation_side") or "right"
        )
        pad_token = _token_text(settings.get("pad_token")) or _token_text(settings.get("eos_token"))
        self._encoding.enable_padding(
            direction=padding_side or settings.get("padding_side") or "right",
            pad_id=self._encoding.token_to_id(pad_token),
            pad_token=pad_token,
            length=max_length if pad_to_max_length else None,
        )

    def __call__(self, texts: Sequence[str], truncation: bool = True, verbose: bool = True) -> dict:
        """``texts`` -> ``{"input_ids", "attention_mask"}`` int64 ``(N, L)``, L the longest text's length (at most
        ``max_length``; ``max_length`` where ``pad_to_max_length``). ``truncation=False`` gives each text's full ids
        as lists, unpadded (as a transformers tokenizer does: what `descriptions.long_prompts` counts); ``verbose``
        is accepted for that call and has no effect."""
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
    "NumpyTokenizer",
    "TOKENIZER_DIR",
    "TOKENIZER_FILES",
    "has_tokenizer_files",
    "load_clip_tokenizer",
    "load_tokenizer",
    "siglip_tokenizer_json",
    "tokenizer_class",
    "tokenizer_json",
    "warn_truncated",
]
