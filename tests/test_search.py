"""Video search: building and updating an index of real files, searching it, refusing mismatched ones."""

import json
import os
import shutil

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
    index = VideoIndex.build(folder, classifier, segment=1.0)
    spans = {path: index.spans[[i for i, p in enumerate(index.paths) if p == path]].tolist() for path in index.files}
    assert spans["clip_0.mp4"] == [[0.0, 1.0], [1.0, 2.0]]
    np.testing.assert_allclose(spans["clip_2.mp4"], [[0.0, 1.0], [1.0, 2.0], [1.4, 2.4]], atol=1e-9)
    norms = np.linalg.norm(index.embeddings.astype(np.float32), axis=1)
    assert index.embeddings.dtype == np.float16 and np.allclose(norms, 1.0, atol=1e-2)


def test_added_changed_and_removed_files_give_the_index_a_fresh_build_gives(tmp_path, classifier):
    folder = make_folder(tmp_path / "videos")
    VideoIndex.build(folder, classifier, segment=1.0).save(tmp_path / "v.index")
    (folder / "sub").mkdir()
    write_test_video(folder / "sub" / "new.mp4", num_frames=40, fps=FPS, seed=7)  # added (in a subfolder)
    write_test_video(folder / "clip_1.mp4", num_frames=45, fps=FPS, seed=9)  # changed content
    os.utime(folder / "clip_1.mp4", ns=(1, 1))
    (folder / "clip_2.mp4").unlink()  # removed
    os.utime(folder / "clip_0.mp4", ns=(2, 2))  # touched, same content: not re-embedded

    index = VideoIndex.load(tmp_path / "v.index")
    counts = index.update(classifier)
    assert counts == {"added": 1, "changed": 1, "removed": 1, "unchanged": 1, "failed": 0}
    index.save(tmp_path / "v.index")
    updated = VideoIndex.load(tmp_path / "v.index")
    fresh = VideoIndex.build(folder, classifier, segment=1.0)
    assert_same_index(updated, fresh)
    for query in ("juggling", "a person riding a horse"):
        got = [(hit.path, hit.start) for hit in updated.search_text(query, classifier, k=5)]
        assert got == [(hit.path, hit.start) for hit in fresh.search_text(query, classifier, k=5)]


def test_a_video_finds_itself_first(tmp_path, classifier):
    folder = make_folder(tmp_path / "videos")
    index = VideoIndex.build(folder, classifier)
    assert len(index) == 3
    hits = index.search_video(folder / "clip_1.mp4", classifier, k=3)
    assert hits[0].path == str((folder / "clip_1.mp4").resolve()) and hits[0].score == pytest.approx(1.0, abs=2e-3)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_an_index_from_another_model_or_other_preprocessing_is_refused(tmp_path, classifier, model_dir):
    folder = make_folder(tmp_path / "videos", seeds=(0,))
    index = VideoIndex.build(folder, classifier)
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
        VideoIndex.build(tmp_path / "empty", classifier)
    with pytest.raises(VideoIndexError, match="no such file"):
        VideoIndex.load(tmp_path / "missing.index")
    (tmp_path / "bad.index").write_bytes(b"not an index")
    with pytest.raises(VideoIndexError, match="not an actionclip video index"):
        VideoIndex.load(tmp_path / "bad.index")


def test_faiss_and_numpy_give_the_same_top_k(tmp_path, classifier):
    faiss = pytest.importorskip("faiss")
    assert faiss is not None
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((5000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = VideoIndex.create(tmp_path, classifier)
    index.embeddings = vectors.astype(np.float16)
    index.paths = [f"v{i:05d}.mp4" for i in range(5000)]
    index.spans = np.zeros((5000, 2))
    queries = rng.standard_normal((20, 64))
    by_numpy = index.search(queries, k=10, backend="numpy")
    by_faiss = index.search(queries, k=10, backend="faiss")
    assert [[hit.row for hit in hits] for hits in by_numpy] == [[hit.row for hit in hits] for hits in by_faiss]
    # And both are the exact top 10 of a plain full sort.
    scores = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ index.embeddings.astype(np.float32).T
    assert [[hit.row for hit in hits] for hits in by_numpy] == np.argsort(-scores, axis=1)[:, :10].tolist()


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
