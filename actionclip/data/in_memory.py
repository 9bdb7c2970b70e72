"""A video dataset decoded once and kept in memory, for short trainings on small data (the demo)."""

from __future__ import annotations

import numpy as np
import torch


class InMemoryClips(torch.utils.data.Dataset):
    """A `VideoClassificationDataset` decoded once and kept in memory.

    The demo trains without augmentation on clips that hold exactly ``num_frames`` frames, so every epoch would
    decode the same pixels again; only the prompt template changes, drawn from ``(seed, epoch, index)`` as the
    dataset itself does.
    """

    def __init__(self, dataset, seed: int = 0, progress: bool = True, description: str = "decoding"):
        from tqdm.auto import tqdm

        self.label_names = list(dataset.label_names)
        self.seed = int(seed)
        self.epoch = 0
        items = [dataset[i] for i in tqdm(range(len(dataset)), desc=description, unit="video", disable=not progress)]
        self.pixel_values = torch.stack([item["pixel_values"] for item in items])
        self.labels = [int(item["labels"]) for item in items]

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        sequence = np.random.SeedSequence([self.seed, self.epoch, int(index)])
        sample_seed = int(sequence.generate_state(1, np.uint64)[0] >> 1)
        return {"pixel_values": self.pixel_values[index], "labels": self.labels[index], "sample_seed": sample_seed}
