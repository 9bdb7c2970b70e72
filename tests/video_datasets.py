"""One small set of real encoded videos (4 classes, 32x32, 8 frames) and the same videos in every dataset format
the library reads; the fixtures that write them are in conftest.py."""

from pathlib import Path

from actionclip.data.datasets import VideoClassificationDataset, load_video_dataset
from actionclip.data.tar_shards import TarShardVideoDataset

NUM_FRAMES = 4
CLASS_FOLDERS = ["RedLeft", "RedRight", "BlueLeft", "BlueRight"]
FORMATS = ["folder", "list", "frames", "split_files", "kinetics_csv", "tar", "hf_videofolder"]


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
