"""Shared test fixtures: where the project's shared data lives, a machine without network, and small real inputs
(one set of encoded videos in every dataset format)."""

import os
import socket
from pathlib import Path

import pytest
from tiny_models import make_tiny_clip_dir
from video_datasets import CLASS_FOLDERS, make_video_data

from actionclip.data.tar_shards import write_tar_shards
from actionclip.video_clips import ClipSpec
from actionclip.video_processing_actionclip import ActionCLIPVideoProcessor

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
REFERENCE_DIR = SHARED_DIR / "reference" / "original_actionclip"
LABELS_DIR = SHARED_DIR / "data" / "labels"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The reference outputs of the authors' code (see its README). A clone from a public host has no shared/
    folder beside it: the tests that compare with the authors' outputs skip there (CI's .ci/run refuses to run
    without it, so they never skip in CI)."""
    if not REFERENCE_DIR.is_dir():
        pytest.skip(f"needs the authors' reference outputs in {REFERENCE_DIR} (the project's shared/ folder)")
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def reference_inputs(reference_dir):
    import torch

    return torch.load(reference_dir / "inputs.pt", weights_only=True, map_location="cpu")


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails, as it does on a machine without internet."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise OSError("network access attempted during an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# ----------------------------------------------------------------------------------------------------------------
# One set of real videos, written once per test module, in every format (tests/video_datasets.py)


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


# ----------------------------------------------------------------------------------------------------------------
# One tiny run of `actionclip demo` per session (a few videos, one epoch; its numbers mean nothing), for the tests of
# what the demo writes and of the README's commands on it


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory):
    """``(folder, report)``: the demo written into ``folder / "demo_output"``, as `make demo` writes it beside the
    README."""
    import dataclasses

    from actionclip.demo.profiles import PROFILES
    from actionclip.demo.run import run_demo

    full = PROFILES["full"]
    data = {**full.data, "videos_per_class": 2, "val_videos_per_class": 1, "zeroshot_videos_per_class": 1}
    pretraining = {
        **full.pretraining,
        "images": {"num_images": 64, "num_held_out_images": 8},
        "steps": 2,
        "batch_size": 16,
    }
    retention = {
        **full.retention,
        "data": {
            **full.retention["data"],
            # The full profile's novel classes are new in colour only; a held-out motion too puts every kind of
            # novelty (appearance, motion, both) through the table's plumbing.
            "novel_motions": ("growing",),
            "videos_per_class": 1,
            "val_videos_per_class": 1,
            "zeroshot_videos_per_class": 1,
        },
        "training": {**full.retention["training"], "num_train_epochs": 1},
        "wise_ft_alphas": (0.0, 1.0),
        "runs": 2,
    }
    profile = dataclasses.replace(
        full,
        name="tiny",
        data=data,
        training={**full.training, "num_train_epochs": 1},
        pretraining=pretraining,
        retention=retention,
    )
    folder = tmp_path_factory.mktemp("demo")
    return folder, run_demo(folder / "demo_output", profile, seed=0, progress=False)


# The video processor and clip spec of the video-input tests (test_video_clips, test_video_decode_pool).
@pytest.fixture(scope="module")
def video_processor():
    return ActionCLIPVideoProcessor(crop_size=32)  # resize to 36, crop 32


@pytest.fixture(scope="module")
def spec(video_processor):
    return ClipSpec.for_video_processor(video_processor, 4)
