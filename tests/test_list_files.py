"""List files as users have them: byte-order marks, tabs, odd digits, absurd label ids."""

import time

import pytest
from video_datasets import make_video_data

from actionclip.data.datasets import VideoClassificationDataset
from actionclip.data.splits import read_list_file
from actionclip.errors import DatasetFormatError, InvalidSplitFileError


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    return make_video_data(tmp_path_factory.mktemp("videos"))


def _lines(video_data):
    return video_data.list_file("train").read_text(encoding="utf-8").splitlines()


def test_a_byte_order_mark_and_tabs_are_accepted(video_data):
    plain = VideoClassificationDataset.from_list_file(video_data.list_file("train"), num_frames=4, image_size=32)
    edited = video_data.list_file("train").with_name("edited.txt")
    text = "\n".join(line.rsplit(" ", 1)[0] + "\t" + line.rsplit(" ", 1)[1] for line in _lines(video_data))
    edited.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    dataset = VideoClassificationDataset.from_list_file(edited, num_frames=4, image_size=32)
    assert dataset.records == plain.records
    assert [path for path, _ in read_list_file(edited)] == [
        path for path, _ in read_list_file(video_data.list_file("train"))
    ]


@pytest.mark.parametrize("label", ["\u00b2", "-1", "\u0663"])  # superscript two, a negative id, Arabic-Indic three
def test_label_ids_must_be_ascii_digits(video_data, tmp_path, label):
    path = tmp_path / "list.txt"
    path.write_text(f"{_lines(video_data)[0].rsplit(' ', 1)[0]} {label}\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="label_id"):
        VideoClassificationDataset.from_list_file(path, num_frames=4)
    with pytest.raises(InvalidSplitFileError, match="label_id"):
        read_list_file(path)


def test_a_huge_label_id_without_class_names_is_refused_fast(video_data, tmp_path):
    path = tmp_path / "list.txt"
    path.write_text(f"{_lines(video_data)[0].rsplit(' ', 1)[0]} 999999999999\n", encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(DatasetFormatError, match="class names"):
        VideoClassificationDataset.from_list_file(path, num_frames=4)
    assert time.monotonic() - started < 2
