"""Derive vocab.json / merges.txt (the Hugging Face CLIP tokenizer format) from CLIP's BPE merges file."""

import gzip
import json
import sys
from pathlib import Path


def byte_symbols():
    # GPT-2 / CLIP byte-to-printable-unicode table: printable latin-1 bytes map to themselves,
    # the rest are moved above 255 in order.
    keep = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    # Vocabulary order: the printable bytes first (as themselves), then the others shifted above 255.
    rest = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + i) for i in range(len(rest))]


src, out = Path(sys.argv[1]), Path(sys.argv[2])
lines = gzip.open(src, "rt", encoding="utf-8").read().split("\n")
merges = lines[1 : 1 + 49152 - 256 - 2]
symbols = byte_symbols()
tokens = (
    symbols
    + [s + "</w>" for s in symbols]
    + ["".join(m.split()) for m in merges]
    + ["<|startoftext|>", "<|endoftext|>"]
)
assert len(tokens) == 49408, len(tokens)
(out / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
(out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
