"""The base-to-novel and few-shot splits in the format X-CLIP / ViFi-CLIP released them
(`actionclip.evaluation.published_splits`), parsed from hand-written files and evaluated by `actionclip eval`."""

from __future__ import annotations

import json

import pytest
from tiny_models import tiny_model

from actionclip.errors import InvalidSplitFileError
from actionclip.evaluation.published_splits import (
    published_base_to_novel,
    published_few_shot,
    read_class_index,
    read_video_list,
)


def write(path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def released(tmp_path):
    """A miniature release: labels/ with class-index CSVs, datasets_splits/ with the lists, as published."""
    labels = tmp_path / "labels"
    write(labels / "hmdb_51_base_labels.csv", "id,name\n0,pour\n1,ride bike\n")
    write(labels / "hmdb_51_novel_labels.csv", "id,name\n0,brush hair\n1,cartwheel\n2,climb stairs\n")
    write(labels / "hmdb_51_labels.csv", "id,name\r\n0,brush hair\r\n1,pour\r\n")
    b2n = tmp_path / "datasets_splits" / "base2novel_splits" / "hmdb_splits"
    write(b2n / "fs_base_s1_train.txt", "Spirit_Pouring_pour_u_nm_np1_fr_goo_2.avi 0\nSpectacular_tea_pouring_pour_u_cm_np1_ri_med_2.avi 0\n"
          "Fahrrad_fahren_ride_bike_f_cm_np2_le_med_2.avi 1\n#437_How_To_Ride_A_Bike_ride_bike_f_cm_np1_ba_med_1.avi 1\n")  # fmt: skip
    write(b2n / "fs_base_s2_train.txt", "a_pour_0.avi 0\nb_pour_1.avi 0\nc_ride_bike_0.avi 1\nd_ride_bike_1.avi 1\n")
    write(
        b2n / "base_val.txt",
        "Cocktail_Pouring_pour_u_nm_np2_ri_med_0.avi 0\nBicycle_Tips_ride_bike_f_cm_np1_ba_med_1.avi 1\n",
    )
    write(b2n / "novel_val.txt", "red_head_brush_hair_u_cm_np1_fr_goo_1.avi 0\nturnles!!_cartwheel_f_cm_np1_ri_med_0.avi 1\n"
          "treppensteigen_1_climb_stairs_f_cm_np2_fr_med_0.avi 2\n\n")  # fmt: skip
    fs = tmp_path / "datasets_splits" / "hmdb_splits"
    write(fs / "train1_few_shot_1.txt", "x_brush_hair_0.avi 0\ny_pour_0.avi 1\n")
    write(fs / "train1_few_shot_2.txt", "x_brush_hair_0.avi 0\nx_brush_hair_1.avi 0\ny_pour_0.avi 1\ny_pour_1.avi 1\n")
    write(fs / "val1.txt", "t_brush_hair_0.avi 0\nt_pour_0.avi 1\nt_pour_1.avi 1\n")
    return tmp_path


def test_a_released_base_to_novel_seed_gives_the_expected_classes_and_videos(released):
    labels = released / "labels"
    protocol = published_base_to_novel(
        released / "datasets_splits" / "base2novel_splits" / "hmdb_splits",
        labels / "hmdb_51_base_labels.csv", labels / "hmdb_51_novel_labels.csv", seed=1, shots=2,
    )  # fmt: skip
    base, novel = protocol.splits
    assert (base.name, novel.name) == ("base", "novel")
    assert base.class_names == ("pour", "ride bike")
    assert novel.class_names == ("brush hair", "cartwheel", "climb stairs")
    assert base.train_videos == (
        ("Spirit_Pouring_pour_u_nm_np1_fr_goo_2.avi", 0), ("Spectacular_tea_pouring_pour_u_cm_np1_ri_med_2.avi", 0),
        ("Fahrrad_fahren_ride_bike_f_cm_np2_le_med_2.avi", 1), ("#437_How_To_Ride_A_Bike_ride_bike_f_cm_np1_ba_med_1.avi", 1),
    )  # fmt: skip
    assert base.videos == (("Cocktail_Pouring_pour_u_nm_np2_ri_med_0.avi", 0),
                           ("Bicycle_Tips_ride_bike_f_cm_np1_ba_med_1.avi", 1))  # fmt: skip
    assert novel.videos == (("red_head_brush_hair_u_cm_np1_fr_goo_1.avi", 0),
                            ("turnles!!_cartwheel_f_cm_np1_ri_med_0.avi", 1),
                            ("treppensteigen_1_climb_stairs_f_cm_np2_fr_med_0.avi", 2))  # fmt: skip
    assert protocol.settings["published"] and protocol.settings["seed"] == 1
    second = published_base_to_novel(released / "datasets_splits" / "base2novel_splits" / "hmdb_splits",
                                     labels / "hmdb_51_base_labels.csv", labels / "hmdb_51_novel_labels.csv",
                                     seed=2, shots=2)  # fmt: skip
    assert second.splits[0].train_videos[0] == ("a_pour_0.avi", 0) and second.splits[1] == novel


def test_released_few_shot_lists_give_one_split_per_k_on_the_first_test_split(released):
    protocol = published_few_shot(
        released / "datasets_splits" / "hmdb_splits", released / "labels" / "hmdb_51_labels.csv"
    )
    assert [split.name for split in protocol.splits] == ["1shot", "2shot"]  # every list found
    one, two = protocol.splits
    assert one.class_names == two.class_names == ("brush hair", "pour")
    assert one.train_videos == (("x_brush_hair_0.avi", 0), ("y_pour_0.avi", 1))
    assert two.train_videos == (("x_brush_hair_0.avi", 0), ("x_brush_hair_1.avi", 0), ("y_pour_0.avi", 1),
                                ("y_pour_1.avi", 1))  # fmt: skip
    assert one.videos == two.videos == (("t_brush_hair_0.avi", 0), ("t_pour_0.avi", 1), ("t_pour_1.avi", 1))
    only = published_few_shot(released / "datasets_splits" / "hmdb_splits", released / "labels" / "hmdb_51_labels.csv",
                              shots=[2])  # fmt: skip
    assert [split.name for split in only.splits] == ["2shot"]


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("name,id\n0,run\n", 1, "header"),
        ("id,name\n0,run\nwalk\n", 3, "expected '<id>,<class name>'"),
        ("id,name\n0,run\n2,walk\n", 3, "expected 1"),
        ("id,name\n0,run\n0,walk\n", 3, "appears twice"),
        ("id,name\n0,run\n\n1,run\n", 4, "'run' appears twice"),
    ],
)
def test_bad_class_index_files_name_the_line(tmp_path, text, line, reason):
    path = write(tmp_path / "labels.csv", text)
    with pytest.raises(InvalidSplitFileError, match=reason) as caught:
        read_class_index(path)
    assert caught.value.line_number == line and caught.value.path == path
    assert f"line {line}" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("a.avi 0\nb.avi\n", 2, "expected '<video path> <label id>'"),
        ("a.avi 0\n\nb.avi one\n", 3, "expected"),
        ("a.avi 0\nb.avi -1\n", 2, "expected"),
        ("a.avi 0\nb.avi 3\n", 2, "outside the 3 classes"),
        ("a.avi 0\nb.avi 1\na.avi 2\n", 3, "listed twice"),
    ],
)
def test_bad_video_lists_name_the_line(tmp_path, text, line, reason):
    path = write(tmp_path / "val1.txt", text)
    with pytest.raises(InvalidSplitFileError, match=reason) as caught:
        read_video_list(path, num_classes=3)
    assert caught.value.line_number == line


def test_inconsistent_releases_are_refused(released, tmp_path):
    labels, b2n = released / "labels", released / "datasets_splits" / "base2novel_splits" / "hmdb_splits"
    with pytest.raises(InvalidSplitFileError, match="expected 16 videos per class") as caught:
        published_base_to_novel(b2n, labels / "hmdb_51_base_labels.csv", labels / "hmdb_51_novel_labels.csv")
    assert caught.value.line_number is None
    overlap = write(tmp_path / "novel.csv", "id,name\n0,cartwheel\n1,pour\n")
    with pytest.raises(InvalidSplitFileError, match="also a base class") as caught:
        published_base_to_novel(b2n, labels / "hmdb_51_base_labels.csv", overlap, shots=2)
    assert caught.value.line_number == 3
    with pytest.raises(InvalidSplitFileError, match="no such file"):
        published_base_to_novel(b2n, labels / "hmdb_51_base_labels.csv", labels / "hmdb_51_novel_labels.csv", seed=3)
    with pytest.raises(InvalidSplitFileError, match="few_shot"):
        published_few_shot(tmp_path, labels / "hmdb_51_labels.csv")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    from actionclip.data.synthetic import SyntheticActionConfig, generate_synthetic_dataset

    config = SyntheticActionConfig(
        colors=("red", "green", "blue"), shapes=("square", "circle"),
        motions=("moving left", "moving right", "growing", "shrinking"), num_frames=8, size=(32, 32),
        videos_per_class=1, val_videos_per_class=1, zeroshot_videos_per_class=1, zeroshot_fraction=0.25,
    )  # fmt: skip
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), config)


def test_eval_runs_a_released_base_to_novel_seed_and_reports_the_harmonic_mean(synthetic, tmp_path):
    from actionclip.commands import ArgumentParser
    from actionclip.commands.eval import add_eval_arguments
    from actionclip.evaluation.program import run_evaluation
    from actionclip.processing_actionclip import ActionCLIPProcessor

    model = tiny_model(templates=["a video of {}"])
    model.save_pretrained(tmp_path / "model")
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(tmp_path / "model")
    # The synthetic set written out as a release: class-index CSVs (ours already are) and the lists. (Both sets
    # have 5 classes or more: a protocol whose splits report different top-k metrics cannot be summarised.)
    release = tmp_path / "release"
    release.mkdir()
    (release / "fs_base_s1_train.txt").write_text(synthetic.list_file("train").read_text())
    (release / "base_val.txt").write_text(synthetic.list_file("val").read_text())
    (release / "novel_val.txt").write_text(synthetic.list_file("zeroshot").read_text())
    args = add_eval_arguments(ArgumentParser()).parse_args([
        "--model", str(tmp_path / "model"), "--output_dir", str(tmp_path / "eval"), "--protocol", "base_to_novel",
        "--published_splits", str(release), "--base_classes", str(synthetic.root / "labels.csv"),
        "--novel_classes", str(synthetic.root / "zeroshot_labels.csv"), "--video_root", str(synthetic.root),
        "--shots", "1", "--no_progress",
    ])  # fmt: skip
    summary = run_evaluation(args)["base_to_novel_published"]
    base, novel = summary["splits"]["base"]["top1_accuracy"], summary["splits"]["novel"]["top1_accuracy"]
    expected = 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)
    assert summary["harmonic_mean"]["top1_accuracy"] == pytest.approx(expected)
    assert summary["settings"]["published"] and summary["settings"]["seed"] == 1
    report = json.loads((tmp_path / "eval" / "base_to_novel_published" / "novel" / "evaluation.json").read_text())
    assert report["num_classes"] == len(synthetic.zeroshot_labels)
    assert report["num_videos"] == len(synthetic.list_file("zeroshot").read_text().split("\n")) - 1
