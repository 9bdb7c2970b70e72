"""Training ActionCLIP: datasets in every format, the collator, parameter groups, evaluation and the script's
`--push_to_hub`, on real encoded videos and tiny real models."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import TEXT, VISION, tiny_model

from actionclip.data.collator import ActionCLIPCollator
from actionclip.data.datasets import (
    TarShardVideoDataset,
    VideoClassificationDataset,
    load_video_dataset,
    write_tar_shards,
)
from actionclip.errors import TooManyBadSamplesError, VideoDecodeError
from actionclip.training import (
    ActionCLIPTrainer,
    ActionCLIPTrainingArguments,
    actionclip_parameter_groups,
    freeze_towers,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_FRAMES = 4
CLASS_FOLDERS = ["RedLeft", "RedRight", "BlueLeft", "BlueRight"]

# ----------------------------------------------------------------------------------------------------------------
# Helpers shared with test_distributed / test_lora / test_resume


def make_tiny_clip_dir(directory: Path) -> str:
    """A transformers CLIPModel folder with the tiny towers (no pretrained weights exist offline)."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=TEXT, vision_config=VISION, projection_dim=64)).save_pretrained(directory)
    return str(directory)


def make_video_data(directory: Path):
    """4 classes (red/blue square moving left/right), 4 training and 2 validation clips each, 32x32, 8 frames."""
    from actionclip.data.synthetic import SyntheticActionConfig, generate_synthetic_dataset

    config = SyntheticActionConfig(
        colors=("red", "blue"),
        shapes=("square",),
        motions=("moving left", "moving right"),
        num_frames=8,
        size=(32, 32),
        videos_per_class=4,
        val_videos_per_class=2,
        zeroshot_videos_per_class=0,
        zeroshot_fraction=0.0,
    )
    return generate_synthetic_dataset(directory, config)


def training_arguments(output_dir, **overrides) -> ActionCLIPTrainingArguments:
    values = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        per_device_eval_batch_size=8,
        learning_rate=2e-4,
        warmup_steps=0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        load_best_model_at_end=False,
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    values.update(overrides)
    return ActionCLIPTrainingArguments(**values)


def make_trainer(model, train_dataset, eval_dataset, output_dir, templates=("a video of {}.",), **overrides):
    from actionclip.evaluation.metrics import make_compute_metrics

    collator = ActionCLIPCollator(train_dataset.label_names, templates=list(templates))
    return ActionCLIPTrainer(
        model=model,
        args=training_arguments(output_dir, **overrides),
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=collator,
        compute_metrics=make_compute_metrics(),
        eval_templates=list(templates),
    )


def small_model(seed=0, **overrides):
    return tiny_model(seed=seed, num_frames=NUM_FRAMES, fusion_num_layers=1, **overrides)


# ----------------------------------------------------------------------------------------------------------------
# Fixtures: one set of real videos, written once, in every format


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    return make_video_data(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    return make_tiny_clip_dir(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def frame_folders(video_data, tmp_path_factory):
    """The original's frame-folder layout: one folder of img_00001.jpg ... per video, and its list files."""
    from PIL import Image

    from actionclip.video_io import probe_video, read_frames

    root = tmp_path_factory.mktemp("frames")
    for split in ("train", "val"):
        lines = []
        for number, (path, label) in enumerate(video_data.videos(split)):
            count = probe_video(path).num_frames
            folder = root / split / f"{number:03d}"
            folder.mkdir(parents=True)
            for i, frame in enumerate(read_frames(path, range(count))):
                Image.fromarray(frame).save(folder / f"img_{i + 1:05d}.jpg", quality=95)
            lines.append(f"{split}/{number:03d} {count} {label}\n")
        (root / f"{split}.txt").write_text("".join(lines))
    return root


@pytest.fixture(scope="module")
def ucf_layout(video_data, tmp_path_factory):
    """UCF101's layout: videos/<Class>/v_<Class>_gXX_c01.mp4 and classInd / trainlist01 / testlist01."""
    root = tmp_path_factory.mktemp("ucf")
    (root / "videos").mkdir()
    train_lines, test_lines = [], []
    for split, lines in (("train", train_lines), ("val", test_lines)):
        for number, (path, label) in enumerate(video_data.videos(split)):
            name = CLASS_FOLDERS[label]
            relative = f"{name}/v_{name}_g{number:02d}_c0{1 if split == 'train' else 2}.mp4"
            (root / "videos" / name).mkdir(exist_ok=True)
            os.symlink(path, root / "videos" / relative)
            lines.append(f"{relative} {label + 1}\n" if split == "train" else f"{relative}\n")
    (root / "classInd.txt").write_text("".join(f"{i + 1} {name}\n" for i, name in enumerate(CLASS_FOLDERS)))
    (root / "trainlist01.txt").write_text("".join(train_lines))
    (root / "testlist01.txt").write_text("".join(test_lines))
    return root


@pytest.fixture(scope="module")
def kinetics_layout(video_data, tmp_path_factory):
    """Kinetics CSVs (label,youtube_id,time_start,time_end,split) and flat files {id}_{start:06d}_{end:06d}.mp4."""
    root = tmp_path_factory.mktemp("kinetics")
    for split in ("train", "val"):
        (root / split).mkdir()
        rows = ["label,youtube_id,time_start,time_end,split\n"]
        for number, (path, label) in enumerate(video_data.videos(split)):
            youtube_id = f"yt{split}{number:03d}x"
            os.symlink(path, root / split / f"{youtube_id}_{number:06d}_{number + 10:06d}.mp4")
            rows.append(f"{video_data.labels[label]},{youtube_id},{number},{number + 10},{split}\n")
        rows.append(f"{video_data.labels[0]},gone_from_youtube,0,10,{split}\n")  # a missing download
        (root / f"{split}.csv").write_text("".join(rows))
    return root


@pytest.fixture(scope="module")
def tar_shards(video_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    write_tar_shards(video_data.videos("train"), str(root / "train-{:06d}.tar"), samples_per_shard=5)
    write_tar_shards(video_data.videos("val"), str(root / "val-{:06d}.tar"), samples_per_shard=8)
    return root


def datasets_in_format(name, video_data, frame_folders, ucf_layout, kinetics_layout, tar_shards):
    labels_csv = video_data.root / "labels.csv"
    options = dict(num_frames=NUM_FRAMES, image_size=32)
    if name == "folder":
        return (
            VideoClassificationDataset.from_folder(video_data.root / "train", labels_csv, **options),
            VideoClassificationDataset.from_folder(video_data.root / "val", labels_csv, **options),
        )
    if name == "list":
        return (
            VideoClassificationDataset.from_list_file(
                video_data.list_file("train"), labels_csv, training=True, **options
            ),
            VideoClassificationDataset.from_list_file(video_data.list_file("val"), labels_csv, **options),
        )
    if name == "frames":
        return (
            VideoClassificationDataset.from_list_file(
                frame_folders / "train.txt", labels_csv, training=True, **options
            ),
            VideoClassificationDataset.from_list_file(frame_folders / "val.txt", labels_csv, **options),
        )
    if name == "split_files":
        videos = ucf_layout / "videos"
        return (
            VideoClassificationDataset.from_ucf101_splits(
                ucf_layout, videos, subset="train", training=True, **options
            ),
            VideoClassificationDataset.from_ucf101_splits(ucf_layout, videos, subset="test", **options),
        )
    if name == "kinetics_csv":
        return (
            VideoClassificationDataset.from_kinetics_csv(
                kinetics_layout / "train.csv", kinetics_layout / "train", labels_csv, **options
            ),
            VideoClassificationDataset.from_kinetics_csv(
                kinetics_layout / "val.csv", kinetics_layout / "val", labels_csv, **options
            ),
        )
    if name == "tar":
        return (
            TarShardVideoDataset(str(tar_shards / "train-*.tar"), labels_csv, **options),
            TarShardVideoDataset(str(tar_shards / "val-*.tar"), labels_csv, **options),
        )
    if name == "hf_videofolder":
        return (
            load_video_dataset("hf", video_data.root / "train", label_names=labels_csv, **options),
            load_video_dataset("hf", video_data.root / "val", label_names=labels_csv, **options),
        )
    raise AssertionError(name)


FORMATS = ["folder", "list", "frames", "split_files", "kinetics_csv", "tar", "hf_videofolder"]


# ----------------------------------------------------------------------------------------------------------------
# Datasets


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_fine_tunes_with_falling_loss_and_evaluates_top1_top5(
    name, video_data, frame_folders, ucf_layout, kinetics_layout, tar_shards, tmp_path
):
    train, evaluation = datasets_in_format(name, video_data, frame_folders, ucf_layout, kinetics_layout, tar_shards)
    item = next(iter(evaluation)) if isinstance(evaluation, TarShardVideoDataset) else evaluation[0]
    assert item["pixel_values"].shape == (NUM_FRAMES, 3, 32, 32)
    assert isinstance(item["labels"], int)
    # The whole training set in every batch, without augmentation: the loss then falls step by step.
    options = dict(max_steps=5, per_device_train_batch_size=16, learning_rate=5e-5, lr_scheduler_type="constant")
    trainer = make_trainer(small_model(), train, evaluation, tmp_path, **options)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 5
    assert losses[-1] < losses[0] - 0.05, losses
    metrics = trainer.evaluate()
    assert 0.0 <= metrics["eval_top1_accuracy"] <= metrics["eval_mean_class_accuracy"] + 1.0
    assert 0.0 <= metrics["eval_top1_accuracy"] <= 1.0 and np.isfinite(metrics["eval_loss"])
    top_k = [key for key in metrics if key.startswith("eval_top") and key != "eval_top1_accuracy"]
    assert top_k and all(metrics["eval_top1_accuracy"] <= metrics[key] for key in top_k)


def test_labels_of_every_format_agree_with_the_videos(
    video_data, frame_folders, ucf_layout, kinetics_layout, tar_shards
):
    expected = sorted(label for _, label in video_data.samples["val"])
    for name in FORMATS:
        _, evaluation = datasets_in_format(name, video_data, frame_folders, ucf_layout, kinetics_layout, tar_shards)
        if isinstance(evaluation, TarShardVideoDataset):
            labels = [item["labels"] for item in evaluation]
        else:
            labels = [record.label for record in evaluation.records]
        assert sorted(labels) == expected, name
        assert len(evaluation.label_names) == 4


def test_folder_names_become_class_names_without_a_label_file(video_data):
    dataset = VideoClassificationDataset.from_folder(video_data.root / "train", num_frames=NUM_FRAMES)
    assert dataset.label_names == sorted(video_data.labels)


def test_kinetics_csv_skips_missing_downloads(kinetics_layout, video_data):
    dataset = VideoClassificationDataset.from_kinetics_csv(
        kinetics_layout / "val.csv", kinetics_layout / "val", num_frames=NUM_FRAMES
    )
    assert len(dataset) == len(video_data.samples["val"])


def test_hmdb51_split_files(video_data, tmp_path):
    names = ["red left", "red right", "blue left", "blue right"]
    for label, name in enumerate(names):
        folder = tmp_path / "videos" / name.replace(" ", "_")
        folder.mkdir(parents=True)
        lines = []
        for split, mark in (("train", 1), ("val", 2)):
            for number, (path, video_label) in enumerate(video_data.videos(split)):
                if video_label == label:
                    os.symlink(path, folder / f"{split}{number}.mp4")
                    lines.append(f"{split}{number}.mp4 {mark}\n")
        (tmp_path / f"{name.replace(' ', '_')}_test_split1.txt").write_text("".join(lines))
    train = VideoClassificationDataset.from_hmdb51_splits(tmp_path, tmp_path / "videos", class_names=names)
    test = VideoClassificationDataset.from_hmdb51_splits(
        tmp_path, tmp_path / "videos", subset="test", class_names=names
    )
    assert (len(train), len(test)) == (16, 8)
    assert train.label_names == names
    assert train[0]["labels"] == train.records[0].label


def test_items_depend_only_on_seed_epoch_and_index(video_data):
    def dataset(seed):
        return VideoClassificationDataset.from_list_file(
            video_data.list_file("train"), num_frames=NUM_FRAMES, image_size=32, training=True, seed=seed
        )

    first, again = dataset(0), dataset(0)
    item = first[3]
    for _ in range(2):
        first[5]  # other reads in between do not matter
    torch.testing.assert_close(again[3]["pixel_values"], item["pixel_values"], rtol=0, atol=0)
    assert again[3]["sample_seed"] == item["sample_seed"]
    again.set_epoch(1)
    assert not torch.equal(again[3]["pixel_values"], item["pixel_values"])
    assert not torch.equal(dataset(1)[3]["pixel_values"], item["pixel_values"])


def test_decoding_in_dataloader_workers_gives_the_same_items(video_data):
    dataset = VideoClassificationDataset.from_list_file(
        video_data.list_file("train"), num_frames=NUM_FRAMES, image_size=32, training=True, seed=5
    )
    collator = ActionCLIPCollator(dataset.label_names)
    in_process = collator([dataset[i] for i in range(4)])
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collator)
    from_workers = next(iter(loader))
    for key in in_process:
        torch.testing.assert_close(from_workers[key], in_process[key], rtol=0, atol=0)


def _with_a_corrupt_video(video_data, tmp_path, corrupt_index=2):
    lines = video_data.list_file("train").read_text().splitlines()
    path, label = lines[corrupt_index].rsplit(" ", 1)
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 10)
    lines[corrupt_index] = f"{tmp_path / 'corrupt.mp4'} {label}"
    lines = [line if os.path.isabs(line.rsplit(" ", 1)[0]) else f"{video_data.root / line}" for line in lines]
    list_file = tmp_path / "list.txt"
    list_file.write_text("\n".join(lines) + "\n")
    return list_file


def test_unreadable_video_raises_a_decode_error_by_default(video_data, tmp_path):
    dataset = VideoClassificationDataset.from_list_file(_with_a_corrupt_video(video_data, tmp_path), num_frames=4)
    with pytest.raises(VideoDecodeError, match="corrupt.mp4"):
        dataset[2]


def test_skip_bad_samples_replaces_them_deterministically_and_counts_them(video_data, tmp_path):
    list_file = _with_a_corrupt_video(video_data, tmp_path)
    options = dict(num_frames=4, image_size=32, skip_bad_samples=True, max_bad_samples=5)
    dataset = VideoClassificationDataset.from_list_file(list_file, **options)
    item = dataset[2]
    assert len(dataset.bad_samples) == 1 and "corrupt.mp4" in dataset.bad_samples[0][0]
    again = VideoClassificationDataset.from_list_file(list_file, **options)[2]
    torch.testing.assert_close(again["pixel_values"], item["pixel_values"], rtol=0, atol=0)
    assert again["labels"] == item["labels"]


def test_too_many_bad_samples_raise_a_clear_error(video_data, tmp_path):
    list_file = _with_a_corrupt_video(video_data, tmp_path)
    dataset = VideoClassificationDataset.from_list_file(
        list_file, num_frames=4, skip_bad_samples=True, max_bad_samples=0
    )
    with pytest.raises(TooManyBadSamplesError, match="max_bad_samples=0"):
        dataset[2]


def test_a_decode_past_the_timeout_is_a_bad_sample_not_a_hang(video_data):
    dataset = VideoClassificationDataset.from_list_file(
        video_data.list_file("train"), num_frames=4, decode_timeout=1e-9, skip_bad_samples=True, max_bad_samples=2
    )
    with pytest.raises(TooManyBadSamplesError, match="unreadable samples"):
        dataset[0]
    assert len(dataset.bad_samples) == 3


def test_tar_shards_are_split_between_workers_without_duplicates(tar_shards, video_data):
    dataset = TarShardVideoDataset(str(tar_shards / "train-*.tar"), video_data.root / "labels.csv", num_frames=4,
                                   image_size=32)  # fmt: skip
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=2)
    seeds = [item["sample_seed"] for item in loader]
    assert len(seeds) == len(video_data.samples["train"]) == len(set(seeds))


def test_bad_inputs_raise_typed_errors(tmp_path, video_data):
    from actionclip.data.datasets import DatasetFormatError

    with pytest.raises(DatasetFormatError, match="not found"):
        VideoClassificationDataset.from_list_file(tmp_path / "missing.txt")
    (tmp_path / "bad.txt").write_text("only_a_path\n")
    with pytest.raises(DatasetFormatError, match="bad.txt:1"):
        VideoClassificationDataset.from_list_file(tmp_path / "bad.txt")
    with pytest.raises(DatasetFormatError, match="unknown dataset format"):
        load_video_dataset("parquet", tmp_path)
    (tmp_path / "k.csv").write_text("name,id\nx,y\n")
    with pytest.raises(DatasetFormatError, match="label,youtube_id"):
        VideoClassificationDataset.from_kinetics_csv(tmp_path / "k.csv", tmp_path)


# ----------------------------------------------------------------------------------------------------------------
# Collator


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
    model = small_model(contrastive_loss="cross_entropy")
    loss = model(batch["pixel_values"], batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
    assert torch.isfinite(loss)


def test_collator_rejects_labels_outside_its_classes():
    from actionclip.errors import InvalidLabelsError

    with pytest.raises(InvalidLabelsError, match="outside"):
        ActionCLIPCollator(["run", "jump"])(_items(3))


# ----------------------------------------------------------------------------------------------------------------
# Parameter groups and evaluation


def test_parameter_groups_follow_the_paper():
    model = small_model()
    trainer = ActionCLIPTrainer(model=model, args=training_arguments("/tmp/unused", learning_rate=5e-6))
    optimizer = trainer.create_optimizer()
    groups = {group["name"]: group for group in optimizer.param_groups}
    assert set(groups) == {"text", "vision", "fusion"}
    assert groups["text"]["lr"] == pytest.approx(5e-6)
    assert groups["vision"]["lr"] == pytest.approx(5e-6)
    assert groups["fusion"]["lr"] == pytest.approx(5e-5)
    assert all(group["weight_decay"] == pytest.approx(0.2) for group in groups.values())
    assert all(group["betas"] == (0.9, 0.98) and group["eps"] == 1e-8 for group in groups.values())
    assert isinstance(optimizer, torch.optim.AdamW)
    ids = {name: {id(p) for p in group["params"]} for name, group in groups.items()}
    assert ids["fusion"] == {id(p) for p in model.fusion.parameters()}
    assert {id(p) for p in model.vision_model.parameters()} | {id(model.visual_projection.weight)} == ids["vision"]
    assert id(model.logit_scale) in ids["text"]
    assert sum(map(len, ids.values())) == len(list(model.parameters()))


def test_vision_ratio_freezing_and_no_decay_groups():
    model = small_model()
    freeze_towers(model, text=True)
    groups = actionclip_parameter_groups(model, 1e-5, 0.2, fusion_lr_ratio=10, vision_lr_ratio=0.5,
                                         weight_decay_norm_and_bias=False)  # fmt: skip
    by_name = {group["name"]: group for group in groups}
    assert by_name["vision"]["lr"] == pytest.approx(5e-6) and by_name["fusion"]["lr"] == pytest.approx(1e-4)
    assert by_name["vision/no_decay"]["weight_decay"] == 0.0
    assert [p.ndim for p in by_name["text/no_decay"]["params"]] == [0]  # only logit_scale stays trainable
    assert "text" not in by_name
    assert not any(p.requires_grad for p in model.text_model.parameters())


def test_learning_rate_warms_up_linearly_then_decays_by_cosine(video_data, tmp_path):
    train = VideoClassificationDataset.from_list_file(video_data.list_file("train"), num_frames=4, image_size=32)
    trainer = make_trainer(small_model(), train, None, tmp_path, max_steps=10, warmup_steps=0.2, learning_rate=1e-4)
    trainer.create_optimizer_and_scheduler(10)
    rates = []
    for _ in range(10):
        rates.append([group["lr"] for group in trainer.optimizer.param_groups])
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
    rates = np.array(rates)
    np.testing.assert_allclose(rates[1:, 2] / rates[1:, 0], 10.0, rtol=1e-6)  # fusion: 10x at every step
    np.testing.assert_allclose(rates[:3, 0], [0.0, 5e-5, 1e-4], rtol=1e-6)
    np.testing.assert_allclose(rates[2:, 0], 1e-4 * 0.5 * (1 + np.cos(np.pi * np.arange(8) / 8)), rtol=1e-6)


def test_evaluation_scores_are_template_ensembled_probabilities_over_all_classes(video_data, tmp_path):
    evaluation = VideoClassificationDataset.from_folder(
        video_data.root / "val", video_data.root / "labels.csv", num_frames=4, image_size=32
    )
    templates = ["a video of {}.", "{}", "a photo of action {}"]
    trainer = make_trainer(small_model(), evaluation, evaluation, tmp_path, templates=templates)
    output = trainer.predict(evaluation)
    assert output.predictions.shape == (len(evaluation), 4)
    np.testing.assert_allclose(output.predictions.sum(axis=1), 1.0, atol=1e-5)
    # The same numbers straight from the model.
    from actionclip.scoring import template_ensemble_probs
    from actionclip.tokenizer import load_clip_tokenizer

    model = trainer.model.eval()
    batch = torch.stack([evaluation[i]["pixel_values"] for i in range(len(evaluation))])
    with torch.no_grad():
        text = model.encode_label_set(evaluation.label_names, load_clip_tokenizer(), templates)
        video = torch.nn.functional.normalize(model.get_video_features(batch).pooler_output, dim=-1)
        expected = template_ensemble_probs(model.scale() * video @ text.t(), len(templates))
    np.testing.assert_allclose(output.predictions, expected.numpy(), atol=1e-5)
    assert output.metrics["test_top1_accuracy"] == pytest.approx(
        float((expected.argmax(1).numpy() == output.label_ids).mean())
    )


# ----------------------------------------------------------------------------------------------------------------
# The script


def run_script(arguments):
    sys.path.insert(0, str(REPO_ROOT / "training_scripts"))
    try:
        import run_actionclip
    finally:
        sys.path.pop(0)
    return run_actionclip.main([str(argument) for argument in arguments])


def script_arguments(tiny_clip_dir, video_data, output_dir, *extra):
    return [
        "--model_name_or_path", tiny_clip_dir, "--dataset_format", "folder", "--train_path", video_data.root / "train",
        "--eval_path", video_data.root / "val", "--class_names", video_data.root / "labels.csv", "--num_frames", "4",
        "--output_dir", output_dir, "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
        "--report_to", "none", "--use_cpu", "--disable_tqdm", "true", "--config_overrides", '{"fusion_num_layers": 1}',
        *extra,
    ]  # fmt: skip


def test_script_trains_from_a_clip_checkpoint_with_an_argument_file(tiny_clip_dir, video_data, tmp_path):
    argument_file = tmp_path / "args.json"
    argument_file.write_text(json.dumps({"num_train_epochs": 2, "learning_rate": 1e-4, "logging_steps": 1}))
    metrics = run_script([argument_file, *script_arguments(tiny_clip_dir, video_data, tmp_path / "out")])
    assert "eval_top1_accuracy" in metrics and metrics["epoch"] == 2
    assert sorted(p.name for p in (tmp_path / "out").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert not list((tmp_path / "out").glob(".tmp-*"))
    from actionclip import ActionCLIPModel
    from actionclip.processing_actionclip import ActionCLIPProcessor

    model = ActionCLIPModel.from_pretrained(tmp_path / "out")
    assert model.config.id2label[0] == video_data.labels[0] and model.config.num_frames == 4
    assert ActionCLIPProcessor.from_pretrained(tmp_path / "out").num_frames == 4
    state = json.loads((tmp_path / "out" / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"].endswith("checkpoint-" + str(state["best_global_step"]))


def test_script_trains_a_small_model_from_scratch_with_config_overrides(video_data, tmp_path):
    overrides = json.dumps(
        {"text_config": TEXT, "vision_config": VISION, "projection_dim": 64, "fusion_num_layers": 1}
    )
    arguments = script_arguments("x", video_data, tmp_path, "--max_steps", "1", "--eval_strategy", "no",
                                 "--save_strategy", "no", "--load_best_model_at_end", "false")  # fmt: skip
    arguments = arguments[2:]  # no --model_name_or_path
    arguments[arguments.index("--config_overrides") + 1] = overrides
    metrics = run_script(arguments)
    assert np.isfinite(metrics["train_loss"])


class RecordingHfApi:
    """Stands in for the Hub at huggingface_hub's `HfApi`: `create_repo` answers locally and `upload_folder` records
    the files it would commit (after the same allow/ignore filtering) instead of sending them."""

    def __init__(self):
        self.commits = []

    def create_repo(self, api, repo_id, **kwargs):
        from huggingface_hub import RepoUrl

        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, api, *, repo_id, folder_path, path_in_repo=None, run_as_future=False, **kwargs):
        from concurrent.futures import Future

        from huggingface_hub import CommitInfo
        from huggingface_hub.utils import filter_repo_objects

        folder = Path(folder_path)
        relative = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        kept = filter_repo_objects(relative, allow_patterns=kwargs.get("allow_patterns"),
                                   ignore_patterns=kwargs.get("ignore_patterns"))  # fmt: skip
        prefix = f"{path_in_repo.strip('/')}/" if path_in_repo else ""
        files = {prefix + name: (folder / name).read_bytes() for name in kept}
        self.commits.append({"repo_id": repo_id, "files": files, "message": kwargs.get("commit_message")})
        info = CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/{len(self.commits)}", commit_message="",
            commit_description="", oid=f"{len(self.commits):040d}", pr_url=None,
        )  # fmt: skip
        if run_as_future:
            future = Future()
            future.set_result(info)
            return future
        return info


def test_push_to_hub_commits_everything_from_pretrained_needs(tiny_clip_dir, video_data, tmp_path, monkeypatch):
    from huggingface_hub import HfApi

    recorder = RecordingHfApi()
    monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kw: recorder.create_repo(api, repo_id, **kw))
    monkeypatch.setattr(HfApi, "upload_folder", lambda api, **kw: recorder.upload_folder(api, **kw))
    # Older transformers call the module-level functions (methods bound to huggingface_hub's default HfApi).
    import huggingface_hub
    import transformers.trainer

    for module in (huggingface_hub, transformers.trainer):
        if hasattr(module, "upload_folder"):
            monkeypatch.setattr(module, "upload_folder", lambda **kw: recorder.upload_folder(None, **kw))
        if hasattr(module, "create_repo"):
            monkeypatch.setattr(module, "create_repo", lambda repo_id, **kw: recorder.create_repo(None, repo_id, **kw))
    arguments = script_arguments(tiny_clip_dir, video_data, tmp_path / "out", "--max_steps", "2", "--eval_strategy",
                                 "no", "--save_strategy", "no", "--load_best_model_at_end", "false",
                                 "--push_to_hub", "--hub_model_id", "someone/tiny-actionclip")  # fmt: skip
    run_script(arguments)
    final = recorder.commits[-1]
    assert final["repo_id"] == "someone/tiny-actionclip"
    pushed = tmp_path / "pushed"
    for name, content in final["files"].items():
        (pushed / name).parent.mkdir(parents=True, exist_ok=True)
        (pushed / name).write_bytes(content)
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer_config.json", "README.md"} <= set(
        final["files"]
    )
    from actionclip import ActionCLIPModel
    from actionclip.processing_actionclip import ActionCLIPProcessor

    model = ActionCLIPModel.from_pretrained(pushed)
    trained = ActionCLIPModel.from_pretrained(tmp_path / "out")
    for (name, value), other in zip(model.state_dict().items(), trained.state_dict().values()):
        torch.testing.assert_close(value, other, rtol=0, atol=0, msg=name)
    processor = ActionCLIPProcessor.from_pretrained(pushed)
    assert processor.tokenizer("a video")["input_ids"][0] == 49406
    card = final["files"]["README.md"].decode()
    assert "actionclip" in card
    from actionclip.evaluation.model_card import check_model_card

    check_model_card(card)
