"""Video search: building and updating an index of real files, searching it, refusing mismatched ones."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tiny_models import tiny_model
from transformers import pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401  (registers the task)
from actionclip.apps.search import VideoIndex
from actionclip.commands import main
from actionclip.errors import EmptyVideoFolderError, IndexMismatchError, VideoIndexError
from actionclip.evaluation.metrics.retrieval import retrieval_metrics, retrieval_ranks
from actionclip.pipeline_zero_shot_video_classification import ZeroShotVideoClassificationPipeline
from actionclip.processing_actionclip import ActionCLIPProcessor

FPS = 25
REPO_ROOT = Path(__file__).resolve().parents[1]


def save_model(path, seed):
    model = tiny_model(seed=seed, num_frames=4)
    model.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_model(tmp_path_factory.mktemp("model"), seed=4)


@pytest.fixture(scope="module")
def classifier(model_dir):
    return pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")


def make_folder(folder, seeds=(0, 1, 2), frames=50):
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        write_test_video(folder / f"clip_{seed}.mp4", num_frames=frames + 5 * seed, fps=FPS, seed=seed)
    return folder


def assert_same_index(updated: VideoIndex, fresh: VideoIndex):
    assert updated.paths == fresh.paths
    np.testing.assert_allclose(updated.spans, fresh.spans)
    np.testing.assert_allclose(updated.embeddings.astype(np.float32), fresh.embeddings.astype(np.float32), atol=2e-3)
    assert {path: record["sha256"] for path, record in updated.files.items()} == {
        path: record["sha256"] for path, record in fresh.files.items()
    }


def test_segments_tile_the_video_the_last_one_ending_at_its_end(tmp_path, classifier):
    folder = make_folder(tmp_path / "videos", seeds=(0, 2))  # 2.0 s and 2.4 s
    index = VideoIndex.build(tmp_path / "v.index", folder, classifier, segment=1.0)
    spans = {path: index.spans[[i for i, p in enumerate(index.paths) if p == path]].tolist() for path in index.files}
    assert spans["clip_0.mp4"] == [[0.0, 1.0], [1.0, 2.0]]
    np.testing.assert_allclose(spans["clip_2.mp4"], [[0.0, 1.0], [1.0, 2.0], [1.4, 2.4]], atol=1e-9)
    norms = np.linalg.norm(index.embeddings.astype(np.float32), axis=1)
    assert index.embeddings.dtype == np.float16 and np.allclose(norms, 1.0, atol=1e-2)


def test_added_changed_and_removed_files_give_the_index_a_fresh_build_gives(tmp_path, classifier):
    folder = make_folder(tmp_path / "videos")
    VideoIndex.build(tmp_path / "v.index", folder, classifier, segment=1.0)
    (folder / "sub").mkdir()
    write_test_video(folder / "sub" / "new.mp4", num_frames=40, fps=FPS, seed=7)  # added (in a subfolder)
    write_test_video(folder / "clip_1.mp4", num_frames=45, fps=FPS, seed=9)  # changed content
    os.utime(folder / "clip_1.mp4", ns=(1, 1))
    (folder / "clip_2.mp4").unlink()  # removed
    os.utime(folder / "clip_0.mp4", ns=(2, 2))  # touched, same content: not re-embedded

    index = VideoIndex.open(tmp_path / "v.index")
    counts = index.update(classifier)
    assert counts == {"added": 1, "changed": 1, "removed": 1, "unchanged": 1, "failed": 0}
    updated = VideoIndex.open(tmp_path / "v.index")
    assert updated.files["clip_0.mp4"]["mtime_ns"] == 2  # the touched file's record is renewed
    fresh = VideoIndex.build(tmp_path / "fresh.index", folder, classifier, segment=1.0)
    assert_same_index(updated, fresh)
    for query in ("juggling", "a person riding a horse"):
        got = [(hit.path, hit.start) for hit in updated.search_text(query, classifier, k=5)]
        assert got == [(hit.path, hit.start) for hit in fresh.search_text(query, classifier, k=5)]


def test_a_video_finds_itself_first(tmp_path, classifier):
    folder = make_folder(tmp_path / "videos")
    index = VideoIndex.build(tmp_path / "v.index", folder, classifier)
    assert len(index) == 3
    hits = index.search_video(folder / "clip_1.mp4", classifier, k=3)
    assert hits[0].path == str((folder / "clip_1.mp4").resolve()) and hits[0].score == pytest.approx(1.0, abs=2e-3)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    query = np.ones(index.meta["model"]["dim"], np.float32)
    assert index.search(query, k=2, nprobe=1, refine=1) == index.search(query, k=2)  # exact below min_rows
    for name, value in (("refine", 0), ("nprobe", 2.5), ("k", True)):
        with pytest.raises(VideoIndexError, match=f"{name} must be a positive integer, got {value!r}"):
            index.search(query, **{"k": 2, name: value})


def test_an_index_from_another_model_or_other_preprocessing_is_refused(tmp_path, classifier, model_dir):
    folder = make_folder(tmp_path / "videos", seeds=(0,))
    index = VideoIndex.build(tmp_path / "v.index", folder, classifier)
    other_model = pipeline("zero-shot-video-classification", model=str(save_model(tmp_path / "m2", 5)), device="cpu")
    with pytest.raises(IndexMismatchError, match="made by model"):
        index.search_text("juggling", other_model)
    with pytest.raises(IndexMismatchError, match="made by model"):
        index.update(other_model)
    other_processing = ZeroShotVideoClassificationPipeline(
        model=classifier.model,
        processor=ActionCLIPProcessor.from_model_config(classifier.model.config, image_std=[0.5, 0.5, 0.5]),
        device="cpu",
    )
    with pytest.raises(IndexMismatchError, match="image_std"):
        index.search_video(folder / "clip_0.mp4", other_processing)


def test_empty_folder_and_missing_index_are_typed_errors(tmp_path, classifier):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no videos here")
    with pytest.raises(EmptyVideoFolderError, match="holds no video file"):
        VideoIndex.build(tmp_path / "e.index", tmp_path / "empty", classifier)
    with pytest.raises(VideoIndexError, match="no such file"):
        VideoIndex.open(tmp_path / "missing.index")
    (tmp_path / "bad.index").mkdir()
    (tmp_path / "bad.index" / "notes.txt").write_text("not an index")
    with pytest.raises(VideoIndexError, match="not an actionclip video index"):
        VideoIndex.open(tmp_path / "bad.index")
    with pytest.raises(VideoIndexError, match="already exists"):
        VideoIndex.create(tmp_path / "bad.index", tmp_path / "empty", classifier)


def test_retrieval_metrics_equal_a_hand_computation():
    # Rows are texts, columns videos; the true pairs are on the diagonal.
    similarity = np.array(
        [
            [0.9, 0.1, 0.3, 0.0],  # text 0: its video first -> rank 1
            [0.8, 0.5, 0.6, 0.1],  # text 1: 0.8 and 0.6 above -> rank 3
            [0.2, 0.7, 0.7, 0.1],  # text 2: one tie -> rank 1 + 0.5
            [0.4, 0.3, 0.2, 0.1],  # text 3: three above -> rank 4
        ]
    )
    assert retrieval_ranks(similarity).tolist() == [1.0, 3.0, 1.5, 4.0]
    # Columns: video 0: 0.9 top -> 1; video 1: 0.7 above 0.5 -> 2; video 2: 0.7 top (0.6, 0.3, 0.2) -> 1;
    # video 3: 0.1 ties with 0.1, 0.1 and below 0.0? no: [0.0, 0.1, 0.1, 0.1] -> ties 2 -> 1 + 0 + 1 = 2.
    assert retrieval_ranks(similarity.T).tolist() == [1.0, 2.0, 1.0, 2.0]
    metrics = retrieval_metrics(similarity, ks=(1, 2, 5))
    assert metrics["text_to_video"] == {
        "R@1": 25.0,
        "R@2": 50.0,
        "R@5": 100.0,
        "median_rank": 2.25,
        "mean_rank": 2.375,
    }
    assert metrics["video_to_text"] == {"R@1": 50.0, "R@2": 100.0, "R@5": 100.0, "median_rank": 1.5, "mean_rank": 1.5}


def test_commands_index_update_and_search_json(tmp_path, model_dir, capsys):
    folder = make_folder(tmp_path / "videos", seeds=(0, 1))
    out = tmp_path / "v.index"
    assert main(["index", str(folder), "--out", str(out), "--model", str(model_dir), "--segment", "1s"]) == 0
    # 2 s: two segments; 2.2 s: three, the last one ending at 2.2 s.
    assert "2 of 2 files, 5 vectors (2 added)" in capsys.readouterr().out
    shutil.copy(folder / "clip_0.mp4", folder / "copy.mp4")
    assert main(["index", str(folder), "--out", str(out)]) == 0  # the index's model by default
    assert "1 added, 2 unchanged" in capsys.readouterr().out
    assert main(["search", str(out), "juggling", "-k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and set(hits[0]) == {"path", "start", "end", "score"}
    assert main(["search", str(out), "--like", str(folder / "clip_1.mp4"), "-k", "1"]) == 0
    assert "clip_1.mp4" in capsys.readouterr().out
    assert main(["search", str(out), "juggling", "-k", "3", "--json", "--refine", "5", "--nprobe", "2"]) == 0
    assert json.loads(capsys.readouterr().out) == hits  # exact below 100,000 rows: the same hits
    assert main(["search", str(out), "juggling", "--refine", "0"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "refine must be a positive integer, got 0" in error


def test_command_empty_folder_exits_2_with_one_line(tmp_path, model_dir, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["index", str(tmp_path / "empty"), "--out", str(tmp_path / "x.index"), "--model", str(model_dir)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "holds no video file" in error
    assert not (tmp_path / "x.index").exists()


def test_command_other_model_is_refused(tmp_path, model_dir, capsys):
    folder = make_folder(tmp_path / "videos", seeds=(0,))
    out = tmp_path / "v.index"
    assert main(["index", str(folder), "--out", str(out), "--model", str(model_dir)]) == 0
    other = save_model(tmp_path / "other", seed=6)
    assert main(["search", str(out), "juggling", "--model", str(other)]) == 2
    assert "made by model" in capsys.readouterr().err


def write_old_single_file_index(path, index: VideoIndex):
    """What `actionclip index` wrote before indexes were folders: one .npz archive, format 1."""
    np.savez(
        path,
        embeddings=index.embeddings,
        paths=np.array(index.paths, dtype=str),
        spans=index.spans,
        files=np.array(json.dumps(index.files, sort_keys=True)),
        meta=np.array(json.dumps({**index.meta, "format": 1}, sort_keys=True)),
    )


def test_an_old_single_file_index_is_refused_with_the_way_to_convert_it_and_converts(tmp_path, classifier, capsys):
    folder = make_folder(tmp_path / "videos", seeds=(0, 1))
    index = VideoIndex.build(tmp_path / "v.index", folder, classifier, segment=1.0)
    with open(tmp_path / "old.index", "wb") as handle:
        write_old_single_file_index(handle, index)
    assert main(["search", str(tmp_path / "old.index"), "juggling"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"actionclip index --convert {tmp_path / 'old.index'} --out" in error
    assert main(["index", "--convert", str(tmp_path / "old.index"), "--out", str(tmp_path / "new.index")]) == 0
    assert "2 files, 5 vectors" in capsys.readouterr().out
    assert_same_index(VideoIndex.open(tmp_path / "new.index"), index)
    assert main(["search", str(tmp_path / "new.index"), "juggling", "-k", "2"]) == 0


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_index_run_keeps_what_it_finished_and_the_rerun_does_the_rest(
    tmp_path, model_dir, classifier, capsys, signal_number
):
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    # On a loaded machine the run may finish all its files before this process reads the third progress line: then
    # it is tried again on more files (a run that ignored the signal would finish every time, and fail below).
    for count in (6, 12, 24):
        folder = make_folder(tmp_path / f"videos{count}", seeds=range(count), frames=40)
        out = tmp_path / f"v{count}.index"
        command = [
            sys.executable,
            "-m",
            "actionclip",
            "index",
            str(folder),
            "--out",
            str(out),
            "--model",
            str(model_dir),
        ]
        run = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
        try:
            added, finished_first = [], False
            for line in iter(run.stderr.readline, ""):
                added += ["added:" in line]
                if sum(added) == 3:  # two files committed, the third being embedded
                    finished_first = run.poll() is not None
                    run.send_signal(signal_number)
                    break
            run.wait(timeout=120)
        finally:
            run.kill()
        if not finished_first:
            break
    assert run.returncode != 0
    kept = VideoIndex.open(out).files
    assert {"clip_0.mp4", "clip_1.mp4"} <= set(kept) and len(kept) < count
    assert main(["index", str(folder), "--out", str(out)]) == 0
    left = count - len(kept)
    assert (
        f"{count} of {count} files, {count} vectors ({left} added, {len(kept)} unchanged)" in capsys.readouterr().out
    )
    assert_same_index(VideoIndex.open(out), VideoIndex.build(tmp_path / "fresh.index", folder, classifier))


def test_a_second_index_run_on_the_same_index_is_refused_naming_the_writer(tmp_path, model_dir, capsys):
    folder = make_folder(tmp_path / "videos", seeds=(0,))
    out = tmp_path / "v.index"
    assert main(["index", str(folder), "--out", str(out), "--model", str(model_dir)]) == 0
    capsys.readouterr()
    index = VideoIndex.open(out)
    with index.store.writing():  # held by this process's other handle: the command opens its own
        assert main(["index", str(folder), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"is being written by process {os.getpid()}" in error and "--wait" in error


def write_parquet(path, root, classifier, rows, model=None, error_file=None):
    """A Parquet file in the batch path's schema: one row per vector, ``rows`` = {relative: (embeddings, spans)}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from actionclip.apps.search import describe_model, preprocessing_settings, settings_hash

    settings = preprocessing_settings(classifier, None, classifier.model.config.num_frames)
    metadata = {"root": str(root), "model": model or describe_model(classifier), "preprocessing": settings,
                "preprocessing_hash": settings_hash(settings)}  # fmt: skip
    dim = classifier.model.config.projection_dim
    columns = {name: [] for name in ("path", "start", "end", "embedding", "size", "mtime_ns", "sha256", "error")}
    for relative, (embeddings, spans) in rows.items():
        for vector, (start, end) in zip(embeddings, spans):
            for name, value in zip(columns, (relative, start, end, vector.tolist(), 7, 8, "ab" * 32, None)):
                columns[name].append(value)
    if error_file is not None:
        for name, value in zip(columns, (error_file, None, None, None, 1, 2, "cd" * 32, "no video stream")):
            columns[name].append(value)
    schema = pa.schema(
        [("path", pa.string()), ("start", pa.float64()), ("end", pa.float64()),
         ("embedding", pa.list_(pa.float32(), dim)), ("size", pa.int64()), ("mtime_ns", pa.int64()),
         ("sha256", pa.string()), ("error", pa.string())],
        metadata={b"actionclip": json.dumps(metadata).encode()},
    )  # fmt: skip
    pq.write_table(pa.table(columns, schema=schema), path)


def test_parquet_rows_are_committed_like_embedded_files_and_another_models_are_refused(tmp_path, classifier, capsys):
    folder = make_folder(tmp_path / "videos", seeds=(0, 1))
    built = VideoIndex.build(tmp_path / "built.index", folder, classifier)
    rows = {path: (built.embeddings[built_rows(built, path)], built.spans[built_rows(built, path)])
            for path in built.files}  # fmt: skip
    write_parquet(tmp_path / "part-0.parquet", folder.resolve(), classifier, rows, error_file="broken.mp4")
    out = tmp_path / "v.index"
    with pytest.warns(UserWarning, match="broken.mp4: left out of the index: no video stream"):
        assert main(["index", str(folder), "--out", str(out), "--from-parquet", str(tmp_path / "part-0.parquet")]) == 0
    assert "2 of 2 files, 2 vectors (2 added, 1 failed)" in capsys.readouterr().out
    ingested = VideoIndex.open(out)
    assert ingested.paths == built.paths and ingested.files["clip_0.mp4"]["sha256"] == "ab" * 32
    query = built.embeddings[0].astype(np.float32)
    assert [(h.path, h.start) for h in ingested.search(query, 2)[0]] == [
        (h.path, h.start) for h in built.search(query, 2)[0]
    ]

    other = dict(ingested.meta["model"], fingerprint="0123456789abcdef", name="other")
    write_parquet(tmp_path / "other.parquet", folder.resolve(), classifier, rows, model=other)
    with pytest.raises(IndexMismatchError, match="made by model .* not by the model of .*other.parquet"):
        ingested.ingest_parquet([tmp_path / "other.parquet"])
    assert len(VideoIndex.open(out)) == 2


def built_rows(index, path):
    return [i for i, q in enumerate(index.paths) if q == path]
