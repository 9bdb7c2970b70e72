"""Evaluation protocols: label lists, official split files, class/video selection per split, result summaries."""

import json
import math

import numpy as np
import pytest

from actionclip.data.labels import available_label_lists, load_label_names, read_label_file
from actionclip.data.splits import load_hmdb51_splits, load_ucf101_splits, read_list_file
from actionclip.data.synthetic import SyntheticActionConfig, generate_synthetic_dataset
from actionclip.data.video_writer import write_video
from actionclip.errors import InvalidLabelsError, InvalidProtocolError, InvalidSplitFileError
from actionclip.evaluation.protocols import (
    ProtocolResult,
    aggregate_metrics,
    base_to_novel,
    few_shot_protocol,
    few_shot_subset,
    full_class_zero_shot,
    half_class_zero_shot,
    hmdb51_zero_shot,
    kinetics600_novel_zero_shot,
    ucf101_zero_shot,
    write_few_shot_lists,
)

TINY_FRAMES = np.zeros((2, 16, 16, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    config = SyntheticActionConfig(
        colors=("red", "green"),
        shapes=("square", "circle"),
        motions=("moving left", "moving right", "growing", "shrinking"),
        num_frames=4,
        size=(32, 32),
        videos_per_class=4,
        val_videos_per_class=2,
        zeroshot_videos_per_class=1,
    )
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), config)


@pytest.fixture(scope="module")
def ucf_dir(tmp_path_factory):
    """UCF101-style split files for 3 classes, 4 videos each, and the videos themselves."""
    root = tmp_path_factory.mktemp("ucf")
    classes = ["ApplyEyeMakeup", "Archery", "YoYo"]
    (root / "classInd.txt").write_text("".join(f"{i} {name}\r\n" for i, name in enumerate(classes, start=1)))
    for k in (1, 2, 3):
        train, test = [], []
        for i, name in enumerate(classes):
            for group in range(1, 5):
                video = f"{name}/v_{name}_g{group:02d}_c01.avi"
                # Split k tests group k: every video is tested in exactly one of the first three splits.
                (test if group == k else train).append((video, i + 1))
        (root / f"trainlist0{k}.txt").write_text("".join(f"{v} {label}\r\n" for v, label in train))
        (root / f"testlist0{k}.txt").write_text("".join(f"{v}\r\n" for v, _ in test))
    for name in classes:
        for group in range(1, 5):
            path = root / "videos" / name / f"v_{name}_g{group:02d}_c01.avi"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(path, TINY_FRAMES, codec="mpeg4")
    return root


HMDB_CLASSES = ["kick", "kick_ball", "brush_hair"]


@pytest.fixture(scope="module")
def hmdb_dir(tmp_path_factory):
    """HMDB51-style split files for 3 classes x 3 videos (1 train, 2 test, 0 unused, rotating per split)."""
    root = tmp_path_factory.mktemp("hmdb")
    for k in (1, 2, 3):
        for cls in HMDB_CLASSES:
            marks = [(k - 1 + v) % 3 for v in range(3)]
            lines = "".join(f"{cls}_{v}.avi {mark} \r\n" for v, mark in enumerate(marks))
            (root / f"{cls}_test_split{k}.txt").write_text(lines)
    for cls in HMDB_CLASSES:
        for v in range(3):
            path = root / "videos" / cls / f"{cls}_{v}.avi"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_video(path, TINY_FRAMES, codec="mpeg4")
    return root


# ---------------------------------------------------------------------------------------------------------------
# Label lists


@pytest.mark.parametrize(
    "name, size, first",
    [
        ("kinetics400", 400, "abseiling"),
        ("kinetics600", 600, "abseiling"),
        ("hmdb51", 51, "brush hair"),
        ("ucf101", 101, "ApplyEyeMakeup"),
        ("k600_novel_split1", 160, "acting in play"),
        ("k600_novel_split3", 160, "adjusting glasses"),
    ],
)
def test_packaged_label_lists_load_by_name(name, size, first):
    names = load_label_names(name)
    assert len(names) == len(set(names)) == size and names[0] == first
    assert name in available_label_lists()


def test_novel_subsets_are_kinetics600_classes_outside_kinetics400():
    k400, k600 = set(load_label_names("kinetics400")), set(load_label_names("kinetics600"))
    subsets = [set(load_label_names(f"k600_novel_split{k}")) for k in (1, 2, 3)]
    for subset in subsets:
        assert subset <= k600 and not subset & k400
    assert subsets[0] != subsets[1] != subsets[2]


def test_user_csv_is_read_in_id_order_and_txt_line_by_line(tmp_path):
    (tmp_path / "labels.csv").write_text('id,name\n1,"jumping, high"\n0,running\n')
    (tmp_path / "labels.txt").write_text("running\n\njumping high\n")
    assert load_label_names(tmp_path / "labels.csv") == ["running", "jumping, high"]
    assert load_label_names(str(tmp_path / "labels.txt")) == ["running", "jumping high"]


@pytest.mark.parametrize(
    "content",
    ["name\nrunning\n", "id,name\n0,a\n2,b\n", "id,name\n0,a\n1,a\n", "id,name\nx,a\n", "id,name\n"],
)
def test_malformed_label_csv_raises_invalid_labels_error(tmp_path, content):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InvalidLabelsError):
        read_label_file(path)


def test_unknown_label_list_name_raises_and_lists_the_packaged_ones():
    with pytest.raises(InvalidLabelsError, match="kinetics400"):
        load_label_names("kinetics700")


# ---------------------------------------------------------------------------------------------------------------
# Official split files


def test_ucf101_splits_give_zero_based_labels_and_the_listed_videos(ucf_dir):
    splits = load_ucf101_splits(ucf_dir)
    assert [s.name for s in splits] == ["split1", "split2", "split3"]
    split = splits[1]
    assert split.class_names == ("ApplyEyeMakeup", "Archery", "YoYo")
    assert len(split.train) == 9 and len(split.test) == 3
    assert ("Archery/v_Archery_g02_c01.avi", 1) in split.test
    assert ("YoYo/v_YoYo_g01_c01.avi", 2) in split.train
    for video, _ in split.train + split.test:
        assert (ucf_dir / "videos" / video).is_file()


def test_ucf101_label_contradicting_its_folder_raises_with_the_line(ucf_dir, tmp_path):
    for name in ("classInd.txt", "testlist01.txt"):
        (tmp_path / name).write_bytes((ucf_dir / name).read_bytes())
    (tmp_path / "trainlist01.txt").write_text("Archery/v_Archery_g02_c01.avi 1\nYoYo/v_YoYo_g02_c01.avi 1\n")
    with pytest.raises(InvalidSplitFileError, match="line 1"):
        load_ucf101_splits(tmp_path, splits=(1,))


def test_ucf101_video_outside_known_classes_raises(ucf_dir, tmp_path):
    for name in ("classInd.txt", "trainlist01.txt"):
        (tmp_path / name).write_bytes((ucf_dir / name).read_bytes())
    (tmp_path / "testlist01.txt").write_text("Archery/v_Archery_g01_c01.avi\nSkiing/v_Skiing_g01_c01.avi\n")
    with pytest.raises(InvalidSplitFileError, match="line 2"):
        load_ucf101_splits(tmp_path, splits=(1,))


def test_hmdb51_splits_use_marks_1_for_train_2_for_test_and_skip_0(hmdb_dir):
    splits = load_hmdb51_splits(hmdb_dir)
    # Not all 51 classes: the order of the sorted split-file names (kick_ball_... before kick_...).
    assert splits[0].class_names == ("brush hair", "kick ball", "kick")
    split1 = splits[0]  # video v has mark v in split 1
    assert split1.train == (
        ("brush_hair/brush_hair_1.avi", 0),
        ("kick_ball/kick_ball_1.avi", 1),
        ("kick/kick_1.avi", 2),
    )
    assert split1.test == (
        ("brush_hair/brush_hair_2.avi", 0),
        ("kick_ball/kick_ball_2.avi", 1),
        ("kick/kick_2.avi", 2),
    )
    tested = {video for split in splits for video, _ in split.test}
    assert len(tested) == 9  # each video is tested in exactly one split
    for video in tested:
        assert (hmdb_dir / "videos" / video).is_file()


def test_hmdb51_default_class_order_matches_the_packaged_list(tmp_path):
    names = load_label_names("hmdb51")
    for name in reversed(names):
        (tmp_path / f"{name.replace(' ', '_')}_test_split1.txt").write_text("a.avi 2\n")
    assert list(load_hmdb51_splits(tmp_path, splits=(1,))[0].class_names) == names


def test_hmdb51_bad_mark_raises(hmdb_dir, tmp_path):
    for cls in HMDB_CLASSES:
        (tmp_path / f"{cls}_test_split1.txt").write_bytes((hmdb_dir / f"{cls}_test_split1.txt").read_bytes())
    (tmp_path / "kick_test_split1.txt").write_text("a.avi 1\nb.avi 3\n")
    with pytest.raises(InvalidSplitFileError, match="line 2"):
        load_hmdb51_splits(tmp_path, splits=(1,))


# ---------------------------------------------------------------------------------------------------------------
# Zero-shot protocols


def test_official_zero_shot_uses_all_classes_and_each_splits_test_videos(ucf_dir, hmdb_dir):
    ucf = ucf101_zero_shot(ucf_dir)
    assert [len(s.class_names) for s in ucf.splits] == [3, 3, 3]
    assert [{v for v, _ in s.videos} for s in ucf.splits] == [
        {f"{c}/v_{c}_g0{k}_c01.avi" for c in ("ApplyEyeMakeup", "Archery", "YoYo")} for k in (1, 2, 3)
    ]
    hmdb = hmdb51_zero_shot(hmdb_dir, class_names=["brush hair", "kick", "kick ball"])
    assert hmdb.splits[0].class_names == ("brush hair", "kick", "kick ball")
    assert ("kick_ball/kick_ball_2.avi", 2) in hmdb.splits[0].videos
    assert all(not s.train_videos for s in hmdb.splits)


def test_kinetics600_novel_splits_keep_only_subset_classes_relabelled():
    k600 = load_label_names("kinetics600")
    videos = [(f"val/{k600[i].replace(' ', '_')}/{v}.mp4", i) for i in range(len(k600)) for v in range(2)]
    protocol = kinetics600_novel_zero_shot(videos)
    assert [s.name for s in protocol.splits] == ["split1", "split2", "split3"]
    for k, split in enumerate(protocol.splits, start=1):
        subset = load_label_names(f"k600_novel_split{k}")
        assert list(split.class_names) == subset
        assert len(split.videos) == 2 * 160
        for video, label in split.videos:
            assert video.split("/")[1] == subset[label].replace(" ", "_")


def test_kinetics600_novel_subset_naming_an_unknown_class_raises():
    with pytest.raises(InvalidProtocolError, match="not in class_names"):
        kinetics600_novel_zero_shot([("a.mp4", 0)], class_names=["a", "b"], subsets=[["a", "c"]])


def test_half_class_subsets_have_half_the_classes_and_only_their_videos(synthetic):
    videos, names = synthetic.samples["val"], synthetic.labels
    protocol = half_class_zero_shot(videos, names, seed=3)
    assert len(protocol.splits) == 10
    for split in protocol.splits:
        assert len(split.class_names) == len(names) // 2
        assert len(split.videos) == 2 * len(split.class_names)
        for video, label in split.videos:
            assert video.split("/")[1] == split.class_names[label].replace(" ", "_")
            assert (synthetic.root / video).is_file()
    assert len({s.class_names for s in protocol.splits}) > 1


def test_half_class_subsets_repeat_with_the_seed_and_change_with_another():
    names = [f"class {i}" for i in range(40)]
    videos = [(f"{i}.mp4", i) for i in range(40)]

    def subsets(seed):
        return [s.class_names for s in half_class_zero_shot(videos, names, seed=seed).splits]

    assert subsets(0) == subsets(0)
    assert subsets(0) != subsets(1)
    # Independent of the order the videos come in.
    shuffled = [s.class_names for s in half_class_zero_shot(videos[::-1], names, seed=0).splits]
    assert shuffled == subsets(0)


def test_full_class_is_one_split_with_everything(synthetic):
    protocol = full_class_zero_shot(synthetic.samples["val"], synthetic.labels)
    assert len(protocol.splits) == 1
    assert protocol.splits[0].videos == tuple(synthetic.samples["val"])


def test_base_to_novel_partitions_classes_and_trains_on_base_only(synthetic):
    names = synthetic.labels
    protocol = base_to_novel(synthetic.samples["train"], synthetic.samples["val"], names, shots=2, seed=1)
    base, novel = protocol.splits
    assert set(base.class_names).isdisjoint(novel.class_names)
    assert set(base.class_names) | set(novel.class_names) == set(names)
    assert len(base.class_names) == len(names) // 2
    assert len(base.train_videos) == 2 * len(base.class_names) and not novel.train_videos
    for split in (base, novel):
        for video, label in split.videos + split.train_videos:
            assert video.split("/")[1] == split.class_names[label].replace(" ", "_")
    other = base_to_novel(synthetic.samples["train"], synthetic.samples["val"], names, seed=2)
    assert other.splits[0].class_names != base.class_names


def test_base_to_novel_accepts_given_base_classes(synthetic):
    names = synthetic.labels
    protocol = base_to_novel([], synthetic.samples["val"], names, base_classes=[names[3], names[0]])
    assert protocol.splits[0].class_names == (names[0], names[3])
    assert len(protocol.splits[1].class_names) == len(names) - 2


# ---------------------------------------------------------------------------------------------------------------
# Few-shot


def test_few_shot_takes_k_videos_per_class_nested_across_k(synthetic):
    train = synthetic.samples["train"]
    two, four = few_shot_subset(train, 2, seed=0), few_shot_subset(train, 4, seed=0)
    assert len(two) == 2 * len(synthetic.labels) and set(two) <= set(four) == set(train)
    assert all(sum(label == c for _, label in two) == 2 for c in range(len(synthetic.labels)))


def test_few_shot_repeats_with_the_seed_and_changes_with_another(synthetic):
    train = synthetic.samples["train"]
    assert few_shot_subset(train, 2, seed=5) == few_shot_subset(train[::-1], 2, seed=5)
    assert any(few_shot_subset(train, 2, seed=5) != few_shot_subset(train, 2, seed=s) for s in (6, 7, 8))


def test_few_shot_with_too_few_videos_raises(synthetic):
    with pytest.raises(InvalidProtocolError, match="8-shot"):
        few_shot_subset(synthetic.samples["train"], 8)
    with pytest.raises(InvalidProtocolError, match="fewer"):
        few_shot_subset(synthetic.samples["train"], 1, num_classes=len(synthetic.labels) + 1)


def test_few_shot_lists_are_written_and_read_back(synthetic, tmp_path):
    paths = write_few_shot_lists(synthetic.samples["train"], tmp_path, shots=(2, 4), seed=0)
    assert sorted(p.name for p in paths.values()) == ["train_2shot_seed0.txt", "train_4shot_seed0.txt"]
    assert read_list_file(paths[2]) == few_shot_subset(synthetic.samples["train"], 2, seed=0)
    for video, _ in read_list_file(paths[2]):
        assert (synthetic.root / video).is_file()


def test_few_shot_protocol_tests_on_all_videos_per_k(synthetic):
    protocol = few_shot_protocol(synthetic.samples["train"], synthetic.samples["val"], synthetic.labels, shots=(2, 4))
    assert [s.name for s in protocol.splits] == ["2shot", "4shot"]
    assert all(s.videos == tuple(synthetic.samples["val"]) for s in protocol.splits)


def test_protocol_write_records_each_split_as_files(synthetic, tmp_path):
    protocol = base_to_novel(synthetic.samples["train"], synthetic.samples["val"], synthetic.labels, shots=2)
    protocol.write(tmp_path)
    assert read_label_file(tmp_path / "base_labels.csv") == list(protocol.splits[0].class_names)
    assert read_list_file(tmp_path / "novel_test.txt") == list(protocol.splits[1].videos)
    assert read_list_file(tmp_path / "base_train.txt") == list(protocol.splits[0].train_videos)
    recorded = json.loads((tmp_path / "protocol.json").read_text())
    assert recorded["protocol"] == "base_to_novel" and recorded["splits"][1]["num_videos"] == len(
        protocol.splits[1].videos
    )


# ---------------------------------------------------------------------------------------------------------------
# Results


def test_aggregate_metrics_gives_mean_and_population_std():
    summary = aggregate_metrics(
        {
            "split1": {"top1": 40.0, "top5": 70.0},
            "split2": {"top1": 50.0, "top5": 80.0},
            "split3": {"top1": 60.0, "top5": 90.0},
        }
    )
    assert summary["top1"]["mean"] == pytest.approx(50.0)
    assert summary["top1"]["std"] == pytest.approx(math.sqrt(200 / 3))
    assert summary["top5"]["mean"] == pytest.approx(80.0)
    sample_std = aggregate_metrics({"a": {"top1": 40.0}, "b": {"top1": 60.0}}, ddof=1)
    assert sample_std["top1"]["std"] == pytest.approx(math.sqrt(200))


def test_splits_reporting_different_metrics_cannot_be_aggregated():
    with pytest.raises(InvalidProtocolError):
        aggregate_metrics({"split1": {"top1": 1.0}, "split2": {"top5": 1.0}})


def test_protocol_result_summary_records_the_run_and_is_json(tmp_path):
    result = ProtocolResult(
        "hmdb51_zero_shot", templates=["a video of {}.", "{}"], num_frames=8, num_clips=2, num_crops=3
    )
    for name, top1 in (("split1", 44.0), ("split2", 46.0), ("split3", 48.0)):
        result.add_split(name, top1=top1)
    path = result.to_json(tmp_path / "result.json")
    summary = json.loads(path.read_text())
    assert summary["protocol"] == "hmdb51_zero_shot" and summary["num_splits"] == 3
    assert summary["metrics"]["top1"]["mean"] == pytest.approx(46.0)
    assert summary["num_templates"] == 2 and summary["num_frames"] == 8 and summary["num_views"] == 6
    assert summary["splits"]["split2"] == {"top1": 46.0}
    with pytest.raises(InvalidProtocolError):
        result.add_split("split1", top1=1.0)


def test_base_to_novel_result_reports_the_harmonic_mean():
    result = ProtocolResult("base_to_novel")
    result.add_split("base", top1=80.0)
    result.add_split("novel", top1=40.0)
    assert result.summary()["harmonic_mean"]["top1"] == pytest.approx(2 * 80 * 40 / 120)
