"""Training with the augmentation on the device: datasets hand over uint8 crops and their augmentation drawn from
the same seeded streams as the CPU augmentation; the collator pads and packs them; the Trainer transforms them
batched on the model's device. Real encoded videos, tiny real models."""

import pytest
import torch
from test_training import make_trainer, small_model
from video_datasets import NUM_FRAMES, make_video_data

from actionclip.data.collator import ActionCLIPCollator
from actionclip.data.datasets import VideoClassificationDataset

# One 8-bit level after normalisation, in the channel with the smallest std (the largest step).
ONE_LEVEL = 1 / (255 * 0.26130258)


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    return make_video_data(tmp_path_factory.mktemp("synthetic_device"))


def dataset(video_data, split="train", on_device=True, seed=5):
    return VideoClassificationDataset.from_list_file(
        video_data.list_file(split),
        num_frames=NUM_FRAMES,
        image_size=32,
        training=split == "train",
        seed=seed,
        transform_on_device=on_device,
    )


def test_device_augmented_batch_equals_the_cpu_augmented_batch(video_data):
    on_cpu, on_device = dataset(video_data, on_device=False), dataset(video_data)
    collator = ActionCLIPCollator(on_cpu.label_names)
    indices = range(8)
    expected = collator([on_cpu[i] for i in indices])
    handed_over = collator([on_device[i] for i in indices])
    assert handed_over["frames"].dtype == torch.uint8 and "pixel_values" not in handed_over
    assert torch.equal(handed_over["input_ids"], expected["input_ids"])  # the prompts draw from the same seeds
    augmentation = handed_over["augmentation"]
    assert any(clip.color_jitter for clip in augmentation)  # some clips are jittered
    got = on_device.video_processor.augment_frames(handed_over["frames"], augmentation)
    assert got.shape == expected["pixel_values"].shape
    assert (got - expected["pixel_values"]).abs().max() < ONE_LEVEL


def test_evaluation_items_are_uint8_and_normalise_to_the_cpu_transform(video_data):
    on_cpu, on_device = dataset(video_data, "val", on_device=False), dataset(video_data, "val")
    collator = ActionCLIPCollator(on_cpu.label_names)
    expected = collator([on_cpu[i] for i in range(4)])["pixel_values"]
    batch = collator([on_device[i] for i in range(4)])
    assert batch["frames"].shape == (4, NUM_FRAMES, 32, 32, 3) and "augmentation" not in batch
    got = on_device.video_processor.frames_to_pixel_values(batch["frames"])
    assert (got - expected).abs().max() < ONE_LEVEL / 100


def test_uint8_batches_are_reproducible_for_a_seed_and_worker_count(video_data):
    """The same batches in-process and from 2 worker processes, and again for the same seed; another seed
    changes them."""
    data = dataset(video_data)
    collator = ActionCLIPCollator(data.label_names)
    in_process = collator([data[i] for i in range(4)])
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2, collate_fn=collator)
    from_workers = next(iter(loader))
    assert torch.equal(from_workers["frames"], in_process["frames"])
    assert from_workers["augmentation"] == in_process["augmentation"]
    again = collator([dataset(video_data)[i] for i in range(4)])
    assert torch.equal(again["frames"], in_process["frames"])
    assert again["augmentation"] == in_process["augmentation"]
    other = collator([dataset(video_data, seed=6)[i] for i in range(4)])
    assert other["augmentation"] != in_process["augmentation"]


def test_trainer_on_device_transforms_trains_as_the_cpu_path(video_data, tmp_path):
    """Two steps from the same model and seed: the losses of the device path equal the CPU path's; evaluation on
    uint8 items works."""
    losses = {}
    for on_device in (False, True):
        train, evaluation = dataset(video_data, on_device=on_device), dataset(video_data, "val", on_device=on_device)
        options = dict(max_steps=2, per_device_train_batch_size=8, learning_rate=5e-5, lr_scheduler_type="constant")
        trainer = make_trainer(small_model(), train, evaluation, tmp_path / str(on_device), **options)
        trainer.train()
        losses[on_device] = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        metrics = trainer.evaluate()
        assert 0.0 <= metrics["eval_top1_accuracy"] <= 1.0
    assert len(losses[True]) == 2
    torch.testing.assert_close(torch.tensor(losses[True]), torch.tensor(losses[False]), rtol=0, atol=2e-3)


def test_collator_refuses_mixed_items(video_data):
    on_cpu, on_device = dataset(video_data, on_device=False), dataset(video_data)
    collator = ActionCLIPCollator(on_cpu.label_names)
    with pytest.raises(ValueError, match="uint8 frames"):
        collator([on_cpu[0], on_device[1]])
