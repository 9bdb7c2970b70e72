"""A folder of immutable segments of vectors, committed by renaming a manifest; exact search or FAISS IVF-PQ.

Layout of a store folder::

    manifest.json                      what is live: segments, their deletion bitmaps, the ANN file, settings, meta
    lock                               writers hold an exclusive ``flock`` on it (and write their pid in it)
    seg-000003.vectors.npy             float16 (n, D) L2-normalised rows, memory-mapped by readers
    seg-000003.path_ids.npy            int32 (n,): row -> the segment's path table
    seg-000003.spans.npy               float64 (n, 2): start / end seconds of each row
    seg-000003.json                    {"paths": [...], "files": {path: {"size", "mtime_ns", "sha256"}}}
    seg-000003.del-000009.npy          bool (n,): the segment's deleted rows (a new file per change)
    ann-000011.faiss                   IVF-PQ over the rows of the segments it names ("sealed" rows)

Every file but the manifest is written once under a new name and never changed; a commit writes the new files and
then renames a new manifest over the old one, so a reader that takes one manifest sees one consistent snapshot.
Files no longer named are removed after the commit; a reader that finds one gone re-reads the manifest and retries,
so a search during a write sees the old or the new rows, never an error. Each file's rows live in one segment: a
commit that replaces a file deletes its old rows (a new bitmap) and writes its new ones (a new segment), so a write
costs what changed. Small unsealed segments are merged when there are more than `MAX_TAIL_SEGMENTS`.

Search is exact (numpy, float32 matmul by chunks) below `AnnSettings.min_rows` live rows; above, the sealed rows go
through FAISS (``nprobe`` lists, ``k * refine`` candidates, deleted rows excluded by an ID selector) and the unsealed
tail is searched exactly. Every candidate is then re-scored the same way from its float16 vector (float64 products,
one summation order per row) and ordered by (-score, path, start): the order does not depend on where a row is
stored, so a store built by appends and deletes answers as one built afresh from the same rows.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import math
import mmap
import os
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import IndexLockedError, VideoIndexError
from ..files import replaced_when_done

STORE_FORMAT = 2
MANIFEST = "manifest.json"
LOCK_FILE = "lock"
SEARCH_CHUNK_ROWS = 32768
"""Rows scored per matmul in exact search: bounds the temporary ``(queries, rows)`` block."""
MAX_TAIL_SEGMENTS = 8
"""Unsealed segments kept before the smallest are merged (each commit writes one)."""
SEGMENT_ROWS = 1 << 19
"""Most rows of a segment written by a merge (bounds a merge's memory: rows x D float16, twice)."""
RETRAIN_GROWTH = 4
"""The FAISS index is trained again once the live rows are this many times those it was trained for."""
FAISS_SCORING_ROWS = 256
"""Candidates from which their float32 scores are computed by FAISS (numpy below)."""
TIE_MARGIN = 1e-5
"""Candidates within this of the k-th float32 score are kept, so that rows tied with it are all re-scored."""
_OWN_FILE = re.compile(r"^(seg-\d+\..+|ann-\d+\.faiss|\..+\.partial)$")


@dataclass(frozen=True)
class AnnSettings:
    """When and how the store uses FAISS; kept in the manifest, so every reader searches the same way.

    Attributes:
        min_rows: live rows from which an IVF-PQ index is built (exact search below).
        nlist: inverted lists (None: a power of two near ``2 * sqrt(rows)``, at most 4096).
        pq_m: PQ sub-quantizers of 4 bits scanned with SIMD ("fast scan"; None: ``D / 4``, rounded to a divisor):
            ``D / 8`` bytes a row, as 8-bit codes of half as many sub-quantizers, ranked several times faster.
        nprobe: lists visited per query.
        refine: ``k * refine`` candidates re-scored exactly.
        train_rows: rows sampled (evenly) for training.
        tail_rows: unsealed live rows searched exactly before they are added to the FAISS index.
        max_deleted: fraction of deleted sealed rows that triggers a rebuild.
    """

    min_rows: int = 100_000
    nlist: int | None = None
    pq_m: int | None = None
    nprobe: int = 32
    refine: int = 200
    train_rows: int = 200_000
    tail_rows: int = 20_000
    max_deleted: float = 0.2


@dataclass(frozen=True)
class FileRows:
    """One file's rows for a commit: ``vectors`` float ``(S, D)`` (normalised here, stored float16) and ``spans``
    float64 ``(S, 2)``; both ``None`` keeps the file's stored rows under a new ``record``."""

    path: str
    record: dict
    vectors: np.ndarray | None = None
    spans: np.ndarray | None = None


@dataclass(frozen=True)
class Hit:
    """A row found: its file ``path`` (as stored), ``start`` / ``end`` seconds, cosine ``score``, snapshot ``row``."""

    path: str
    start: float
    end: float
    score: float
    row: int


# ---------------------------------------------------------------------------------------------------------- reading


class Segment:
    """One immutable segment, memory-mapped, with the deletion bitmap a manifest gives it."""

    def __init__(self, folder: Path, name: str, deleted: str | None):
        self.name, self.deleted_file = name, deleted
        self._file, self._map, self._offset, self.vectors = _map_rows(folder / f"{name}.vectors.npy")
        self.path_ids = np.load(folder / f"{name}.path_ids.npy", mmap_mode="r")
        self.spans = np.load(folder / f"{name}.spans.npy", mmap_mode="r")
        table = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        self.paths: list[str] = table["paths"]
        self.path_index = {path: number for number, path in enumerate(self.paths)}
        self.records: dict = table["files"]
        self.live = None if deleted is None else ~np.load(folder / deleted)
        self.rows = len(self.vectors)
        self.live_rows = self.rows if self.live is None else int(self.live.sum())
        self._float32: np.ndarray | None = None

    def live_paths(self) -> list[str]:
        if self.live is None:
            return list(self.records)
        return [self.paths[number] for number in np.unique(np.asarray(self.path_ids)[self.live])]

    def rows_of(self, paths: Iterable[str]) -> np.ndarray:
        """Boolean ``(n,)``: the live rows of ``paths``."""
        numbers = [self.path_index[path] for path in paths if path in self.path_index]
        if not numbers:
            return np.zeros(self.rows, bool)
        mask = np.isin(np.asarray(self.path_ids), numbers)
        return mask if self.live is None else mask & self.live

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """float16 ``(len(rows), D)``: the vectors of ``rows``, read with ``pread`` (not through the map: a page
        fault costs more than the call, and maps the row's neighbours too)."""
        width = self.vectors.shape[1] * 2
        offset, descriptor, pread = self._offset, self._file.fileno(), os.pread
        data = b"".join([pread(descriptor, width, offset + row * width) for row in np.asarray(rows).tolist()])
        return np.frombuffer(data, np.float16).reshape(len(rows), -1)

    def release(self) -> None:
        """Unmap the pages read through the map so far (they stay in the page cache): a page fault maps its
        neighbours too (fault-around), and without this the process's RSS would grow towards the files' size."""
        if _DONTNEED is not None:
            self._map.madvise(_DONTNEED)

    def float32_rows(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """A float32 copy of rows ``[start, stop)``, read through the map, whose pages are released after."""
        block = np.asarray(self.vectors[start:stop], dtype=np.float32)
        self.release()
        return block

    def float32(self) -> np.ndarray:
        """The float32 copy exact search uses (made once per segment object)."""
        if self._float32 is None:
            self._float32 = self.float32_rows()
        return self._float32


def _map_rows(path: Path) -> tuple[io.BufferedReader, mmap.mmap, int, np.ndarray]:
    """A segment's ``.npy`` file open, its memory map, where its rows start, and the float16 ``(n, D)`` array of
    them over the map."""
    file = open(path, "rb")  # noqa: SIM115  (open as long as the segment)
    with contextlib.ExitStack() as on_error:
        on_error.callback(file.close)
        version = np.lib.format.read_magic(file)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(file)
        if len(shape) != 2 or fortran_order or dtype != np.float16:
            raise VideoIndexError(f"{path}: expected float16 rows (n, D), found {dtype} {shape}")
        offset = file.tell()
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        if len(mapping) < offset + 2 * shape[0] * shape[1]:
            raise VideoIndexError(f"{path}: shorter than its {shape[0]} x {shape[1]} float16 rows (truncated)")
        on_error.pop_all()
    rows = np.frombuffer(mapping, np.float16, count=shape[0] * shape[1], offset=offset).reshape(shape)
    return file, mapping, offset, rows


_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


class Snapshot:
    """The rows named by one manifest: what a search sees, whatever is committed meanwhile."""

    def __init__(self, folder: Path, manifest: dict, previous: Snapshot | None = None):
        self.folder, self.manifest = folder, manifest
        self.dim: int = manifest["dim"]
        self.settings = AnnSettings(**manifest["ann_settings"])
        reuse = {} if previous is None else {(s.name, s.deleted_file): s for s in previous.segments}
        self.segments = [
            reuse.get((entry["name"], entry["deleted"])) or Segment(folder, entry["name"], entry["deleted"])
            for entry in manifest["segments"]
        ]
        self.offsets = np.cumsum([0] + [segment.rows for segment in self.segments])
        self.live_rows = sum(segment.live_rows for segment in self.segments)
        ann = manifest.get("ann")
        self.ann = self.ann_covered = None
        if ann is not None:
            reused = previous is not None and previous.manifest.get("ann") == ann and previous.ann is not None
            self.ann = previous.ann if reused else _read_faiss(folder / ann["file"])
            position = {segment.name: number for number, segment in enumerate(self.segments)}
            self.ann_covered = [position[name] for name in ann["segments"]]
            for number in self.ann_covered:
                self.segments[number]._float32 = None  # sealed rows are searched through FAISS now
            self.ann_offsets = np.cumsum([0] + [self.segments[i].rows for i in self.ann_covered])
            lives = [self.segments[i].live for i in self.ann_covered]
            self._ann_bits = None
            if any(live is not None for live in lives):
                live = np.concatenate([np.ones(self.segments[i].rows, bool) if x is None else x
                                       for i, x in zip(self.ann_covered, lives)])  # fmt: skip
                self._ann_bits = np.packbits(live, bitorder="little")
        self._files: dict | None = None

    def __len__(self) -> int:
        return self.live_rows

    @property
    def files(self) -> dict:
        """Relative path -> ``{"size", "mtime_ns", "sha256"}`` of every file with live rows."""
        if self._files is None:
            self._files = {}
            for segment in self.segments:
                for path in segment.live_paths():
                    self._files[path] = segment.records[path]
        return self._files

    def rows(self) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Every live row ordered by (path, start): paths, float64 ``(M, 2)`` spans, float16 ``(M, D)`` vectors
        (a full read: for inspection and small stores)."""
        paths, spans, vectors = [], [], []
        for segment in self.segments:
            keep = slice(None) if segment.live is None else segment.live
            ids = np.asarray(segment.path_ids)[keep]
            paths += [segment.paths[number] for number in ids]
            spans.append(np.asarray(segment.spans)[keep])
            vectors.append(np.asarray(segment.vectors)[keep])
        spans = np.concatenate(spans) if spans else np.zeros((0, 2))
        vectors = np.concatenate(vectors) if vectors else np.zeros((0, self.dim), np.float16)
        order = sorted(range(len(paths)), key=lambda row: (paths[row], spans[row, 0]))
        return [paths[row] for row in order], spans[order], vectors[order]

    def file_rows(self, path: str) -> tuple[np.ndarray, np.ndarray]:
        """The stored float16 vectors and spans of one file."""
        for segment in self.segments:
            mask = segment.rows_of([path])
            if mask.any():
                return np.asarray(segment.vectors)[mask], np.asarray(segment.spans)[mask]
        raise VideoIndexError(f"index {str(self.folder)!r} holds no rows of {path!r}")

    # -- search ------------------------------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, exact: bool = False, nprobe: int | None = None, refine: int | None = None
    ) -> list[list[Hit]]:
        """The ``k`` live rows most similar to each normalised float32 query of ``(Q, D)``, best first; ``nprobe``
        and ``refine`` override the store's settings for this search."""
        if self.live_rows == 0:
            return [[] for _ in queries]
        k = min(k, self.live_rows)
        use_ann = self.ann is not None and not exact
        covered = set(self.ann_covered) if use_ann else set()
        exact_segments = [number for number in range(len(self.segments)) if number not in covered]
        candidates = self._exact_candidates(queries, k, exact_segments, cache=not exact)
        if use_ann:
            found = self._ann_candidates(queries, k, nprobe or self.settings.nprobe, refine or self.settings.refine)
            for query_number, rows in enumerate(found):
                candidates[query_number] = np.union1d(candidates[query_number], rows)
        return [self._ranked(query, rows, k) for query, rows in zip(queries, candidates)]

    def _exact_candidates(self, queries, k, segment_numbers, cache) -> list[np.ndarray]:
        best_rows = [np.zeros(0, np.int64) for _ in queries]
        best_scores = [np.zeros(0, np.float32) for _ in queries]
        for number in segment_numbers:
            segment = self.segments[number]
            if segment.live_rows == 0:
                continue
            for start in range(0, segment.rows, SEARCH_CHUNK_ROWS):
                stop = min(start + SEARCH_CHUNK_ROWS, segment.rows)
                block = segment.float32()[start:stop] if cache else segment.float32_rows(start, stop)
                scores = queries @ block.T  # (Q, rows)
                if segment.live is not None:
                    scores[:, ~segment.live[start:stop]] = -np.inf
                rows = self.offsets[number] + np.arange(start, stop)
                for q in range(len(queries)):
                    keep = _near_top(scores[q], k)
                    merged_scores = np.concatenate([best_scores[q], scores[q][keep]])
                    merged_rows = np.concatenate([best_rows[q], rows[keep]])
                    keep = _near_top(merged_scores, k)
                    best_scores[q], best_rows[q] = merged_scores[keep], merged_rows[keep]
        return best_rows

    def _ann_candidates(self, queries, k, nprobe, refine) -> list[np.ndarray]:
        import faiss

        covered_live = sum(self.segments[i].live_rows for i in self.ann_covered)
        wanted = min(k * refine, covered_live)
        if wanted == 0:
            return [np.zeros(0, np.int64) for _ in queries]
        params = faiss.SearchParametersIVF()
        params.nprobe = nprobe
        if self._ann_bits is not None:
            selector = faiss.IDSelectorBitmap(int(self.ann_offsets[-1]), faiss.swig_ptr(self._ann_bits))
            params.sel = selector
        _, ids = self.ann.search(np.ascontiguousarray(queries, dtype=np.float32), wanted, params=params)
        result = []
        for row_ids in ids:
            row_ids = row_ids[row_ids >= 0]
            ordinal = np.searchsorted(self.ann_offsets, row_ids, side="right") - 1
            segment_numbers = np.asarray(self.ann_covered)[ordinal]
            result.append(self.offsets[segment_numbers] + row_ids - self.ann_offsets[ordinal])
        return result

    def _ranked(self, query: np.ndarray, rows: np.ndarray, k: int) -> list[Hit]:
        rows = np.sort(rows)
        vectors = np.empty((len(rows), self.dim), np.float16)
        for segment, local, where in self._by_segment(rows):
            vectors[where] = segment.read_rows(local)
        # The candidates near the k-th float32 score (ties kept, as in exact search) are scored again exactly.
        keep = _near_top(_float32_scores(vectors, query), k)
        rows, vectors = rows[keep], vectors[keep]
        paths, spans = [], np.empty((len(rows), 2))
        for segment, local, where in self._by_segment(rows):
            spans[where] = segment.spans[local]
            paths += [segment.paths[path_id] for path_id in segment.path_ids[local]]
        # float16 x float32 products are exact in float64, and each row is summed in one order wherever it lives.
        scores = np.sum(vectors.astype(np.float64) * query.astype(np.float64), axis=1)
        by_path = np.unique(paths, return_inverse=True)[1] if paths else np.zeros(0, int)
        order = np.lexsort((spans[:, 0], by_path, -scores))[:k]
        return [Hit(paths[i], float(spans[i, 0]), float(spans[i, 1]), float(scores[i]), int(rows[i])) for i in order]

    def _by_segment(self, rows: np.ndarray) -> Iterator[tuple[Segment, np.ndarray, slice]]:
        """For sorted snapshot ``rows``: each segment holding some, its local row numbers, and where they are."""
        numbers = np.searchsorted(self.offsets, rows, side="right") - 1
        edges = [0, *(np.flatnonzero(np.diff(numbers)) + 1).tolist(), len(rows)]
        for start, stop in zip(edges[:-1], edges[1:]):
            if start < stop:
                number = int(numbers[start])
                yield self.segments[number], rows[start:stop] - self.offsets[number], slice(start, stop)


def _float32_scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """float32 products of float16 ``(n, D)`` rows with a query: numpy for a few rows; for many, FAISS's fp16 scalar
    quantizer over the rows as they are stored (its SIMD conversion is several times faster than numpy's)."""
    query = np.ascontiguousarray(query, np.float32)
    if len(vectors) < FAISS_SCORING_ROWS:
        return vectors.astype(np.float32) @ query
    import faiss

    scorer = faiss.IndexScalarQuantizer(vectors.shape[1], faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    faiss.copy_array_to_vector(np.ascontiguousarray(vectors).view(np.uint8).ravel(), scorer.codes)
    scorer.ntotal = len(vectors)
    found, order = scorer.search(query[None], len(vectors))
    scores = np.empty(len(vectors), np.float32)
    scores[order[0]] = found[0]
    return scores


def _near_top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the finite scores within `TIE_MARGIN` of the k-th best (all finite ones when there are <= k)."""
    finite = np.isfinite(scores)
    if finite.sum() <= k:
        return np.flatnonzero(finite)
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    return np.flatnonzero(scores >= kth - TIE_MARGIN)


# ---------------------------------------------------------------------------------------------------------- store


class VectorStore:
    """A store folder: snapshots for readers, locked commits for writers.

    ```python
    >>> store = VectorStore.create("videos.index", dim=512, meta={"model": ...})
    >>> store.commit([FileRows("a.mp4", {"size": 1, "mtime_ns": 2, "sha256": "..."}, vectors, spans)])
    >>> store.snapshot().search(queries, k=10)
    ```
    """

    def __init__(self, folder, manifest: dict):
        self.folder = Path(folder)
        self.dim: int = manifest["dim"]
        self.meta: dict = manifest["meta"]
        self.settings = AnnSettings(**manifest["ann_settings"])
        self._snapshot: Snapshot | None = None
        self._snapshot_key = None
        self._lock_fd: int | None = None

    def __repr__(self) -> str:
        return f"VectorStore({str(self.folder)!r}, dim={self.dim})"

    @classmethod
    def create(cls, folder, dim: int, meta: dict, settings: AnnSettings | None = None) -> VectorStore:
        """A new, empty store in ``folder`` (missing or empty); ``meta`` is kept as given (JSON)."""
        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise VideoIndexError(f"index {str(folder)!r} already exists: open it, or choose a new name")
        folder.mkdir(parents=True, exist_ok=True)
        manifest = {
            "format": STORE_FORMAT,
            "dim": int(dim),
            "meta": meta,
            "ann_settings": asdict(settings or AnnSettings()),
            "next_id": 1,
            "segments": [],
            "ann": None,
        }
        _write_manifest(folder, manifest)
        return cls(folder, manifest)

    @classmethod
    def open(cls, folder) -> VectorStore:
        """Open an existing store (`VideoIndexError` when ``folder`` is not one)."""
        return cls(folder, read_manifest(folder))

    # -- reading -----------------------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The latest committed rows (cached while the manifest is unchanged)."""
        for _ in range(100):
            try:
                key = _manifest_key(self.folder)
                if self._snapshot is not None and key == self._snapshot_key:
                    return self._snapshot
                snapshot = Snapshot(self.folder, read_manifest(self.folder), self._snapshot)
            except FileNotFoundError:  # a commit removed what that manifest named: take the new one
                continue
            self._snapshot, self._snapshot_key = snapshot, key
            return snapshot
        raise VideoIndexError(f"index {str(self.folder)!r} changed under every read: too many commits at once")

    # -- writing -----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self, wait: bool | float = False) -> Iterator[None]:
        """Hold the store's write lock (re-entrant in this object). ``wait``: False raises `IndexLockedError`
        when another process holds it, True waits for it, a number waits that many seconds at most."""
        if self._lock_fd is not None:
            yield
            return
        descriptor = os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = None if wait is True else time.monotonic() + (0 if wait is False else float(wait))
            while True:
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() >= deadline:
                        holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
                        raise IndexLockedError(self.folder, int(holder) if holder.isdigit() else None) from None
                    time.sleep(0.05)
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
            self._lock_fd = descriptor
            self._remove_unnamed(read_manifest(self.folder))  # what an interrupted writer left
            yield
        finally:
            self._lock_fd = None
            os.close(descriptor)  # releases the flock

    def commit(
        self, files: Iterable[FileRows] = (), removed: Iterable[str] = (), wait: bool | float = True,
        maintain: bool = True,
    ) -> None:  # fmt: skip
        """One transaction: each file's old rows replaced by its new ones, ``removed`` files' rows deleted; then
        (``maintain``) the small unsealed segments merged and the FAISS index built, extended or rebuilt as
        `AnnSettings` says (a bulk load passes False and calls :meth:`optimize` once at the end)."""
        files = list(files)
        for entry in files:
            self._check_rows(entry)
        with self.writing(wait):
            snapshot = self.snapshot()
            manifest = json.loads(json.dumps(snapshot.manifest))
            changed = {entry.path for entry in files} | set(removed)
            new_files = []
            for entry in files:
                if entry.vectors is None:
                    vectors, spans = snapshot.file_rows(entry.path)
                    entry = FileRows(entry.path, entry.record, vectors, spans)
                new_files.append(entry)
            sealed = set(snapshot.manifest["ann"]["segments"]) if snapshot.manifest["ann"] else set()
            emptied = set()
            for entry, segment in zip(manifest["segments"], snapshot.segments):
                doomed = segment.rows_of(changed)
                if doomed.any():
                    live = np.ones(segment.rows, bool) if segment.live is None else segment.live.copy()
                    live[doomed] = False
                    if not live.any() and segment.name not in sealed:
                        emptied.add(segment.name)
                    else:
                        entry["deleted"] = self._write_bitmap(manifest, segment.name, ~live)
            manifest["segments"] = [entry for entry in manifest["segments"] if entry["name"] not in emptied]
            if new_files:
                manifest["segments"] += self._write_segments(manifest, new_files, normalise=True)
            self._publish(manifest)
            if maintain:
                self.optimize()

    def optimize(self, rebuild: bool = False) -> None:
        """Merge small unsealed segments; build the FAISS index once there are ``min_rows`` live rows, add the
        unsealed tail to it past ``tail_rows``, rebuild it past ``max_deleted`` (or when ``rebuild``)."""
        with self.writing(True):
            snapshot = self.snapshot()
            settings = self.settings
            covered = set(snapshot.ann_covered or ())
            tail = [n for n, s in enumerate(snapshot.segments) if n not in covered]
            if snapshot.live_rows >= settings.min_rows:
                if snapshot.ann is None or rebuild:
                    return self._rebuild_ann(snapshot)  # seals every segment: nothing to merge first
                sealed = [snapshot.segments[n] for n in snapshot.ann_covered]
                deleted = sum(s.rows - s.live_rows for s in sealed) / max(1, sum(s.rows for s in sealed))
                if (
                    deleted > settings.max_deleted
                    or snapshot.live_rows > RETRAIN_GROWTH * snapshot.manifest["ann"]["trained_for"]
                ):
                    return self._rebuild_ann(snapshot)
                if sum(snapshot.segments[n].live_rows for n in tail) > settings.tail_rows:
                    return self._extend_ann(snapshot)
            elif snapshot.ann is not None:  # too few rows left for FAISS: exact search again
                manifest = json.loads(json.dumps(snapshot.manifest))
                manifest["ann"] = None
                self._publish(manifest)
                snapshot, tail = self.snapshot(), list(range(len(snapshot.segments)))
            if len(tail) > MAX_TAIL_SEGMENTS:
                self._merge(snapshot, sorted(tail, key=lambda n: snapshot.segments[n].live_rows)[: len(tail) // 2 + 1])

    # -- the writer's steps ------------------------------------------------------------------------------------

    def _check_rows(self, entry: FileRows) -> None:
        if entry.vectors is None:
            return
        vectors, spans = np.asarray(entry.vectors), np.asarray(entry.spans)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) == 0:
            raise VideoIndexError(f"{entry.path}: expected vectors of shape (S >= 1, {self.dim}), got {vectors.shape}")
        if spans.shape != (len(vectors), 2) or not (np.isfinite(vectors).all() and np.isfinite(spans).all()):
            raise VideoIndexError(f"{entry.path}: expected finite vectors and spans of shape ({len(vectors)}, 2)")

    def _new_name(self, manifest: dict, pattern: str) -> str:
        number = manifest["next_id"]
        manifest["next_id"] = number + 1
        return pattern.format(number)

    def _write_bitmap(self, manifest: dict, segment: str, deleted: np.ndarray) -> str:
        name = self._new_name(manifest, segment + ".del-{:06d}.npy")
        np.save(self.folder / name, deleted)
        return name

    def _write_segments(self, manifest: dict, files: list[FileRows], normalise: bool) -> list[dict]:
        """New segments of ``files``' rows, ordered by (path, start), of `SEGMENT_ROWS` at most (a file's rows are
        never split)."""
        entries, batch, rows = [], [], 0
        for entry in sorted(files, key=lambda entry: entry.path):
            if batch and rows + len(entry.vectors) > SEGMENT_ROWS:
                entries.append(self._write_segment(manifest, batch, normalise))
                batch, rows = [], 0
            batch.append(entry)
            rows += len(entry.vectors)
        if batch:
            entries.append(self._write_segment(manifest, batch, normalise))
        return entries

    def _write_segment(self, manifest: dict, files: list[FileRows], normalise: bool) -> dict:
        name = self._new_name(manifest, "seg-{:06d}")
        paths = [entry.path for entry in files]
        vectors = np.concatenate([unit_rows(entry.vectors) if normalise else entry.vectors for entry in files])
        spans = np.concatenate([np.asarray(entry.spans, np.float64).reshape(-1, 2) for entry in files])
        path_ids = np.concatenate([np.full(len(entry.vectors), n, np.int32) for n, entry in enumerate(files)])
        order = np.lexsort((spans[:, 0], path_ids))
        self._save_segment(name, vectors[order], path_ids[order], spans[order], paths,
                           {entry.path: entry.record for entry in files})  # fmt: skip
        return {"name": name, "rows": len(vectors), "deleted": None}

    def _save_segment(self, name, vectors, path_ids, spans, paths, records) -> None:
        np.save(self.folder / f"{name}.vectors.npy", np.asarray(vectors, np.float16))
        np.save(self.folder / f"{name}.path_ids.npy", np.asarray(path_ids, np.int32))
        np.save(self.folder / f"{name}.spans.npy", np.asarray(spans, np.float64))
        table = json.dumps({"paths": paths, "files": records}, sort_keys=True)
        (self.folder / f"{name}.json").write_text(table, encoding="utf-8")

    def _merge(self, snapshot: Snapshot, numbers: list[int], manifest: dict | None = None) -> None:
        """Rewrite the live rows of segments ``numbers`` as new segments (deleted rows dropped), a batch of
        `SEGMENT_ROWS` at a time, and commit that; or, given the ``manifest`` of a larger commit, only change it."""
        publish = manifest is None
        manifest = json.loads(json.dumps(snapshot.manifest)) if publish else manifest
        gone = {snapshot.segments[number].name for number in numbers}
        manifest["segments"] = [entry for entry in manifest["segments"] if entry["name"] not in gone]
        batch, rows = [], 0
        for number in numbers:
            segment = snapshot.segments[number]
            live = np.arange(segment.rows) if segment.live is None else np.flatnonzero(segment.live)
            live = live[np.argsort(np.asarray(segment.path_ids)[live], kind="stable")]
            ids, firsts = np.unique(np.asarray(segment.path_ids)[live], return_index=True)
            vectors, spans = np.asarray(segment.vectors[live]), np.asarray(segment.spans[live])
            for path_id, first, last in zip(ids, firsts, [*firsts[1:], len(live)]):
                path = segment.paths[path_id]
                batch.append(FileRows(path, segment.records[path], vectors[first:last], spans[first:last]))
                rows += last - first
            if rows >= SEGMENT_ROWS:
                manifest["segments"] += self._write_segments(manifest, batch, normalise=False)
                batch, rows = [], 0
        if batch:
            manifest["segments"] += self._write_segments(manifest, batch, normalise=False)
        if publish:
            self._publish(manifest)

    def _rebuild_ann(self, snapshot: Snapshot) -> None:
        """Train a new IVF-PQ on an even sample of the live rows and add every row; segments with deletions are
        first rewritten without them, so the new index covers no deleted row."""
        import faiss

        manifest = json.loads(json.dumps(snapshot.manifest))
        with_deletions = [n for n, s in enumerate(snapshot.segments) if s.live is not None]
        if with_deletions:  # one commit with the index: a manifest never names an index over segments it lacks
            self._merge(snapshot, with_deletions, manifest)
        known = {segment.name: segment for segment in snapshot.segments if segment.live is None}
        segments = [
            known.get(entry["name"]) or Segment(self.folder, entry["name"], None) for entry in manifest["segments"]
        ]
        settings, live_rows = self.settings, snapshot.live_rows
        sample = _even_sample(segments, min(settings.train_rows, live_rows))
        nlist = settings.nlist or int(min(4096, 2 ** round(math.log2(max(1.0, 2 * math.sqrt(live_rows))))))
        nlist = max(1, min(nlist, len(sample) // 39 or 1))
        pq_m = settings.pq_m or max(m for m in range(1, self.dim + 1) if self.dim % m == 0 and m <= self.dim // 4)
        index = faiss.index_factory(self.dim, f"IVF{nlist},PQ{pq_m}x4fs", faiss.METRIC_INNER_PRODUCT)
        index.train(sample)
        self._add_rows(index, segments, 0)
        self._publish_ann(manifest, index, [segment.name for segment in segments], live_rows)

    def _extend_ann(self, snapshot: Snapshot) -> None:
        """Add the unsealed segments to the FAISS index (a new file; the quantizers are kept)."""
        import faiss

        ann = snapshot.manifest["ann"]
        index = faiss.read_index(str(self.folder / ann["file"]))
        covered = set(snapshot.ann_covered)
        tail = [s for n, s in enumerate(snapshot.segments) if n not in covered]
        self._add_rows(index, tail, int(snapshot.ann_offsets[-1]))
        names = ann["segments"] + [segment.name for segment in tail]
        self._publish_ann(json.loads(json.dumps(snapshot.manifest)), index, names, ann["trained_for"])

    def _add_rows(self, index, segments: list[Segment], first_id: int) -> None:
        for segment in segments:
            for start in range(0, segment.rows, SEARCH_CHUNK_ROWS * 4):
                block = segment.float32_rows(start, start + SEARCH_CHUNK_ROWS * 4)
                index.add_with_ids(block, first_id + start + np.arange(len(block), dtype=np.int64))
            first_id += segment.rows

    def _publish_ann(self, manifest: dict, index, names: list[str], trained_for: int) -> None:
        import faiss

        file = self._new_name(manifest, "ann-{:06d}.faiss")
        with replaced_when_done(self.folder / file) as temporary:
            faiss.write_index(index, str(temporary))
        manifest["ann"] = {"file": file, "segments": names, "trained_for": int(trained_for)}
        self._publish(manifest)

    def _publish(self, manifest: dict) -> None:
        """The commit: the new manifest renamed over the old one; then what it no longer names is removed."""
        _write_manifest(self.folder, manifest)
        self._remove_unnamed(manifest)

    def _remove_unnamed(self, manifest: dict) -> None:
        named = {MANIFEST, LOCK_FILE}
        for entry in manifest["segments"]:
            named |= {f"{entry['name']}.{suffix}" for suffix in ("vectors.npy", "path_ids.npy", "spans.npy", "json")}
            named.add(entry["deleted"])
        if manifest["ann"] is not None:
            named.add(manifest["ann"]["file"])
        for path in self.folder.iterdir():
            if path.name not in named and _OWN_FILE.match(path.name):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def _read_faiss(path: Path):
    """The FAISS index file, memory-mapped (its inverted lists stay in the page cache, not in the process)."""
    import faiss

    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
    except RuntimeError:
        if not path.exists():  # removed by a commit since the manifest was read: the caller reads the new one
            raise FileNotFoundError(path) from None
        raise


def unit_rows(vectors) -> np.ndarray:
    """``(N, D)`` rows as float32, each divided by its L2 norm (an all-zero row stays zero)."""
    vectors = np.asarray(vectors, np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _even_sample(segments: list[Segment], count: int) -> np.ndarray:
    """``count`` live rows evenly spaced over ``segments``, float32."""
    live_rows = sum(segment.live_rows for segment in segments)
    wanted = np.unique(np.linspace(0, live_rows - 1, count).astype(np.int64))
    parts, seen = [], 0
    for segment in segments:
        live = np.arange(segment.rows) if segment.live is None else np.flatnonzero(segment.live)
        mine = wanted[(wanted >= seen) & (wanted < seen + len(live))] - seen
        parts.append(np.asarray(segment.vectors[np.sort(live[mine])], np.float32))
        seen += len(live)
    return np.ascontiguousarray(np.concatenate(parts))


def read_manifest(folder) -> dict:
    """The manifest of the store in ``folder``.

    Raises:
        VideoIndexError: no such store, a single-file index of an earlier version, another format.
    """
    folder = Path(folder)
    if folder.is_file():
        raise VideoIndexError(
            f"index {str(folder)!r} is a single-file index of an earlier version: convert it with "
            f"`actionclip index --convert {folder} --out NEW_INDEX`"
        )
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not folder.exists():
            raise VideoIndexError(f"index {str(folder)!r}: no such file or folder") from None
        raise VideoIndexError(f"index {str(folder)!r} is not an actionclip video index (no {MANIFEST})") from None
    except (OSError, ValueError) as error:
        raise VideoIndexError(f"index {str(folder)!r} is not an actionclip video index ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise VideoIndexError(f"index {str(folder)!r} has format {found!r}, expected {STORE_FORMAT}")
    return manifest


def _manifest_key(folder: Path):
    status = os.stat(folder / MANIFEST)
    return status.st_ino, status.st_mtime_ns, status.st_size


def _write_manifest(folder: Path, manifest: dict) -> None:
    with replaced_when_done(folder / MANIFEST) as temporary:
        temporary.write_text(json.dumps(manifest, sort_keys=True, indent=1), encoding="utf-8")


__all__ = [
    "AnnSettings",
    "FileRows",
    "Hit",
    "STORE_FORMAT",
    "Segment",
    "Snapshot",
    "VectorStore",
    "read_manifest",
    "unit_rows",
]
