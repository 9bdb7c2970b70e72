"""The cluster path on Ray Data: decoding tasks and model actors on a local Ray runtime of 2 CPUs, real small videos
and a tiny saved model; the Parquet files hold what the one-process path computes."""

import hashlib
import json

import numpy as np
import pytest
from tiny_models import tiny_model
from transformers import pipeline
from video_factory import write_test_video

import actionclip  # noqa: F401  (registers the task)
from actionclip.apps.search import describe_model, embed_video, preprocessing_settings, settings_hash
from actionclip.errors import EmptyVideoFolderError, IndexMismatchError, InvalidLabelsError, VideoIndexError
from actionclip.processing_actionclip import ActionCLIPProcessor

ray = pytest.importorskip("ray", reason="the cluster path needs Ray Data: pip install 'actionclip[ray]'")
pytest.importorskip("ray.data", reason="the cluster path needs Ray Data: pip install 'actionclip[ray]'")
pq = pytest.importorskip("pyarrow.parquet", reason="Ray Data brings pyarrow")

from actionclip.cluster.ray_data import IndexEmbedder, classify_collection, embed_collection  # noqa: E402

FPS = 25
NUM_FRAMES = 4
LABELS = ["juggling balls", "playing guitar", "tai chi"]
# Decoding tasks and the model actor ask for different CPU counts, so Ray keeps them apart (it fuses stages with
# equal resources): 2 decoding tasks beside 1 actor on the 2 CPUs.
RESOURCES = dict(num_cpus=0.5, model_num_cpus=1)


@pytest.fixture(scope="module")
def ray_runtime():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("model")
    model = tiny_model(seed=4, num_frames=NUM_FRAMES)
    model.save_pretrained(path)
    ActionCLIPProcessor.from_model_config(model.config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def classifier(model_dir):
    return pipeline("zero-shot-video-classification", model=str(model_dir), device="cpu")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """2.0 s, 2.2 s (in a subfolder) and 2.4 s videos, and a file that is not a video."""
    folder = tmp_path_factory.mktemp("videos")
    (folder / "sub").mkdir()
    for seed, name in enumerate(("a.mp4", "sub/b.mp4", "c.mp4")):
        write_test_video(folder / name, num_frames=50 + 5 * seed, fps=FPS, seed=seed)
    (folder / "broken.mp4").write_bytes(b"this is not a video")
    return folder


GOOD = ["a.mp4", "c.mp4", "sub/b.mp4"]


@pytest.fixture(scope="module")
def segments(ray_runtime, folder, model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "segments.parquet"
    counts = embed_collection(folder, str(model_dir), out, segment=1.0, **RESOURCES)
    return counts, pq.read_table(out)


@pytest.fixture(scope="module")
def whole_parquet(ray_runtime, folder, model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "whole.parquet"
    return embed_collection(folder, str(model_dir), out, **RESOURCES), out


@pytest.fixture(scope="module")
def whole(whole_parquet):
    counts, out = whole_parquet
    return counts, pq.read_table(out)


@pytest.fixture(scope="module")
def predictions(ray_runtime, folder, model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "predictions.parquet"
    counts = classify_collection(folder, str(model_dir), LABELS, out, top_k=2, batch_size=2, **RESOURCES)
    return counts, pq.read_table(out)


def rows_of(table, path):
    return [row for row in table.to_pylist() if row["path"] == path]


def assert_embeddings_of_the_one_process_path(table, classifier, folder, segment):
    for path in GOOD:
        rows = rows_of(table, path)
        expected, spans = embed_video(classifier, folder / path, segment, NUM_FRAMES)
        assert [[row["start"], row["end"]] for row in rows] == spans.tolist()
        np.testing.assert_allclose(np.array([row["embedding"] for row in rows]), expected, rtol=0, atol=1e-6)
        assert all(row["error"] is None for row in rows)


def test_segment_embeddings_equal_the_one_process_path(segments, classifier, folder):
    counts, table = segments
    assert counts == {"videos": 4, "vectors": 8, "failed": 1}  # 2 + 3 + 3 segments of 1 s
    assert_embeddings_of_the_one_process_path(table, classifier, folder, 1.0)


def test_whole_video_embeddings_equal_the_one_process_path(whole, classifier, folder):
    counts, table = whole
    assert counts == {"videos": 4, "vectors": 3, "failed": 1}
    assert_embeddings_of_the_one_process_path(table, classifier, folder, None)


def test_rows_keep_the_sorted_order_of_the_files(segments):
    _, table = segments
    paths = table.column("path").to_pylist()
    assert list(dict.fromkeys(paths)) == sorted(GOOD + ["broken.mp4"])


def test_a_file_that_fails_to_decode_is_one_error_row(segments, predictions, folder):
    (row,) = rows_of(segments[1], "broken.mp4")
    assert row["embedding"] is None and row["start"] is None and "VideoDecodeError" in row["error"]
    assert row["size"] == len(b"this is not a video")
    (row,) = rows_of(predictions[1], str(folder / "broken.mp4"))
    assert row["labels"] is None and row["scores"] is None and "VideoDecodeError" in row["error"]
    assert predictions[0] == {"videos": 4, "failed": 1}


def test_the_schema_is_the_index_contract_and_names_the_model_and_preprocessing(segments, classifier, folder):
    _, table = segments
    schema = table.schema
    assert str(schema.field("embedding").type) == "fixed_size_list<element: float>[64]"
    assert [(field.name, str(field.type)) for field in schema if field.name != "embedding"] == [
        ("path", "string"),
        ("start", "double"),
        ("end", "double"),
        ("size", "int64"),
        ("mtime_ns", "int64"),
        ("sha256", "string"),
        ("error", "string"),
    ]
    meta = json.loads(schema.metadata[b"actionclip"])
    settings = preprocessing_settings(classifier, 1.0, NUM_FRAMES)
    assert meta["model"] == describe_model(classifier)
    assert meta["preprocessing"] == settings and meta["preprocessing_hash"] == settings_hash(settings)
    assert meta["root"] == str(folder.resolve())
    for path in GOOD:
        row = rows_of(table, path)[0]
        stat = (folder / path).stat()
        assert (row["size"], row["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns)
        assert row["sha256"] == hashlib.sha256((folder / path).read_bytes()).hexdigest()


def test_predictions_equal_the_pipelines(predictions, classifier, folder):
    _, table = predictions
    for path in GOOD:
        (row,) = rows_of(table, str(folder / path))
        expected = classifier(str(folder / path), candidate_labels=LABELS, top_k=2)
        assert row["labels"] == [item["label"] for item in expected] and row["error"] is None
        np.testing.assert_allclose(row["scores"], [item["score"] for item in expected], rtol=0, atol=1e-6)
    meta = json.loads(table.schema.metadata[b"actionclip"])
    assert meta["labels"] == LABELS and meta["model"]["fingerprint"] == describe_model(classifier)["fingerprint"]


def test_an_actor_whose_model_differs_from_the_drivers_stops_the_job(model_dir):
    with pytest.raises(IndexMismatchError, match="same model folder"):
        IndexEmbedder(str(model_dir), None, NUM_FRAMES, fingerprint="0" * 16, device="cpu")


def test_bad_inputs_are_refused_before_any_task_runs(folder, model_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyVideoFolderError):
        embed_collection(tmp_path / "empty", str(model_dir), tmp_path / "out.parquet")
    with pytest.raises(VideoIndexError, match="segment"):
        embed_collection(folder, str(model_dir), tmp_path / "out.parquet", segment=-1.0)
    with pytest.raises(InvalidLabelsError):
        classify_collection(folder, str(model_dir), ["run", "run"], tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def test_an_index_from_the_parquet_answers_as_one_built_in_one_process(
    whole_parquet, folder, model_dir, tmp_path, capsys
):
    """``actionclip index --from-parquet`` of the cluster's embeddings, against ``actionclip index`` in one process."""
    from actionclip.commands import main

    parquet = whole_parquet[1]
    assert main(["index", str(folder), "--out", str(tmp_path / "ray.index"), "--from-parquet", str(parquet)]) == 0
    assert main(["index", str(folder), "--out", str(tmp_path / "one.index"), "--model", str(model_dir)]) == 0
    capsys.readouterr()
    for query in ("juggling", "someone playing the guitar"):
        answers = []
        for index in ("ray.index", "one.index"):
            assert main(["search", str(tmp_path / index), query, "-k", "3", "--json"]) == 0
            answers.append(json.loads(capsys.readouterr().out))
        from_ray, in_one_process = answers
        assert [(hit["path"], hit["start"], hit["end"]) for hit in from_ray] == [
            (hit["path"], hit["start"], hit["end"]) for hit in in_one_process
        ]
        assert len(from_ray) == 3
        np.testing.assert_allclose(
            [hit["score"] for hit in from_ray], [hit["score"] for hit in in_one_process], atol=1e-6
        )
