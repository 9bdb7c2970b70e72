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
and re-embedded when their content changed, files that disappeared are dropped. Rows are kept sorted by (path,
start), so an updated index equals one built afresh from the same folder.

Search is exact: cosine similarity against every vector in chunks (numpy, float32 arithmetic on a float32 copy of
the float16 vectors made once per loaded index), top-k by score, ties by row. With ``faiss`` installed
(``pip install actionclip[faiss]``) ``backend="faiss"`` (or ``"auto"``) uses an exact inner-product FAISS index for
the candidates and re-scores them the same way, so both give the same top-k. The score is the cosine on every
backbone family: a sigmoid family's (SigLIP's) pair probability, ``sigmoid(scale * cos + bias)``, increases with it,
so the ranking is the same, and a cosine does not depend on the scale and bias the model scores labels with.

The file is one ``.npz`` archive read with ``allow_pickle=False``, written to a temporary name and then renamed.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.video_files import find_video_files
from ..errors import IndexMismatchError, VideoDecodeError, VideoIndexError
from ..files import replaced_when_done
from .windows import FrameSource, WindowGrid, frames_at, make_window_grid, uses_cached_frames, window_embeddings

INDEX_FORMAT = 1
SEARCH_CHUNK_ROWS = 32768
"""Rows scored per matmul: bounds the temporary ``(queries, rows)`` score block."""

BACKENDS = ("auto", "numpy", "faiss")
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


def embed_video(pipeline, video, segment: float | None = None, num_frames: int | None = None, timeout: float = 30.0):
    """L2-normalised embeddings of a whole video or of its segments.

    Returns:
        float32 ``(S, D)`` embeddings and float64 ``(S, 2)`` start / end seconds.
    """
    num_frames = num_frames or pipeline.processor.num_frames or pipeline.model.config.num_frames
    source = FrameSource(video, None, timeout)
    try:
        grid = tile_grid(source.duration, source.num_frames, segment, num_frames)
        embeds, _ = window_embeddings(pipeline, source.read, grid, uses_cached_frames(pipeline.model.config))
    finally:
        source.close()
    embeds = torch.nn.functional.normalize(embeds.float(), dim=-1).cpu().numpy()
    spans = np.stack([grid.starts, np.minimum(grid.starts + grid.window, grid.duration)], axis=1)
    return embeds, spans


# ---------------------------------------------------------------------------------------------------------- index


class VideoIndex:
    """Embeddings of a folder's videos (or their segments), searchable by text or by example video.

    ```python
    >>> from transformers import pipeline
    >>> from actionclip.apps.search import VideoIndex
    >>> classifier = pipeline("zero-shot-video-classification", model="path/to/model")
    >>> index = VideoIndex.build("videos/", classifier, segment=4.0)  # or VideoIndex.load("videos.index")
    >>> index.save("videos.index")
    >>> index.search_text("someone juggling", classifier, k=5)
    [SearchHit(path='/.../videos/park.mp4', start=8.0, end=12.0, score=0.31, row=17), ...]
    ```

    Attributes:
        embeddings: float16 ``(M, D)`` L2-normalised vectors.
        paths: ``(M,)`` path of each row, relative to ``root``.
        spans: float64 ``(M, 2)`` start / end seconds of each row.
        files: relative path -> ``{"size", "mtime_ns", "sha256"}`` of every indexed file.
        meta: format, root, model (name, revision, fingerprint, dim), preprocessing settings and their hash.
    """

    def __init__(self, embeddings: np.ndarray, paths: Sequence[str], spans: np.ndarray, files: dict, meta: dict):
        self.embeddings = np.asarray(embeddings, dtype=np.float16)
        self.paths = list(paths)
        self.spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
        self.files = dict(files)
        self.meta = dict(meta)
        self._float32: np.ndarray | None = None
        self._faiss = None

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (
            f"VideoIndex({len(self.files)} files, {len(self)} vectors of {self.meta['model']['dim']}, "
            f"root={self.meta['root']!r}, segment={self.meta['preprocessing']['segment']})"
        )

    @property
    def root(self) -> Path:
        return Path(self.meta["root"])

    # -- building ----------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, root, pipeline, *, segment: float | None = None, num_frames: int | None = None) -> VideoIndex:
        """An empty index of the folder ``root`` for ``pipeline``'s model; ``segment`` seconds (``None``: whole
        videos)."""
        if segment is not None and not (isinstance(segment, (int, float)) and np.isfinite(segment) and segment > 0):
            raise VideoIndexError(f"segment must be a positive number of seconds or None, got {segment!r}")
        num_frames = num_frames or pipeline.processor.num_frames or pipeline.model.config.num_frames
        settings = preprocessing_settings(pipeline, None if segment is None else float(segment), num_frames)
        model = describe_model(pipeline)
        meta = {
            "format": INDEX_FORMAT,
            "root": str(Path(root).resolve()),
            "model": model,
            "preprocessing": settings,
            "preprocessing_hash": settings_hash(settings),
        }
        return cls(np.zeros((0, model["dim"]), np.float16), [], np.zeros((0, 2)), {}, meta)

    @classmethod
    def build(cls, root, pipeline, *, segment: float | None = None, num_frames: int | None = None, **kwargs):
        """:meth:`create` then :meth:`update`: every video under ``root``."""
        index = cls.create(root, pipeline, segment=segment, num_frames=num_frames)
        index.update(pipeline, **kwargs)
        return index

    def check_compatible(self, pipeline) -> None:
        """Raise `IndexMismatchError` unless ``pipeline``'s model and preprocessing made this index."""
        stored = self.meta["model"]
        model = describe_model(pipeline)
        if model["fingerprint"] != stored["fingerprint"] or model["dim"] != stored["dim"]:
            raise IndexMismatchError(
                f"the index was made by model {stored['name']!r} (weights {stored['fingerprint']}), not by "
                f"{model['name']!r} (weights {model['fingerprint']}): search it with that model, or build a new index"
            )
        settings = preprocessing_settings(
            pipeline, self.meta["preprocessing"]["segment"], self.meta["preprocessing"]["num_frames"]
        )
        if settings_hash(settings) != self.meta["preprocessing_hash"]:
            changed = sorted(
                key
                for key in set(settings["video_processor"]) | set(self.meta["preprocessing"]["video_processor"])
                if settings["video_processor"].get(key) != self.meta["preprocessing"]["video_processor"].get(key)
            )
            raise IndexMismatchError(
                f"the index was made with other preprocessing (differs in: {', '.join(changed) or 'settings'}): "
                "use the processor it was built with, or build a new index"
            )

    def update(self, pipeline, *, progress: Callable[[str, str], None] | None = None, timeout: float = 30.0) -> dict:
        """Bring the index up to date with its folder: embed new files, re-embed changed ones, drop removed ones.

        ``progress(relative_path, what)`` is called per file embedded. Files that fail to decode are left out
        with a warning (and tried again next time).

        Returns:
            counts ``{"added", "changed", "removed", "unchanged", "failed"}``.
        """
        self.check_compatible(pipeline)
        found = find_video_files(self.root)
        counts = dict.fromkeys(("added", "changed", "removed", "unchanged", "failed"), 0)
        keep = set()
        new_rows: list[tuple[str, np.ndarray, np.ndarray]] = []
        files = {}
        segment = self.meta["preprocessing"]["segment"]
        num_frames = self.meta["preprocessing"]["num_frames"]
        for relative in found:
            path = self.root / relative
            stat = path.stat()
            record = self.files.get(relative)
            if record is not None and record["size"] == stat.st_size and record["mtime_ns"] == stat.st_mtime_ns:
                keep.add(relative)
                files[relative] = record
                counts["unchanged"] += 1
                continue
            digest = file_sha256(path)
            if record is not None and record["sha256"] == digest:
                keep.add(relative)
                files[relative] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
                counts["unchanged"] += 1
                continue
            what = "added" if record is None else "changed"
            if progress is not None:
                progress(relative, what)
            try:
                embeds, spans = embed_video(pipeline, path, segment, num_frames, timeout)
            except VideoDecodeError as error:
                warnings.warn(f"{relative}: left out of the index: {error}", UserWarning, stacklevel=2)
                counts["failed"] += 1
                continue
            new_rows.append((relative, embeds, spans))
            files[relative] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
            counts[what] += 1
        counts["removed"] = len(set(self.files) - set(found))

        kept_rows = [row for row, path in enumerate(self.paths) if path in keep]
        paths = [self.paths[row] for row in kept_rows]
        embeddings = [self.embeddings[kept_rows]]
        spans = [self.spans[kept_rows]]
        for relative, embeds, file_spans in new_rows:
            paths += [relative] * len(embeds)
            embeddings.append(embeds.astype(np.float16))
            spans.append(file_spans)
        embeddings, spans = np.concatenate(embeddings), np.concatenate(spans)
        order = sorted(range(len(paths)), key=lambda row: (paths[row], spans[row, 0]))
        self.paths = [paths[row] for row in order]
        self.embeddings = embeddings[order]
        self.spans = spans[order]
        self.files = files
        self._float32 = self._faiss = None
        return counts

    # -- storage -----------------------------------------------------------------------------------------------

    def save(self, path) -> None:
        """Write the index to ``path`` (one ``.npz`` file; written under a temporary name, then renamed)."""
        with replaced_when_done(path) as temporary, open(temporary, "wb") as handle:
            np.savez(
                handle,
                embeddings=self.embeddings,
                paths=np.array(self.paths, dtype=str) if self.paths else np.zeros(0, dtype="<U1"),
                spans=self.spans,
                files=np.array(json.dumps(self.files, sort_keys=True)),
                meta=np.array(json.dumps(self.meta, sort_keys=True)),
            )

    @classmethod
    def load(cls, path) -> VideoIndex:
        """Read an index written by :meth:`save`.

        Raises:
            VideoIndexError: missing, not an index, or of an unknown format.
        """
        path = Path(path)
        if not path.is_file():
            raise VideoIndexError(f"index {str(path)!r}: no such file")
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {name: archive[name] for name in ("embeddings", "paths", "spans", "files", "meta")}
            meta = json.loads(str(arrays["meta"]))
            files = json.loads(str(arrays["files"]))
        except (OSError, ValueError, KeyError) as error:
            raise VideoIndexError(f"index {str(path)!r} is not an actionclip video index ({error})") from None
        if not isinstance(meta, dict) or meta.get("format") != INDEX_FORMAT:
            raise VideoIndexError(f"index {str(path)!r} has format {meta.get('format')!r}, expected {INDEX_FORMAT}")
        return cls(arrays["embeddings"], [str(p) for p in arrays["paths"]], arrays["spans"], files, meta)

    # -- search ------------------------------------------------------------------------------------------------

    def _vectors(self) -> np.ndarray:
        if self._float32 is None:
            self._float32 = self.embeddings.astype(np.float32)
        return self._float32

    def search(self, queries, k: int = 10, backend: str = "numpy") -> list[list[SearchHit]]:
        """The ``k`` rows most similar (cosine) to each query.

        Args:
            queries: float ``(D,)`` or ``(Q, D)`` (normalised here).
            k: hits per query (fewer when the index is smaller).
            backend: ``"numpy"`` (exact, chunked), ``"faiss"`` (exact FAISS inner product; needs faiss-cpu) or
                ``"auto"`` (FAISS when installed).

        Returns:
            per query, hits best first (ties: lower row first).
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise VideoIndexError(f"k must be a positive integer, got {k!r}")
        if backend not in BACKENDS:
            raise VideoIndexError(f"backend must be one of {BACKENDS}, got {backend!r}")
        queries = np.asarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None]
        dim = self.meta["model"]["dim"]
        if queries.ndim != 2 or queries.shape[1] != dim or not np.all(np.isfinite(queries)):
            raise VideoIndexError(f"queries must be finite vectors of size {dim}, got shape {queries.shape}")
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        if len(self) == 0:
            return [[] for _ in queries]
        k = min(int(k), len(self))
        if backend == "auto":
            backend = "faiss" if faiss_available() else "numpy"
        rows = self._faiss_candidates(queries, k) if backend == "faiss" else top_k_rows(self._vectors(), queries, k)
        vectors = self._vectors()
        results = []
        for query, candidates in zip(queries, rows):
            scores = vectors[candidates] @ query  # the same arithmetic for both backends' candidates
            order = np.lexsort((candidates, -scores))[:k]
            results.append(
                [
                    SearchHit(
                        path=str(self.root / self.paths[candidates[i]]),
                        start=float(self.spans[candidates[i], 0]),
                        end=float(self.spans[candidates[i], 1]),
                        score=float(scores[i]),
                        row=int(candidates[i]),
                    )
                    for i in order
                ]
            )
        return results

    def _faiss_candidates(self, queries: np.ndarray, k: int) -> np.ndarray:
        try:
            import faiss
        except ImportError:
            raise VideoIndexError("backend 'faiss' needs faiss-cpu: pip install 'actionclip[faiss]'") from None
        if self._faiss is None:
            self._faiss = faiss.IndexFlatIP(self.embeddings.shape[1])
            self._faiss.add(self._vectors())
        # A few extra candidates so that rows tied with the k-th are all re-scored.
        _, rows = self._faiss.search(np.ascontiguousarray(queries), min(k + 8, len(self)))
        return rows

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


def top_k_rows(vectors: np.ndarray, queries: np.ndarray, k: int, chunk_rows: int = SEARCH_CHUNK_ROWS) -> np.ndarray:
    """Exact top-``k`` rows of ``vectors @ queries.T`` per query, by chunks (unordered within the k): ``(Q, k)``."""
    best_rows = np.zeros((len(queries), 0), dtype=np.int64)
    best_scores = np.zeros((len(queries), 0), dtype=np.float32)
    for start in range(0, len(vectors), chunk_rows):
        scores = queries @ vectors[start : start + chunk_rows].T  # (Q, chunk)
        take = min(k, scores.shape[1])
        part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        best_rows = np.concatenate([best_rows, part + start], axis=1)
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, part, axis=1)], axis=1)
        if best_rows.shape[1] > k:
            keep = np.argpartition(-best_scores, k - 1, axis=1)[:, :k]
            best_rows = np.take_along_axis(best_rows, keep, axis=1)
            best_scores = np.take_along_axis(best_scores, keep, axis=1)
    return best_rows


def faiss_available() -> bool:
    """Whether ``faiss`` imports (``backend="auto"`` uses it then)."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


__all__ = [
    "BACKENDS",
    "SearchHit",
    "VideoIndex",
    "embed_video",
    "faiss_available",
    "file_sha256",
    "model_fingerprint",
    "preprocessing_settings",
    "tile_grid",
    "top_k_rows",
]
