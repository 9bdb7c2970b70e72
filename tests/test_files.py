"""Files written whole or not at all (`actionclip.files`), with real files."""

import os

import pytest

from actionclip.files import replaced_when_done


def test_the_file_appears_only_when_the_writer_is_done(tmp_path):
    target = tmp_path / "made" / "here" / "index.npz"
    with replaced_when_done(target) as temporary:
        temporary.write_bytes(b"first half ")
        assert not target.exists()  # a reader sees nothing yet
        assert temporary.parent == target.parent and temporary.name.startswith(".")
        with open(temporary, "ab") as handle:
            handle.write(b"second half")
    assert target.read_bytes() == b"first half second half"
    assert os.listdir(target.parent) == ["index.npz"]


@pytest.mark.parametrize("failure", [ValueError("bad"), KeyboardInterrupt()])
def test_a_failed_writer_leaves_the_old_file_and_no_temporary(tmp_path, failure):
    target = tmp_path / "labels.json"
    target.write_text("old")
    with pytest.raises(type(failure)):
        with replaced_when_done(target) as temporary:
            temporary.write_text("half of the new")
            raise failure
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["labels.json"]


def test_a_rename_that_fails_removes_the_temporary(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "inside").write_text("keep")
    with pytest.raises(OSError):
        with replaced_when_done(tmp_path / "taken") as temporary:
            temporary.write_text("new")
    assert os.listdir(tmp_path) == ["taken"] and (tmp_path / "taken" / "inside").read_text() == "keep"


def test_missing_folders_are_an_error_when_not_to_be_made(tmp_path):
    with pytest.raises(FileNotFoundError):
        with replaced_when_done(tmp_path / "absent" / "file.txt", make_parents=False) as temporary:
            temporary.write_text("x")
    assert os.listdir(tmp_path) == []


def test_a_label_file_is_written_whole_or_not_at_all(tmp_path):
    from actionclip.data.labels import read_label_file, write_label_csv

    target = tmp_path / "labels.csv"
    write_label_csv(target, ["tai chi", "surfing, big waves", 'say "hi"'])
    assert read_label_file(target) == ["tai chi", "surfing, big waves", 'say "hi"']
    before = target.read_bytes()

    def names():
        yield "juggling"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_label_csv(target, names())
    assert target.read_bytes() == before and os.listdir(tmp_path) == ["labels.csv"]
