"""The collator (`actionclip.data.collator`): batches of pixel values, labels and tokenized prompts."""

import pytest
import torch
from tiny_models import tiny_model

from actionclip.data.collator import ActionCLIPCollator


def _items(count, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [
        {"pixel_values": torch.randn(4, 3, 32, 32, generator=generator), "labels": i % 3, "sample_seed": 1000 + i}
        for i in range(count)
    ]


def test_kl_collator_gives_one_prompt_per_video_from_its_sample_seed():
    collator = ActionCLIPCollator(["run", "jump", "swim"])
    batch = collator(_items(5))
    assert batch["pixel_values"].shape == (5, 4, 3, 32, 32)
    assert batch["labels"].tolist() == [0, 1, 2, 0, 1]
    assert batch["input_ids"].shape[0] == 5 and batch["attention_mask"].shape == batch["input_ids"].shape
    texts = collator.tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    assert all(name in text for name, text in zip(["run", "jump", "swim", "run", "jump"], texts))
    torch.testing.assert_close(ActionCLIPCollator(["run", "jump", "swim"])(_items(5))["input_ids"], batch["input_ids"])
    assert len(set(texts)) > 2  # several templates drawn


def test_cross_entropy_collator_gives_every_class_prompt():
    collator = ActionCLIPCollator(["run", "jump", "swim"], contrastive_loss="cross_entropy")
    batch = collator(_items(5))
    assert batch["input_ids"].shape[0] == 3
    texts = collator.tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    assert [name in text for name, text in zip(["run", "jump", "swim"], texts)] == [True] * 3
    model = tiny_model(num_frames=4, fusion_num_layers=1, contrastive_loss="cross_entropy")
    loss = model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
    assert torch.isfinite(loss)


def test_collator_rejects_labels_outside_its_classes():
    from actionclip.errors import InvalidLabelsError

    with pytest.raises(InvalidLabelsError, match="outside"):
        ActionCLIPCollator(["run", "jump"])(_items(3))
