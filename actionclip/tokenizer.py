"""CLIP's tokenizer, shipped inside the package so it works with no Hub access."""

from pathlib import Path

TOKENIZER_DIR = Path(__file__).with_name("tokenizer_files")


def load_clip_tokenizer(**kwargs):
    """Return a ``CLIPTokenizer`` built from the vocabulary shipped with this package (ids equal OpenAI CLIP's)."""
    from transformers import CLIPTokenizer

    kwargs.setdefault("model_max_length", 77)
    return CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR), **kwargs)
