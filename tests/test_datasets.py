"""Datasets (`actionclip.data.datasets`): every format on the same real videos, seeded items, decoding in workers,
bad samples skipped or refused, typed errors."""

import os

import pytest
import torch
from video_datasets import FORMATS, NUM_FRAMES, datasets_in_format

from actionclip.data.collator import ActionCLIPCollator
from actionclip.data.datasets import VideoClassificationDataset, load_video_dataset
from actionclip.data.tar_shards import TarShardVideoDataset
from actionclip.errors import DatasetFormatError, InvalidLabelsError, TooManyBadSamplesError, VideoDecodeError


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
        video_data.list_file("train"), num_frames=4, timeout=1e-9, skip_bad_samples=True, max_bad_samples=2
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


def test_class_names_given_as_a_list_are_checked_as_a_label_file_is(video_data, tmp_path):
    # One check of a class-name list: an empty name is refused whether it comes from a file or from a list.
    labels_file = tmp_path / "labels.csv"
    labels_file.write_text("id,name\n0,red left\n1,\n2,blue left\n3,blue right\n", encoding="utf-8")
    names = ["red left", "", "blue left", "blue right"]
    with pytest.raises(InvalidLabelsError, match="empty class name"):
        VideoClassificationDataset.from_list_file(video_data.list_file("train"), labels_file, num_frames=NUM_FRAMES)
    with pytest.raises(InvalidLabelsError, match="empty class name"):
        VideoClassificationDataset.from_list_file(video_data.list_file("train"), names, num_frames=NUM_FRAMES)
