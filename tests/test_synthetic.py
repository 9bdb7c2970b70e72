"""The synthetic action dataset: what the clips show, order-only pairs, the zero-shot split, the files written."""

import csv
import dataclasses
import hashlib
import json
from pathlib import Path

import av
import datasets
import numpy as np
import pytest

from actionclip.data.synthetic import (
    COLORS,
    MOTIONS,
    ActionLabel,
    InvalidSyntheticConfigError,
    SyntheticActionConfig,
    SyntheticDataset,
    generate_synthetic_dataset,
    novelty,
    order_pairs_of,
    render_clip,
    split_compositions,
    write_clip,
)
from actionclip.errors import InvalidLabelsError

SMALL = SyntheticActionConfig(
    colors=("red", "green"),
    shapes=("square", "circle"),
    motions=("moving left", "moving right", "growing", "shrinking"),
    num_frames=8,
    size=(48, 48),
    videos_per_class=2,
    val_videos_per_class=1,
    zeroshot_videos_per_class=1,
    seed=7,
)
NOISELESS = SyntheticActionConfig(noise=0.0)
ORDER_PAIRS = [
    ("moving right", "moving left"),
    ("moving down", "moving up"),
    ("growing", "shrinking"),
    ("rotating clockwise", "rotating counter-clockwise"),
    ("fading in", "fading out"),
]


def decode(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def object_mask(frames: np.ndarray, color: str) -> np.ndarray:
    """(T, H, W) pixels close to the named colour (noise-free renders)."""
    distance = np.abs(frames.astype(np.int32) - np.asarray(COLORS[color])).max(axis=-1)
    return distance <= 20


def file_digests(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> SyntheticDataset:
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), SMALL)


# ---------------------------------------------------------------------------------------------------------------
# Rendering


def test_render_clip_returns_uint8_frames_of_the_configured_shape():
    frames = render_clip("a red square moving left", SMALL, seed=0)
    assert frames.dtype == np.uint8
    assert frames.shape == (8, 48, 48, 3)


def test_render_clip_is_deterministic_given_the_seed_and_varies_with_it():
    first = render_clip("a blue triangle growing", seed=3)
    assert np.array_equal(first, render_clip("a blue triangle growing", seed=3))
    assert not np.array_equal(first, render_clip("a blue triangle growing", seed=4))


@pytest.mark.parametrize("forward, backward", ORDER_PAIRS)
def test_order_pair_member_is_the_time_reversed_clip_of_its_partner(forward, backward):
    for shape in ("square", "circle", "triangle"):
        a = render_clip(f"a green {shape} {forward}", seed=11)
        b = render_clip(f"a green {shape} {backward}", seed=11)
        assert np.array_equal(b, a[::-1])
        assert not np.array_equal(a, b)  # the order does differ


def test_order_pair_clips_have_equal_mean_pooled_frames():
    # What a frame-order-blind model sees: the average over time is identical for both members of a pair.
    right = render_clip("a red circle moving right", seed=5).astype(np.float64)
    left = render_clip("a red circle moving left", seed=5).astype(np.float64)
    assert np.allclose(right.mean(axis=0), left.mean(axis=0))


def test_moving_right_and_left_move_the_object_horizontally():
    right = object_mask(render_clip("a red square moving right", NOISELESS, seed=1), "red")
    left = object_mask(render_clip("a red square moving left", NOISELESS, seed=2), "red")
    xs = np.arange(right.shape[2])
    right_x = [(mask.sum(axis=0) * xs).sum() / mask.sum() for mask in right]
    left_x = [(mask.sum(axis=0) * xs).sum() / mask.sum() for mask in left]
    assert np.all(np.diff(right_x) > 0) and right_x[-1] - right_x[0] > 10
    assert np.all(np.diff(left_x) < 0) and left_x[0] - left_x[-1] > 10


def test_moving_down_moves_the_object_down_the_image():
    mask = object_mask(render_clip("a blue circle moving down", NOISELESS, seed=3), "blue")
    ys = np.arange(mask.shape[1])
    center_y = [(m.sum(axis=1) * ys).sum() / m.sum() for m in mask]
    assert np.all(np.diff(center_y) > 0)


def test_growing_enlarges_and_shrinking_reduces_the_object():
    growing = object_mask(render_clip("a green triangle growing", NOISELESS, seed=4), "green").sum(axis=(1, 2))
    shrinking = object_mask(render_clip("a green triangle shrinking", NOISELESS, seed=9), "green").sum(axis=(1, 2))
    assert growing[-1] > 2.5 * growing[0]
    assert shrinking[0] > 2.5 * shrinking[-1]


def test_fading_in_brings_the_object_colour_in_over_time():
    frames = render_clip("a yellow square fading in", NOISELESS, seed=6).astype(np.float64)
    changing = np.abs(frames[-1] - frames[0]).sum(axis=-1) > 30  # the object's pixels (the background is static)
    assert changing.sum() > 50
    distance_to_yellow = [np.abs(frame[changing] - COLORS["yellow"]).mean() for frame in frames]
    assert np.all(np.diff(distance_to_yellow) < 0)
    assert distance_to_yellow[0] > 3 * distance_to_yellow[-1]


def test_rotating_clockwise_turns_the_circle_marker_clockwise_on_screen():
    frames = render_clip("a red circle rotating clockwise", NOISELESS, seed=8).astype(np.int32)
    angles = []
    for frame in frames:
        disc = np.abs(frame - np.asarray(COLORS["red"])).max(axis=-1) <= 20
        dot = np.abs(frame - (0.3 * np.asarray(COLORS["red"])).round()).max(axis=-1) <= 20
        dy, dx = np.argwhere(dot).mean(axis=0) - np.argwhere(disc | dot).mean(axis=0)
        angles.append(np.arctan2(dy, dx))
    steps = np.angle(np.exp(1j * np.diff(angles)))  # wrapped to (-pi, pi]
    # Image y points down: a growing atan2(dy, dx) is clockwise as displayed.
    assert np.all(steps > 0)


def test_object_has_the_named_colour():
    frames = render_clip("a blue square standing still", NOISELESS, seed=2)
    mask = object_mask(frames, "blue")
    assert mask.sum() > 8 * 50  # present in every frame
    mean_colour = frames[mask].mean(axis=0)
    assert mean_colour[2] > mean_colour[0] + 100 and mean_colour[2] > mean_colour[1] + 100


def test_unknown_words_raise_invalid_labels_error():
    with pytest.raises(InvalidLabelsError, match="colour"):
        render_clip("a pink square moving left")
    with pytest.raises(InvalidLabelsError):
        SyntheticActionConfig(motions=("jumping",)).validate()


@pytest.mark.parametrize(
    "overrides",
    [{"size": (63, 64)}, {"num_frames": 2}, {"zeroshot_fraction": 1.0}, {"qp": 60}, {"videos_per_class": -1}],
)
def test_unusable_numbers_raise_invalid_config_error(overrides):
    with pytest.raises(InvalidSyntheticConfigError):
        SyntheticActionConfig(**overrides).validate()


def test_label_names_parse_back_to_their_composition():
    for name in ("a red square moving left", "a cyan triangle rotating counter-clockwise", "a_blue_circle_fading_out"):
        label = ActionLabel.parse(name)
        assert label.name == name.replace("_", " ")


def test_order_pairs_of_finds_exactly_the_time_reversed_partners():
    labels = [
        "a red square moving left",
        "a red square growing",
        "a red circle moving right",
        "a red square moving right",
        "a red square shrinking",
        "a red square standing still",
    ]
    assert order_pairs_of(labels) == [(0, 3), (1, 4)]


# ---------------------------------------------------------------------------------------------------------------
# Zero-shot split


def test_zero_shot_classes_are_new_combinations_of_words_seen_in_training():
    config = SyntheticActionConfig(motions=tuple(MOTIONS)[:8], zeroshot_fraction=0.3, seed=1)
    seen, held_out = split_compositions(config)
    assert held_out and not set(seen) & set(held_out)
    assert len(seen) + len(held_out) == 3 * 3 * 8
    for label in held_out:
        assert any((x.color, x.shape) == (label.color, label.shape) for x in seen)
        assert any((x.color, x.motion) == (label.color, label.motion) for x in seen)
        assert any((x.shape, x.motion) == (label.shape, label.motion) for x in seen)


def test_both_members_of_an_order_pair_are_held_out_together():
    seen, held_out = split_compositions(SyntheticActionConfig(zeroshot_fraction=0.3))
    names = [label.name for label in held_out]
    assert len(order_pairs_of(names)) * 2 == len(names)


def test_zero_shot_split_depends_on_the_seed_only():
    def held(seed):
        return split_compositions(SyntheticActionConfig(seed=seed, videos_per_class=99))[1]

    assert held(0) == held(0)
    assert any(held(0) != held(seed) for seed in (1, 2, 3))


def test_infeasible_zero_shot_split_raises():
    config = SyntheticActionConfig(colors=("red",), shapes=("square",), motions=("moving left", "moving right"))
    with pytest.raises(InvalidSyntheticConfigError, match="cannot hold out"):
        split_compositions(config)


def test_zero_fraction_holds_nothing_out():
    seen, held_out = split_compositions(SyntheticActionConfig(zeroshot_fraction=0.0))
    assert held_out == [] and len(seen) == 36


BASE_TO_NOVEL = SyntheticActionConfig(
    colors=("red", "blue"),
    shapes=("circle", "square", "triangle"),
    motions=("moving left", "moving right", "growing"),
    novel_appearances=("red square",),
    novel_motions=("growing",),
)


def test_base_to_novel_split_holds_out_every_class_new_in_appearance_motion_or_both():
    seen, held_out = split_compositions(BASE_TO_NOVEL)
    assert len(seen) == 5 * 2 and len(held_out) == 2 + 5 + 1
    assert all(x.appearance != "red square" and x.motion != "growing" for x in seen)
    kinds = [novelty(x, BASE_TO_NOVEL) for x in held_out]
    assert sorted(kinds) == ["appearance"] * 2 + ["both"] + ["motion"] * 5
    assert novelty("a red square growing", BASE_TO_NOVEL) == "both"
    assert novelty("a blue circle moving left", BASE_TO_NOVEL) is None


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"novel_appearances": ("purple square",)}, InvalidLabelsError),
        ({"novel_motions": ("shrinking",)}, InvalidLabelsError),
        ({"novel_motions": ("moving left", "moving right", "growing")}, InvalidSyntheticConfigError),
    ],
)
def test_base_to_novel_split_refuses_unknown_words_and_an_empty_base(overrides, error):
    with pytest.raises(error):
        dataclasses.replace(BASE_TO_NOVEL, **overrides).validate()


def test_base_to_novel_split_round_trips_through_the_metadata(tmp_path):
    config = dataclasses.replace(
        BASE_TO_NOVEL,
        size=(16, 16),
        num_frames=4,
        videos_per_class=1,
        val_videos_per_class=0,
        zeroshot_videos_per_class=1,
    )
    written = generate_synthetic_dataset(tmp_path, config)
    loaded = SyntheticDataset.load(tmp_path)
    assert loaded.config == config and loaded.zeroshot_labels == written.zeroshot_labels
    assert "a red square moving left" in loaded.zeroshot_labels and "a red circle moving left" in loaded.labels


# ---------------------------------------------------------------------------------------------------------------
# Files


def test_generated_dataset_writes_h264_mp4_files_listed_in_the_list_files(small_dataset):
    root = small_dataset.root
    for split, per_class in (("train", 2), ("val", 1), ("zeroshot", 1)):
        lines = (root / f"{split}.txt").read_text().splitlines()
        names = small_dataset.label_names(split)
        assert len(lines) == per_class * len(names) == len(small_dataset.samples[split])
        for line in lines:
            relative, label = line.rsplit(" ", 1)
            assert relative.startswith(f"{split}/") and relative.endswith(".mp4")
            assert Path(relative).parent.name == names[int(label)].replace(" ", "_")
            assert (root / relative).is_file()
    with av.open(str(root / small_dataset.samples["train"][0][0])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.height, stream.codec_context.width) == (48, 48)
        assert sum(1 for _ in container.decode(video=0)) == 8


def test_label_csvs_and_metadata_describe_the_splits(small_dataset):
    root = small_dataset.root
    rows = list(csv.DictReader((root / "labels.csv").open()))
    assert [r["name"] for r in rows] == small_dataset.labels and [int(r["id"]) for r in rows] == list(range(12))
    zs_rows = list(csv.DictReader((root / "zeroshot_labels.csv").open()))
    assert [r["name"] for r in zs_rows] == small_dataset.zeroshot_labels and len(zs_rows) == 4
    metadata = json.loads((root / "metadata.json").read_text())
    assert metadata["seed"] == 7 and metadata["config"]["size"] == [48, 48]
    assert metadata["counts"] == {"train": 24, "val": 12, "zeroshot": 4}
    assert metadata["order_pairs"]["train"] == [list(p) for p in small_dataset.order_pairs("train")]
    assert metadata["encoding"]["gop_size"] == 1


def test_order_pairs_name_the_time_reversed_classes(small_dataset):
    for split in ("train", "zeroshot"):
        names = small_dataset.label_names(split)
        pairs = small_dataset.order_pairs(split)
        assert pairs
        for i, j in pairs:
            a, b = ActionLabel.parse(names[i]), ActionLabel.parse(names[j])
            assert (a.color, a.shape) == (b.color, b.shape)
            assert {a.motion, b.motion} in ({"moving left", "moving right"}, {"growing", "shrinking"})
    assert len(small_dataset.order_pairs("train")) == 6


def test_load_reads_back_the_written_dataset(small_dataset):
    loaded = SyntheticDataset.load(small_dataset.root)
    assert loaded.config == SMALL
    assert loaded.labels == small_dataset.labels and loaded.zeroshot_labels == small_dataset.zeroshot_labels
    assert loaded.samples == small_dataset.samples


def test_encoded_order_pair_clips_decode_to_exactly_reversed_frames(tmp_path):
    # Intra-only constant-quantiser encoding keeps the frame set identical after H.264, not just before.
    right = decode(write_clip(tmp_path / "right.mp4", "a blue square moving right", SMALL, seed=21))
    left = decode(write_clip(tmp_path / "left.mp4", "a blue square moving left", SMALL, seed=21))
    assert right.shape == (8, 48, 48, 3)
    assert np.array_equal(left, right[::-1])
    assert np.abs(right.astype(int) - render_clip("a blue square moving right", SMALL, seed=21)).mean() < 8


def test_same_seed_gives_the_same_bytes_whatever_the_worker_count(tmp_path, small_dataset):
    again = generate_synthetic_dataset(tmp_path / "again", SMALL, num_workers=2)
    assert file_digests(again.root) == file_digests(small_dataset.root)


def test_another_seed_gives_other_clips(tmp_path, small_dataset):
    other = generate_synthetic_dataset(tmp_path / "other", dataclasses.replace(SMALL, seed=8))
    ours, theirs = file_digests(small_dataset.root), file_digests(other.root)
    common = [name for name in set(ours) & set(theirs) if name.endswith(".mp4")]
    assert common and all(ours[name] != theirs[name] for name in common)


def test_existing_dataset_is_not_overwritten_without_the_flag(small_dataset):
    with pytest.raises(FileExistsError):
        generate_synthetic_dataset(small_dataset.root, SMALL)


def test_class_folders_load_with_datasets_videofolder(small_dataset, tmp_path):
    loaded = datasets.load_dataset("videofolder", data_dir=str(small_dataset.root), cache_dir=str(tmp_path))
    assert loaded["train"].num_rows == 24 and loaded["validation"].num_rows == 12
    folder_names = loaded["train"].features["label"].names
    assert sorted(folder_names) == sorted(name.replace(" ", "_") for name in small_dataset.labels)
