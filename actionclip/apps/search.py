"""Search a video collection by text or by an example video: `VideoIndex`.

An index holds one L2-normalised video embedding per whole video or per fixed-length segment, stored as float16,
with where each came from (path relative to the indexed folder, start and end in seconds) and what made it: the
model (name, revision, a fingerprint of its weights) and the preprocessing (the video processor's settings, frames
per clip, segment length; and their hash). Vectors of another model or other preprocessing do not compare, so an
index refuses to be searched or updated with them (`IndexMismatchError`).

Embedding: a video (or a segment) is ``T`` frames on the time grid of :mod:`actionclip.apps.windows`, so segments
share the grid and, with a post-network prompt, each distinct frame goes through the vision tower once. Segments
tile the video from 0; when a tail is left, a last segment ends at the end of the video (overlapping its neighbour).

Updating is incremental: new files are embedded, files whose size or modification time changed are hashed (SHA-256)
and re-embedded when their content changed, files that disappeared are dropped. Each embedded file is committed to
disk when it is done, so an interrupted update keeps what it finished and the next one embeds only the rest; another
writer is refused (`IndexLockedError`) or waited for. `VideoIndex.plan_update` / `VideoIndex.commit` split an update
between processes; `VideoIndex.ingest_parquet` commits rows embedded elsewhere (Parquet, checked against the index's
model and preprocessing).

The index is a folder of :mod:`actionclip.store.vector_store`: immutable segments committed by renaming a manifest
(a search during an update sees the old or the new rows), searched exactly below ``AnnSettings.min_rows`` rows and
through a FAISS IVF-PQ index above, every candidate re-scored exactly; ties are ordered by (path, start), so an
updated index answers as one built afresh from the same folder. The score is the cosine on every backbone family: a
sigmoid family's (SigLIP's) pair probability, ``sigmoid(scale * cos + bias)``, increases with it, so the ranking is
the same, and a cosine does not depend on the scale and bias the model scores labels with. Single-file indexes of
earlier versions (``.npz``) are converted by `VideoIndex.convert` (``actionclip index --convert``).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.video_files import find_video_files
from ..errors import IndexMismatchError, VideoDecodeError, VideoIndexError
from ..store.vector_store import AnnSettings, FileRows, VectorStore, unit_rows
from .windows import (
    FrameSource,
    WindowGrid,
    frames_at,
    frames_per_window,
    make_window_grid,
    uses_cached_frames,
    window_embeddings,
)

INDEX_FORMAT = 2
"""Format of the index's meta (1: the single ``.npz`` file of earlier versions, converted by `VideoIndex.convert`)."""
_HASH_BLOCK = 1 << 20


@dataclass(frozen=True)
class SearchHit:
    """One result: the video ``path`` (absolute), the ``start`` / ``end`` seconds of the matched part, the cosine
    ``score`` and the ``row`` in the index."""

    path: str
    start: float
    end: float
    score: float
    row: int

    def to_dict(self) -> dict:
        return {"path": self.path, "start": self.start, "end": self.end, "score": self.score}


# ---------------------------------------------------------------------------------------------------------- helpers


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def model_fingerprint(model) -> str:
    """A short hash of the weights: every tensor's name, shape and first 64 values (cheap, and differs between any
    two trained models)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().reshape(-1)[:64].to(device="cpu", dtype=torch.float32).numpy().tobytes())
    return digest.hexdigest()[:16]


def preprocessing_settings(pipeline, segment: float | None, num_frames: int) -> dict:
    """What turns a file into the model's input: the video processor's settings, frames per clip, segment length."""
    processor = json.loads(json.dumps(pipeline.processor.video_processor.to_dict(), sort_keys=True, default=str))
    return {"video_processor": processor, "num_frames": int(num_frames), "segment": segment, "sampling": "time-grid"}


def settings_hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def describe_model(pipeline) -> dict:
    model = pipeline.model
    name = str(getattr(model, "name_or_path", "") or model.config.name_or_path or "")
    return {
        "name": str(Path(name).resolve()) if name and Path(name).is_dir() else name,
        "revision": getattr(model.config, "_commit_hash", None),
        "fingerprint": model_fingerprint(model),
        "dim": int(model.config.projection_dim),
    }


def tile_grid(duration: float, num_video_frames: int, segment: float | None, num_frames: int) -> WindowGrid:
    """Windows covering the whole video: one (``segment`` ``None`` or not shorter than the video) or segments from 0,
    the last one ending at the end of the video."""
    if segment is None or segment >= duration:
        return make_window_grid(duration, num_video_frames, duration, duration, num_frames)
    grid = make_window_grid(duration, num_video_frames, segment, segment, num_frames)
    if grid.starts[-1] + segment >= duration - grid.step / 2:
        return grid
    start = duration - segment
    times = start + (np.arange(num_frames) + 0.5) * grid.step
    tail = frames_at(times, duration, num_video_frames)
    return WindowGrid(
        duration=grid.duration,
        num_video_frames=grid.num_video_frames,
        window=grid.window,
        stride=grid.stride,
        step=grid.step,
        frame_indices=np.concatenate([grid.frame_indices, tail[None]]),
        starts=np.append(grid.starts, start),
    )


@contextmanager
def opened_tiles(video, segment: float | None, num_frames: int, timeout: float = 30.0):
    """The video opened once: ``(grid, read)``, its :func:`tile_grid` and ``read(indices)`` -> uint8 frames
    ``(k, H, W, 3)`` as decoded; closed on leaving the block."""
    source = FrameSource(video, None, timeout)
    try:
        yield tile_grid(source.duration, source.num_frames, segment, num_frames), source.read
    finally:
        source.close()


def decode_tiles(video, segment: float | None, num_frames: int, timeout: float = 30.0):
    """The decode half of :func:`embed_video`, all at once (to decode in one process and embed in another): the
    grid and its distinct frames.

    Returns:
        the :func:`tile_grid` and uint8 ``(U, H, W, 3)`` frames, those of ``grid.distinct_frames`` in order, as
        decoded (memory grows with the number of segments: ``T`` frames each).
    """
    with opened_tiles(video, segment, num_frames, timeout) as (grid, read):
        return grid, read(grid.distinct_frames)


def decoded_frames_reader(grid: WindowGrid, frames: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """``read(indices)`` over the frames :func:`decode_tiles` gave (what :func:`embed_tiles` takes)."""
    distinct = grid.distinct_frames
    return lambda indices: frames[np.searchsorted(distinct, indices)]


def embed_tiles(pipeline, grid: WindowGrid, read: Callable[[np.ndarray], np.ndarray]):
    """The embed half of :func:`embed_video`: L2-normalised embeddings of the grid's windows, frames from
    ``read(indices)``.

    Returns:
        float32 ``(S, D)`` embeddings and float64 ``(S, 2)`` start / end seconds.
    """
    embeds, _ = window_embeddings(pipeline, read, grid, uses_cached_frames(pipeline.model.config))
    embeds = torch.nn.functional.normalize(embeds.float(), dim=-1).cpu().numpy()
    spans = np.stack([grid.starts, np.minimum(grid.starts + grid.window, grid.duration)], axis=1)
    return embeds, spans


def embed_video(pipeline, video, segment: float | None = None, num_frames: int | None = None, timeout: float = 30.0):
    """L2-normalised embeddings of a whole video or of its segments (:func:`embed_tiles` of the frames as
    :func:`opened_tiles` reads them, a chunk at a time).

    Returns:
        float32 ``(S, D)`` embeddings and float64 ``(S, 2)`` start / end seconds.
    """
    with opened_tiles(video, segment, frames_per_window(pipeline, num_frames), timeout) as (grid, read):
        return embed_tiles(pipeline, grid, read)


# ---------------------------------------------------------------------------------------------------------- index


@dataclass(frozen=True)
class FileToEmbed:
    """A file an update has to embed: its path relative to the index's root, size, modification time, SHA-256 and
    ``what`` it is (``"added"``: new; ``"changed"``: its content changed since it was indexed)."""

    relative: str
    size: int
    mtime_ns: int
    sha256: str
    what: str


@dataclass(frozen=True)
class UpdatePlan:
    """What an update does, computed from the folder and the committed index alone (so every process of a sharded
    run computes the same plan and embeds ``to_embed[rank::world]``).

    Attributes:
        to_embed: files to embed, sorted by relative path.
        removed: indexed files no longer in the folder, sorted.
        unchanged: files indexed as they are.
        refreshed: unchanged files whose size or time changed but not their content (their records are renewed;
            leaving them makes the next plan hash them again, nothing worse).
    """

    to_embed: list[FileToEmbed]
    removed: list[str]
    unchanged: int
    refreshed: list[FileToEmbed] = field(default_factory=list)


@dataclass(frozen=True)
class EmbeddedFile:
    """One file's rows for :meth:`VideoIndex.commit`: float32 ``(S, D)`` L2-normalised ``embeddings`` and float64
    ``(S, 2)`` start / end seconds, with the file's size, modification time and SHA-256 when it was read."""

    relative: str
    size: int
    mtime_ns: int
    sha256: str
    embeddings: np.ndarray
    spans: np.ndarray

    def rows(self) -> FileRows:
        return FileRows(self.relative, _record(self), self.embeddings, self.spans)


def _record(item) -> dict:
    return {"size": int(item.size), "mtime_ns": int(item.mtime_ns), "sha256": str(item.sha256)}


class VideoIndex:
    """Embeddings of a folder's videos (or their segments), searchable by text or by example video, kept in an
    index folder (:mod:`actionclip.store.vector_store`): every write is a commit on disk.

    ```python
    >>> from transformers import pipeline
    >>> from actionclip.apps.search import VideoIndex
    >>> classifier = pipeline("zero-shot-video-classification", model="path/to/model")
    >>> index = VideoIndex.build("videos.index", "videos/", classifier, segment=4.0)  # or VideoIndex.open(...)
    >>> index.search_text("someone juggling", classifier, k=5)
    [SearchHit(path='/.../videos/park.mp4', start=8.0, end=12.0, score=0.31, row=17), ...]
    ```

    ``meta``: format, root, model (name, revision, fingerprint, dim), preprocessing settings and their hash.
    """

    def __init__(self, store: VectorStore):
        self.store = store
        self.meta = store.meta

    def __len__(self) -> int:
        return len(self.store.snapshot())

    def __repr__(self) -> str:
        return (
            f"VideoIndex({str(self.store.folder)!r}: {len(self.files)} files, {len(self)} vectors of "
            f"{self.meta['model']['dim']}, root={self.meta['root']!r}, segment={self.meta['preprocessing']['segment']})"
        )

    @property
    def root(self) -> Path:
        return Path(self.meta["root"])

    @property
    def files(self) -> dict:
        """Relative path -> ``{"size", "mtime_ns", "sha256"}`` of every indexed file."""
        return self.store.snapshot().files

    @property
    def paths(self) -> list[str]:
        """The path (relative to ``root``) of every row, rows ordered by (path, start); like `spans` and
        `embeddings`, a full read of the index."""
        return self.store.snapshot().rows()[0]

    @property
    def spans(self) -> np.ndarray:
        """float64 ``(M, 2)`` start / end seconds of every row, ordered as `paths`."""
        return self.store.snapshot().rows()[1]

    @property
    def embeddings(self) -> np.ndarray:
        """float16 ``(M, D)`` L2-normalised vectors, ordered as `paths`."""
        return self.store.snapshot().rows()[2]

    # -- opening and creating ----------------------------------------------------------------------------------

    @classmethod
    def open(cls, path) -> VideoIndex:
        """The index folder ``path``.

        Raises:
            VideoIndexError: missing, not an index, a single-file index of an earlier version (the message says how
                to convert it), or of an unknown format.
        """
        store = VectorStore.open(path)
        if store.meta.get("format") != INDEX_FORMAT:
            raise VideoIndexError(f"index {str(path)!r} has format {store.meta.get('format')!r}, not {INDEX_FORMAT}")
        return cls(store)

    @classmethod
    def create(
        cls, path, root, pipeline, *, segment: float | None = None, num_frames: int | None = None,
        settings: AnnSettings | None = None,
    ) -> VideoIndex:  # fmt: skip
        """An empty index folder ``path`` of the folder ``root`` for ``pipeline``'s model; ``segment`` seconds
        (``None``: whole videos); ``settings``: when and how it uses FAISS."""
        if segment is not None and not (isinstance(segment, (int, float)) and np.isfinite(segment) and segment > 0):
            raise VideoIndexError(f"segment must be a positive number of seconds or None, got {segment!r}")
        num_frames = frames_per_window(pipeline, num_frames)
        preprocessing = preprocessing_settings(pipeline, None if segment is None else float(segment), num_frames)
        meta = {
            "root": str(Path(root).resolve()),
            "model": describe_model(pipeline),
            "preprocessing": preprocessing,
            "preprocessing_hash": settings_hash(preprocessing),
        }
        return cls.create_from_meta(path, meta, settings)

    @classmethod
    def create_from_meta(cls, path, meta: dict, settings: AnnSettings | None = None) -> VideoIndex:
        """An empty index folder for what ``meta`` (root, model, preprocessing and its hash) describes."""
        meta = {key: meta[key] for key in ("root", "model", "preprocessing", "preprocessing_hash")}
        return cls(VectorStore.create(path, meta["model"]["dim"], {"format": INDEX_FORMAT, **meta}, settings))

    @classmethod
    def build(cls, path, root, pipeline, *, segment=None, num_frames=None, settings=None, **kwargs) -> VideoIndex:
        """:meth:`create` then :meth:`update`: every video under ``root``."""
        index = cls.create(path, root, pipeline, segment=segment, num_frames=num_frames, settings=settings)
        index.update(pipeline, **kwargs)
        return index

    @classmethod
    def convert(cls, old, path) -> VideoIndex:
        """The single ``.npz`` index file ``old`` (written by earlier versions) as a new index folder ``path``."""
        try:
            with np.load(old, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in ("embeddings", "paths", "spans", "files", "meta")}
            meta, files = json.loads(str(arrays["meta"])), json.loads(str(arrays["files"]))
        except (OSError, ValueError, KeyError) as error:
            raise VideoIndexError(f"{str(old)!r} is not a single-file actionclip video index ({error})") from None
        if not isinstance(meta, dict) or meta.get("format") != 1:
            raise VideoIndexError(f"{str(old)!r} has format {meta.get('format')!r}: only format 1 is converted")
        index = cls.create_from_meta(path, meta)
        paths = np.asarray(arrays["paths"]).astype(str)
        rows = []
        for relative, record in sorted(files.items()):
            mine = paths == relative
            rows.append(FileRows(relative, record, arrays["embeddings"][mine], arrays["spans"][mine]))
        index.store.commit([entry for entry in rows if len(entry.vectors)])
        return index

    def check_compatible(self, pipeline) -> None:
        """Raise `IndexMismatchError` unless ``pipeline``'s model and preprocessing made this index."""
        self.check_model(describe_model(pipeline), "model")
        settings = preprocessing_settings(
            pipeline, self.meta["preprocessing"]["segment"], self.meta["preprocessing"]["num_frames"]
        )
        self.check_preprocessing(settings, settings_hash(settings), "the index was made")

    def check_model(self, model: dict, what: str) -> None:
        """Raise `IndexMismatchError` unless ``model`` (`describe_model`'s dict) made this index."""
        stored = self.meta["model"]
        if model["fingerprint"] != stored["fingerprint"] or model["dim"] != stored["dim"]:
            raise IndexMismatchError(
                f"the index was made by model {stored['name']!r} (weights {stored['fingerprint']}), not by "
                f"{what} {model['name']!r} (weights {model['fingerprint']}): use that model, or build a new index"
            )

    def check_preprocessing(self, settings: dict, digest: str, what: str) -> None:
        if digest != self.meta["preprocessing_hash"]:
            ours, theirs = self.meta["preprocessing"], settings
            changed = sorted(
                key
                for key in set(ours["video_processor"]) | set(theirs.get("video_processor", {}))
                if ours["video_processor"].get(key) != theirs.get("video_processor", {}).get(key)
            ) + [key for key in ("num_frames", "segment") if ours.get(key) != theirs.get(key)]
            raise IndexMismatchError(
                f"{what} with other preprocessing (differs in: {', '.join(changed) or 'settings'}): "
                "use the processor the index was built with, or build a new index"
            )

    # -- updating ----------------------------------------------------------------------------------------------

    def plan_update(self) -> UpdatePlan:
        """Compare the folder with the committed index: what to embed, what was removed (files whose size or time
        changed are hashed; the same content is not embedded again)."""
        found = find_video_files(self.root)
        files = self.files
        to_embed, refreshed, unchanged = [], [], 0
        for relative in found:
            stat = (self.root / relative).stat()
            record = files.get(relative)
            if record is not None and record["size"] == stat.st_size and record["mtime_ns"] == stat.st_mtime_ns:
                unchanged += 1
                continue
            item = FileToEmbed(relative, stat.st_size, stat.st_mtime_ns, file_sha256(self.root / relative),
                               "added" if record is None else "changed")  # fmt: skip
            if record is not None and record["sha256"] == item.sha256:
                unchanged += 1
                refreshed.append(item)
            else:
                to_embed.append(item)
        return UpdatePlan(sorted(to_embed, key=lambda item: item.relative), sorted(set(files) - set(found)),
                          unchanged, refreshed)  # fmt: skip

    def commit(
        self, files: Iterable[EmbeddedFile] = (), removed: Iterable[str] = (), refreshed: Iterable[FileToEmbed] = (),
        wait: bool | float = True,
    ) -> None:  # fmt: skip
        """One transaction on disk: each file's old rows replaced by its new ones, ``removed`` files' rows deleted,
        ``refreshed`` files' records renewed (rows kept). Waits for another writer unless ``wait`` is False (or a
        number of seconds)."""
        rows = [item.rows() for item in files]
        rows += [FileRows(item.relative, _record(item)) for item in refreshed]
        self.store.commit(rows, removed, wait=wait)

    def update(
        self, pipeline, *, progress: Callable[[str, str], None] | None = None, timeout: float = 30.0,
        wait: bool | float = False,
    ) -> dict:  # fmt: skip
        """Bring the index up to date with its folder: embed new files, re-embed changed ones, drop removed ones;
        each file is committed when it is embedded, so an interrupted update keeps what it finished.

        ``progress(relative_path, what)`` is called per file embedded. Files that fail to decode are left out
        with a warning (and tried again next time). ``wait``: False raises `IndexLockedError` when another process
        is writing the index, True waits for it.

        Returns:
            counts ``{"added", "changed", "removed", "unchanged", "failed"}``.
        """
        self.check_compatible(pipeline)
        segment = self.meta["preprocessing"]["segment"]
        num_frames = self.meta["preprocessing"]["num_frames"]
        with self.store.writing(wait):
            plan = self.plan_update()
            counts = {"added": 0, "changed": 0, "removed": len(plan.removed), "unchanged": plan.unchanged}
            counts["failed"] = 0
            if plan.removed or plan.refreshed:
                self.commit(removed=plan.removed, refreshed=plan.refreshed)
            for item in plan.to_embed:
                if progress is not None:
                    progress(item.relative, item.what)
                try:
                    embeds, spans = embed_video(pipeline, self.root / item.relative, segment, num_frames, timeout)
                except VideoDecodeError as error:
                    warnings.warn(f"{item.relative}: left out of the index: {error}", UserWarning, stacklevel=2)
                    counts["failed"] += 1
                    if item.what == "changed":
                        self.commit(removed=[item.relative])
                    continue
                self.commit([EmbeddedFile(item.relative, item.size, item.mtime_ns, item.sha256, embeds, spans)])
                counts[item.what] += 1
        return counts

    def ingest_parquet(self, paths: Iterable, wait: bool | float = True) -> dict:
        """Commit the rows of Parquet files written by the batch path (one row per vector: ``path``, ``start``,
        ``end``, ``embedding``, ``size``, ``mtime_ns``, ``sha256``, ``error``; schema metadata ``actionclip``), one
        transaction per Parquet file. Files with an ``error`` are left out with a warning.

        Raises:
            IndexMismatchError: a file made by another model or other preprocessing, or for another folder.

        Returns:
            counts ``{"added", "changed", "failed"}``.
        """
        import pyarrow.compute as compute
        import pyarrow.parquet as parquet

        counts = {"added": 0, "changed": 0, "failed": 0}
        with self.store.writing(wait):
            for path in paths:
                info = parquet_metadata(path)
                self.check_model(info["model"], f"the model of {str(path)!r}")
                self.check_preprocessing(info["preprocessing"], info["preprocessing_hash"], f"{str(path)!r} was made")
                if str(Path(info["root"]).resolve()) != self.meta["root"]:
                    raise IndexMismatchError(f"{str(path)!r} holds files of {info['root']!r}, not of the index's root")
                table = parquet.read_table(path)
                failed = table.filter(compute.invert(compute.is_null(table["error"])))
                for relative, error in sorted(set(zip(failed["path"].to_pylist(), failed["error"].to_pylist()))):
                    warnings.warn(f"{relative}: left out of the index: {error}", UserWarning, stacklevel=2)
                counts["failed"] += len(set(failed["path"].to_pylist()))
                table = table.filter(compute.is_null(table["error"]))
                files = self.files
                batch = []
                for relative, rows in _rows_by_path(table, self.meta["model"]["dim"]):
                    counts["added" if relative not in files else "changed"] += 1
                    batch.append(EmbeddedFile(relative, *rows))
                self.commit(batch)
        return counts

    # -- search ------------------------------------------------------------------------------------------------

    def search(
        self, queries, k: int = 10, exact: bool = False, nprobe: int | None = None, refine: int | None = None
    ) -> list[list[SearchHit]]:
        """The ``k`` rows most similar (cosine) to each query.

        Args:
            queries: float ``(D,)`` or ``(Q, D)`` (normalised here).
            k: hits per query (fewer when the index is smaller).
            exact: search every row exactly even where the index has a FAISS index.
            nprobe: FAISS lists visited (default: the index's `AnnSettings.nprobe`, 32).
            refine: ``k * refine`` FAISS candidates re-scored exactly (default: the index's, 200); fewer is faster
                and misses more (`benchmarks/README.md` has the trade at 10M rows).

        Returns:
            per query, hits best first (ties: by path, then start).
        """
        for name, value in (("k", k), ("nprobe", nprobe), ("refine", refine)):
            if (value is not None or name == "k") and (
                isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1
            ):
                raise VideoIndexError(f"{name} must be a positive integer, got {value!r}")
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None]
        dim = self.meta["model"]["dim"]
        if queries.ndim != 2 or queries.shape[1] != dim or not np.all(np.isfinite(queries)):
            raise VideoIndexError(f"queries must be finite vectors of size {dim}, got shape {queries.shape}")
        queries = unit_rows(queries)
        found = self.store.snapshot().search(queries, int(k), exact=exact, nprobe=nprobe, refine=refine)
        return [
            [SearchHit(str(self.root / hit.path), hit.start, hit.end, hit.score, hit.row) for hit in hits]
            for hits in found
        ]

    def search_text(self, text: str, pipeline, k: int = 10, template: str = "{}", **kwargs) -> list[SearchHit]:
        """Hits for a sentence (embedded by ``pipeline``'s text tower through ``template``, default as it is)."""
        self.check_compatible(pipeline)
        if not isinstance(text, str) or not text.strip():
            raise VideoIndexError(f"the text query must be a non-empty string, got {text!r}")
        labels, templater, _ = pipeline.prepare_labels([text], [template])
        query = pipeline.text_embeddings(labels, templater).float().mean(0).cpu().numpy()
        return self.search(query, k, **kwargs)[0]

    def search_video(self, video, pipeline, k: int = 10, **kwargs) -> list[SearchHit]:
        """Hits for an example video, embedded whole as the index embeds whole videos."""
        self.check_compatible(pipeline)
        embeds, _ = embed_video(pipeline, video, None, self.meta["preprocessing"]["num_frames"])
        return self.search(embeds[0], k, **kwargs)[0]


def parquet_metadata(path) -> dict:
    """The ``actionclip`` schema metadata of a Parquet file of embeddings (root, model, preprocessing, its hash)."""
    import pyarrow.parquet as parquet

    try:
        metadata = parquet.read_schema(path).metadata or {}
        info = json.loads(metadata[b"actionclip"])
        for key in ("root", "model", "preprocessing", "preprocessing_hash"):
            info[key]  # noqa: B018  (present)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise VideoIndexError(f"{str(path)!r} is not a Parquet file of actionclip embeddings ({error!r})") from None
    return info


def _rows_by_path(table, dim: int):
    """``(relative, (size, mtime_ns, sha256, embeddings (S, D), spans (S, 2)))`` per file of a table without errors."""
    if table.num_rows == 0:
        return
    embeddings = table["embedding"].combine_chunks()
    if embeddings.null_count or embeddings.type.list_size != dim:
        raise IndexMismatchError(f"embeddings of size {embeddings.type.list_size} (or missing), expected {dim}")
    vectors = embeddings.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    paths = np.asarray(table["path"].to_pylist(), dtype=object)
    spans = np.stack([table["start"].to_numpy(), table["end"].to_numpy()], axis=1).astype(np.float64)
    sizes, times, digests = (table[name].to_pylist() for name in ("size", "mtime_ns", "sha256"))
    order = np.lexsort((spans[:, 0], paths.astype(str)))
    firsts = [i for i, row in enumerate(order) if i == 0 or paths[row] != paths[order[i - 1]]]
    for first, last in zip(firsts, [*firsts[1:], len(order)]):
        rows = order[first:last]
        head = rows[0]
        yield paths[head], (sizes[head], times[head], digests[head], vectors[rows], spans[rows])


__all__ = [
    "EmbeddedFile",
    "FileToEmbed",
    "SearchHit",
    "UpdatePlan",
    "VideoIndex",
    "decode_tiles",
    "decoded_frames_reader",
    "embed_tiles",
    "embed_video",
    "file_sha256",
    "model_fingerprint",
    "opened_tiles",
    "parquet_metadata",
    "preprocessing_settings",
    "tile_grid",
]
