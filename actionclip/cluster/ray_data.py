"""A video collection on a Ray cluster (``pip install 'actionclip[ray]'``): decoding in CPU tasks, the model in GPU
actors, over a ``ray.data`` dataset of paths; embeddings for an index and predictions, written as Parquet.

```python
>>> import ray
>>> from actionclip.cluster.ray_data import classify_collection, embed_collection
>>> ray.init(address="auto")  # the cluster; a bare ray.init() starts a local one
>>> embed_collection("/shared/videos", "/shared/model", "/shared/videos.parquet", segment=4.0)
{'videos': 1200, 'vectors': 9311, 'failed': 2}
>>> classify_collection("/shared/videos", "/shared/model", ["juggling", "tai chi"], "/shared/labels.parquet")
```

The stages are the engine's own, split where a process boundary can go:

- decoding (:func:`decode_for_index`, :func:`decode_clips`, ``map_batches`` tasks of ``num_cpus`` each): for the
  index, exactly the frames `apps.search.embed_video` reads (`apps.search.decode_tiles`: the distinct frames of
  the file's time grid, uint8 as decoded), with the file's size, modification time and SHA-256; for
  classification, the pipeline's clips (`video_clips.prepare_clip` with the pipeline's `clip_spec`: uint8
  ``(V, T, S, S, 3)``, resized and cropped);
- the model (:class:`IndexEmbedder`, :class:`ClipClassifier`, actors of ``num_gpus`` each, ``concurrency`` of
  them): the pipeline is loaded once per actor (on ``cuda`` when the actor got a GPU, else the CPU) and makes the
  same calls as the one-process path (`apps.search.embed_tiles`; the pipeline itself on ``{"frames": ...}``
  inputs), so the results are equal;
- writing (this process): one Parquet file, written whole or not at all (`files.replaced_when_done`), row groups as
  the results stream in.

A decoded row holds one video's frames as the decoder gives them (for the index: ``T`` per segment at the file's
resolution), so long videos in short segments make large rows; Ray's object store spills them to disk.

A file that cannot be read (missing, not a video, too short, too large, timed out) becomes a row with its ``error``
and no result; the job goes on. Every worker reads the files and the model folder at the paths given here, so on
a cluster they lie on a filesystem every node mounts at the same place; an actor whose model differs from the one
this process loaded (another copy of the folder) stops the job with `IndexMismatchError`.

Embeddings (the index's input: ``actionclip index DIR --out INDEX --from-parquet OUT``) are one row per vector:
``path`` (relative to the root), ``start`` / ``end`` (seconds), ``embedding`` (``fixed_size_list<float32>[D]``,
L2-normalised), ``size``, ``mtime_ns``, ``sha256``, ``error``; the schema's metadata ``b"actionclip"`` is JSON of
the root, the model (`describe_model`: name, revision, weights fingerprint, dim), the preprocessing settings and
their hash. Predictions are one row per video: ``path``, ``labels`` and ``scores`` (best first, ``top_k`` of
them), ``error``; the metadata names the model, the labels and the options.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..apps.search import (
    decode_tiles,
    decoded_frames_reader,
    describe_model,
    embed_tiles,
    file_sha256,
    preprocessing_settings,
    settings_hash,
    tile_grid,
)
from ..apps.windows import frames_per_window
from ..data.video_files import find_video_files
from ..errors import (
    ActionCLIPError,
    IndexMismatchError,
    MissingAppDependencyError,
    PipelineArgumentError,
    VideoIndexError,
    positive_int,
)
from ..files import replaced_when_done
from ..model_loading import check_model_path
from ..video_clips import ClipSpec, prepare_clip

METADATA_KEY = b"actionclip"
NO_FRAMES = np.zeros((0, 1, 1, 3), dtype=np.uint8)
"""The ``frames`` of a row whose file failed (a tensor column needs an array of the same rank in every row)."""


def import_ray():
    """The ``ray`` module, started (a local runtime unless ``ray.init(address=...)`` ran first).

    Raises:
        MissingAppDependencyError: Ray Data is not installed.
    """
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise MissingAppDependencyError(
            "the cluster path needs Ray Data; install it with: pip install 'actionclip[ray]'"
        ) from None
    if not ray.is_initialized():
        ray.init()
    return ray


def load_classifier(model: str, device: str | None = None):
    """The zero-shot pipeline of ``model`` on ``device`` (default ``cuda`` when this process sees a GPU: an actor
    given one by Ray; else the CPU)."""
    import torch
    from transformers import pipeline

    check_model_path(model)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return pipeline("zero-shot-video-classification", model=model, device=device)


def check_same_model(pipeline, fingerprint: str) -> None:
    """Refuse a worker's model whose weights are not those the job was planned with."""
    found = describe_model(pipeline)["fingerprint"]
    if found != fingerprint:
        raise IndexMismatchError(
            f"model {pipeline.model.name_or_path!r} has weights {found} on this worker, but {fingerprint} where the "
            "job started: give every node the same model folder"
        )


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------------------------------------------- datasets


def video_dataset(root):
    """A ``ray.data`` dataset of the video files under ``root``: one row ``{"path": relative POSIX path}`` each,
    sorted (`data.video_files.find_video_files`), in that order through the stages.

    Raises:
        VideoIndexError: ``root`` is not a directory; EmptyVideoFolderError: it holds no video.
    """
    return path_dataset(find_video_files(root))


def path_dataset(paths: Sequence[str]):
    """A ``ray.data`` dataset of ``{"path": path}`` rows, one block per path (each decoded by its own task), kept
    in this order by the stages."""
    ray = import_ray()
    paths = [str(path) for path in paths]
    if not paths:
        raise VideoIndexError("the list of videos is empty")
    dataset = ray.data.from_items([{"path": path} for path in paths], override_num_blocks=len(paths))
    dataset.context.execution_options.preserve_order = True  # this dataset's own copy of the context
    return dataset


# ---------------------------------------------------------------------------------------------------- decoding


def decode_for_index(batch: dict, root: str, segment: float | None, num_frames: int, timeout: float = 30.0) -> dict:
    """``map_batches`` function (CPU): each ``path`` (relative to ``root``) -> the frames `apps.search.embed_video`
    reads, uint8 ``(U, H, W, 3)`` as decoded, with the time grid's inputs (``duration``, ``num_video_frames``) and
    the file's ``size``, ``mtime_ns``, ``sha256``; ``error`` is ``""``, or the error and no frames."""
    columns = {name: [] for name in ("path", "size", "mtime_ns", "sha256", "duration", "num_video_frames")}
    columns.update(frames=[], error=[])
    for relative in batch["path"]:
        path = Path(root) / str(relative)
        size, mtime_ns, digest, duration, count, frames, error = -1, -1, "", 0.0, 0, NO_FRAMES, ""
        try:
            stat = path.stat()
            size, mtime_ns = stat.st_size, stat.st_mtime_ns
            digest = file_sha256(path)
            grid, frames = decode_tiles(path, segment, num_frames, timeout)
            duration, count = grid.duration, grid.num_video_frames
        except (ActionCLIPError, OSError) as caught:
            error = error_text(caught)
        for name, value in zip(columns, (str(relative), size, mtime_ns, digest, duration, count, frames, error)):
            columns[name].append(value)
    return columns


def decode_clips(batch: dict, spec: ClipSpec) -> dict:
    """``map_batches`` function (CPU): each ``path`` -> the pipeline's clip, uint8 ``(V, T, S, S, 3)``
    (`video_clips.prepare_clip` with ``spec``, the pipeline's `clip_spec`); ``error`` is ``""``, or the error and no
    frames."""
    paths, clips, errors = [], [], []
    for path in batch["path"]:
        clip, error = NO_FRAMES[None], ""
        try:
            clip = prepare_clip(str(path), spec)
        except (ActionCLIPError, OSError) as caught:
            error = error_text(caught)
        paths.append(str(path))
        clips.append(clip)
        errors.append(error)
    return {"path": paths, "frames": clips, "error": errors}


# ---------------------------------------------------------------------------------------------------- the model


def embedding_schema(dim: int, metadata: dict):
    """The Parquet schema of embeddings for an index, with ``metadata`` as JSON under ``b"actionclip"``."""
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("start", pa.float64()),
            ("end", pa.float64()),
            ("embedding", pa.list_(pa.float32(), dim)),
            ("size", pa.int64()),
            ("mtime_ns", pa.int64()),
            ("sha256", pa.string()),
            ("error", pa.string()),
        ],
        metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()},
    )


def prediction_schema(metadata: dict):
    """The Parquet schema of predictions, with ``metadata`` as JSON under ``b"actionclip"``."""
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("labels", pa.list_(pa.string())),
            ("scores", pa.list_(pa.float64())),
            ("error", pa.string()),
        ],
        metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()},
    )


class IndexEmbedder:
    """``map_batches`` actor: decoded rows (:func:`decode_for_index`) -> one row per vector in the embedding schema
    (a failed file: one row with its error), by `apps.search.embed_tiles`, the embed half of ``embed_video``.

    The pipeline is loaded once per actor; its weights must be those the job was planned with (``fingerprint``).
    """

    def __init__(
        self, model: str, segment: float | None, num_frames: int, fingerprint: str, device: str | None = None
    ):
        self.pipeline = load_classifier(model, device)
        check_same_model(self.pipeline, fingerprint)
        self.segment, self.num_frames = segment, num_frames
        self.dim = int(self.pipeline.model.config.projection_dim)

    def __call__(self, batch: dict):
        import pyarrow as pa

        rows = {name: [] for name in ("path", "start", "end", "embedding", "size", "mtime_ns", "sha256", "error")}

        def add(path, start, end, embedding, size, mtime_ns, digest, error):
            for name, value in zip(rows, (path, start, end, embedding, size, mtime_ns, digest, error)):
                rows[name].append(value)

        for row in range(len(batch["path"])):
            path, error = str(batch["path"][row]), str(batch["error"][row]) or None
            size, mtime_ns = int(batch["size"][row]), int(batch["mtime_ns"][row])
            file_fields = (
                None if size < 0 else size,
                None if mtime_ns < 0 else mtime_ns,
                batch["sha256"][row] or None,
            )
            if error is None:
                try:
                    grid = tile_grid(
                        float(batch["duration"][row]),
                        int(batch["num_video_frames"][row]),
                        self.segment,
                        self.num_frames,
                    )
                    embeds, spans = embed_tiles(self.pipeline, grid, decoded_frames_reader(grid, batch["frames"][row]))
                except ActionCLIPError as caught:
                    error = error_text(caught)
            if error is not None:
                add(path, None, None, None, *file_fields, error)
                continue
            for embedding, (start, end) in zip(embeds, spans):
                add(path, float(start), float(end), embedding, *file_fields, None)
        return pa.Table.from_pydict(rows, schema=embedding_schema(self.dim, {}).remove_metadata())


class ClipClassifier:
    """``map_batches`` actor: decoded clips (:func:`decode_clips`) -> ``path``, ``labels``, ``scores`` (best first)
    and ``error``, by the pipeline itself (its ``{"frames": ...}`` input: the same batching, model calls and
    scoring as for files).

    ``options`` are the pipeline's call options (``candidate_labels``, ``hypothesis_template``, ``top_k``,
    ``logit_scale``, ``ensemble``, ...).
    """

    def __init__(self, model: str, options: dict, fingerprint: str, device: str | None = None):
        self.pipeline = load_classifier(model, device)
        check_same_model(self.pipeline, fingerprint)
        self.options = options

    def __call__(self, batch: dict):
        import pyarrow as pa

        paths = [str(path) for path in batch["path"]]
        errors = [str(error) or None for error in batch["error"]]
        present = [row for row, error in enumerate(errors) if error is None]
        results = {}
        if present:
            inputs = [{"frames": np.asarray(batch["frames"][row])} for row in present]
            ranked = self.pipeline.iter_results(inputs, batch_size=len(inputs), num_workers=0, **self.options)
            results = dict(zip(present, ranked))
        labels = [[item["label"] for item in results[row]] if row in results else None for row in range(len(paths))]
        scores = [[item["score"] for item in results[row]] if row in results else None for row in range(len(paths))]
        columns = {"path": paths, "labels": labels, "scores": scores, "error": errors}
        return pa.Table.from_pydict(columns, schema=prediction_schema({}).remove_metadata())


# ---------------------------------------------------------------------------------------------------- the jobs


def two_stages(paths: Sequence[str], decode, decode_kwargs: dict, actor, actor_kwargs: dict, resources: dict):
    """``paths`` through ``decode`` (``map_batches`` tasks, one video per batch) and then ``actor`` (an actor pool),
    with the cluster ``resources`` of :func:`embed_collection`."""
    ray = import_ray()
    num_cpus, model_num_cpus = resources["num_cpus"], resources["model_num_cpus"]
    num_gpus, concurrency = resources["num_gpus"], resources["concurrency"]
    gpus = float(ray.cluster_resources().get("GPU", 0))
    if num_gpus is None:
        num_gpus = 1 if gpus else 0
    for name, value in (("num_gpus", num_gpus), ("num_cpus", num_cpus), ("model_num_cpus", model_num_cpus)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise PipelineArgumentError(f"{name} must be a number >= 0, got {value!r}")
    if concurrency is None:
        concurrency = max(1, int(gpus // num_gpus)) if num_gpus else 1
    concurrency = positive_int(concurrency, "concurrency", PipelineArgumentError)
    batch_size = positive_int(resources["batch_size"], "batch_size", PipelineArgumentError)
    decoded = path_dataset(paths).map_batches(
        decode, fn_kwargs=decode_kwargs, batch_size=1, batch_format="numpy", num_cpus=num_cpus
    )
    return decoded.map_batches(
        actor,
        fn_constructor_kwargs=actor_kwargs,
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=model_num_cpus,
        num_gpus=num_gpus,
    )


def write_parquet(dataset, out, schema) -> tuple[int, int]:
    """Stream ``dataset``'s result tables into one Parquet file ``out`` with ``schema`` (whole or not at all).

    Returns:
        the rows written, and how many of them are errors.
    """
    import pyarrow.parquet as pq

    rows = failed = 0
    with replaced_when_done(out) as temporary, pq.ParquetWriter(temporary, schema) as writer:
        for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            table = table.select(schema.names).cast(schema)
            writer.write_table(table)
            rows += table.num_rows
            failed += table.num_rows - table.column("error").null_count
    return rows, failed


def embed_collection(
    root,
    model: str,
    out,
    segment: float | None = None,
    *,
    num_frames: int | None = None,
    num_gpus: float | None = None,
    concurrency: int | None = None,
    num_cpus: float = 1,
    model_num_cpus: float = 1,
    batch_size: int = 1,
    timeout: float = 30.0,
    device: str | None = None,
) -> dict:
    """Embeddings of every video under ``root`` (whole videos, or ``segment`` seconds long parts) written to the
    Parquet file ``out`` for ``actionclip index ROOT --out INDEX --from-parquet OUT``.

    Args:
        root: the folder (every node reads it at this path).
        model: an ActionCLIP model folder (every node reads it at this path) or Hub id.
        segment, num_frames: as for `VideoIndex.create`.
        num_gpus: GPUs per model actor (default 1 where the cluster has GPUs, else 0).
        concurrency: model actors (default one per GPU; 1 without GPUs).
        num_cpus: CPUs per decoding task.
        model_num_cpus: CPUs per model actor. Ray runs two stages with the same resources as one (decoding inside
            the actors): without GPUs, give the actors another CPU count than the decoding tasks to keep them apart.
        batch_size: decoded videos handed to an actor per call.
        timeout: seconds one video may take to open and decode.
        device: the actors' device (default ``cuda`` when the actor has a GPU, else ``cpu``).

    Returns:
        ``{"videos", "vectors", "failed"}`` counts.

    Raises:
        VideoIndexError: ``root`` is no folder, holds no video, or ``segment`` is not a positive number.
    """
    found = find_video_files(root)  # no folder, no video: before the model loads
    if segment is not None and not (isinstance(segment, (int, float)) and np.isfinite(segment) and segment > 0):
        raise VideoIndexError(f"segment must be a positive number of seconds or None, got {segment!r}")
    segment = None if segment is None else float(segment)
    pipeline = load_classifier(model, "cpu")  # what the metadata names, and what every actor must load
    num_frames = frames_per_window(pipeline, num_frames)
    settings = preprocessing_settings(pipeline, segment, num_frames)
    described = describe_model(pipeline)
    metadata = {
        "root": str(Path(root).resolve()),
        "model": described,
        "preprocessing": settings,
        "preprocessing_hash": settings_hash(settings),
    }
    del pipeline
    embedded = two_stages(
        found,
        decode_for_index,
        dict(root=metadata["root"], segment=segment, num_frames=num_frames, timeout=timeout),
        IndexEmbedder,
        dict(
            model=model_location(model),
            segment=segment,
            num_frames=num_frames,
            fingerprint=described["fingerprint"],
            device=device,
        ),
        dict(
            num_cpus=num_cpus,
            model_num_cpus=model_num_cpus,
            num_gpus=num_gpus,
            concurrency=concurrency,
            batch_size=batch_size,
        ),
    )
    rows, failed = write_parquet(embedded, out, embedding_schema(described["dim"], metadata))
    return {"videos": len(found), "vectors": rows - failed, "failed": failed}


def classify_collection(
    videos,
    model: str,
    labels,
    out,
    *,
    hypothesis_template=None,
    top_k: int | None = 5,
    num_frames: int | None = None,
    num_clips: int = 1,
    num_crops: int = 1,
    logit_scale: float | None = None,
    ensemble: str | None = None,
    num_gpus: float | None = None,
    concurrency: int | None = None,
    num_cpus: float = 1,
    model_num_cpus: float = 1,
    batch_size: int = 8,
    timeout: float = 30.0,
    device: str | None = None,
) -> dict:
    """Predictions for every video (a folder's, searched recursively, or a list of paths) written to the Parquet
    file ``out``: ``path`` (as decoded: a folder's files under the folder's path), the ``top_k`` ``labels`` and their
    ``scores`` best first (``top_k=None``: every label), or the ``error``.

    Labels, templates and options are the pipeline's (checked here, before any video is decoded); the cluster's
    arguments as for :func:`embed_collection` (``batch_size``: videos per forward pass).

    Returns:
        ``{"videos", "failed"}`` counts.
    """
    if isinstance(videos, (str, Path)) and Path(videos).is_dir():
        paths = [str(Path(videos) / relative) for relative in find_video_files(videos)]
    elif isinstance(videos, (str, Path)):
        paths = [str(videos)]
    else:
        paths = [str(video) for video in videos]
    pipeline = load_classifier(model, "cpu")  # the options checked, the clip spec, the metadata
    options = dict(
        candidate_labels=labels,
        hypothesis_template=hypothesis_template,
        top_k=top_k,
        num_frames=num_frames,
        num_clips=num_clips,
        num_crops=num_crops,
        logit_scale=logit_scale,
        ensemble=ensemble,
    )
    options = {name: value for name, value in options.items() if value is not None}
    preprocess_params, forward_params, _ = pipeline.call_options(**options, timeout=timeout)
    names, templater, _ = pipeline.prepare_labels(labels, forward_params.get("hypothesis_template"))
    described = describe_model(pipeline)
    metadata = {
        "model": described,
        "labels": names,
        "templates": list(templater.templates),
        "options": {name: value for name, value in options.items() if name != "candidate_labels"},
    }
    spec = pipeline.clip_spec(**preprocess_params)
    del pipeline
    classified = two_stages(
        paths,
        decode_clips,
        dict(spec=spec),
        ClipClassifier,
        dict(model=model_location(model), options=options, fingerprint=described["fingerprint"], device=device),
        dict(
            num_cpus=num_cpus,
            model_num_cpus=model_num_cpus,
            num_gpus=num_gpus,
            concurrency=concurrency,
            batch_size=batch_size,
        ),
    )
    _, failed = write_parquet(classified, out, prediction_schema(metadata))
    return {"videos": len(paths), "failed": failed}


def model_location(model: str) -> str:
    """A local model folder as an absolute path (the workers' working directory is not this one); a Hub id as is."""
    path = Path(model).expanduser()
    return str(path.resolve()) if path.is_dir() else str(model)


__all__ = [
    "ClipClassifier",
    "IndexEmbedder",
    "classify_collection",
    "decode_clips",
    "decode_for_index",
    "embed_collection",
    "embedding_schema",
    "prediction_schema",
    "path_dataset",
    "video_dataset",
]
