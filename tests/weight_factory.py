"""Damaged, hostile and incomplete weight files, each made from a real saved model directory: the safetensors file
cut short or its JSON header rewritten (a tensor claiming 10**15 bytes, a tensor of another shape), the fusion's
tensors left out with safetensors' own ``save_file``, and a ``pytorch_model.bin`` whose unpickling runs code."""

from __future__ import annotations

import json
import pathlib
import shutil
import struct

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"
# A tensor whose two sides differ (77 positions x 64 channels in the tiny models), so swapping them is a new shape.
RESHAPED_TENSOR = "fusion.frame_position_embeddings.weight"


class WritesMarker:
    """Unpickling this object writes a file: a stand-in for any code a malicious pickle runs."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.write_text, (self.marker, "code ran"))


def malicious_checkpoint(path: pathlib.Path, marker: pathlib.Path, state: dict) -> pathlib.Path:
    torch.save({**state, "payload": WritesMarker(marker)}, path)
    return path


def _copy(model_dir: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    shutil.copytree(model_dir, out)
    return out


def _read_header(path: pathlib.Path) -> tuple[dict, bytes]:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def _write_header(path: pathlib.Path, header: dict, payload: bytes) -> None:
    encoded = json.dumps(header, separators=(",", ":")).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + payload)


def truncated(model_dir: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """The weights cut in the middle (an interrupted copy or download)."""
    _copy(model_dir, out)
    data = (out / WEIGHTS).read_bytes()
    (out / WEIGHTS).write_bytes(data[: len(data) // 2])
    return out


def claiming_bytes(model_dir: pathlib.Path, out: pathlib.Path, claimed: int = 10**15) -> pathlib.Path:
    """A header whose last tensor claims its data runs to byte ``claimed`` of a file of a few MB."""
    _copy(model_dir, out)
    header, payload = _read_header(out / WEIGHTS)
    name = max((key for key in header if key != "__metadata__"), key=lambda key: header[key]["data_offsets"][1])
    header[name]["data_offsets"][1] = claimed
    _write_header(out / WEIGHTS, header, payload)
    return out


def reshaped(model_dir: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """One tensor's shape transposed in the header (same bytes, a valid file), so it no longer fits the config."""
    _copy(model_dir, out)
    header, payload = _read_header(out / WEIGHTS)
    header[RESHAPED_TENSOR]["shape"] = header[RESHAPED_TENSOR]["shape"][::-1]
    assert header[RESHAPED_TENSOR]["shape"][0] != header[RESHAPED_TENSOR]["shape"][1]
    _write_header(out / WEIGHTS, header, payload)
    return out


def without_fusion(model_dir: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """The weights saved again without the fusion's tensors (a valid file that covers only part of the model)."""
    _copy(model_dir, out)
    header, _ = _read_header(out / WEIGHTS)
    state = load_file(out / WEIGHTS)
    kept = {name: tensor for name, tensor in state.items() if not name.startswith("fusion.")}
    assert len(kept) < len(state)
    save_file(kept, out / WEIGHTS, metadata=header.get("__metadata__"))
    return out


def pickled_with_payload(model_dir: pathlib.Path, out: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    """The weights as a ``pytorch_model.bin`` pickle that writes ``marker`` when unpickled unsafely."""
    _copy(model_dir, out)
    state = load_file(out / WEIGHTS)
    (out / WEIGHTS).unlink()
    malicious_checkpoint(out / "pytorch_model.bin", marker, state)
    return out
