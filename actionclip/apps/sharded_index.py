"""An index update shared among a launcher's processes (``torchrun -m actionclip index ...``): the main process plans
the update (`VideoIndex.plan_update`) and hands the plan to every process, each embeds its share of the files
(`embed_video`); the main process, the index's only writer, commits its own files as it finishes them and the
others' (which wait in a work folder beside the index) at the end (`VideoIndex.commit`). A run killed in the middle
embeds, when started again, only the files it had not finished."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable
from pathlib import Path

from ..errors import VideoDecodeError
from ..sharding.sharded_run import FailedItem, ShardedRun, WorkFolder
from .search import EmbeddedFile, VideoIndex, embed_video

WORK_SUFFIX = ".unfinished"


def work_folder(index_path, index: VideoIndex) -> WorkFolder:
    """Where the embedded files of an update of ``index`` (the folder ``index_path``) wait: ``<INDEX>.unfinished/``
    beside it, one folder per model and preprocessing (an update with another model never reads these files)."""
    path = Path(index_path)
    settings = {
        "index": str(path.resolve()),
        "model": index.meta["model"],
        "preprocessing": index.meta["preprocessing"],
    }
    return WorkFolder(path.with_name(path.name + WORK_SUFFIX), settings)


def update_sharded(
    index: VideoIndex,
    index_path,
    pipeline,
    run: ShardedRun,
    *,
    progress: Callable[[str, str], None] | None = None,
    timeout: float = 30.0,
    wait: bool | float = False,
) -> dict | None:
    """`VideoIndex.update` of the index folder ``index_path`` shared among ``run``'s processes (each calls this
    with the same index); alone, it is `VideoIndex.update`.

    The main process holds the index's write lock throughout (``wait`` as for `VideoIndex.update`) and commits each
    file it embeds as it finishes it (an interrupted run keeps them), then the other processes' files, which wait
    in the work folder until then, in one transaction. Files that fail to decode are left out with a warning (the
    rows of a changed one are removed) and tried again next time. Returns the counts ``{"added", "changed",
    "removed", "unchanged", "failed"}`` on the main process, ``None`` on the others."""
    index.check_compatible(pipeline)
    segment = index.meta["preprocessing"]["segment"]
    num_frames = index.meta["preprocessing"]["num_frames"]
    with index.store.writing(wait) if run.is_main else contextlib.nullcontext():
        # Planned once (hashing the changed files) and handed out, so that every process shares the same list.
        plan = run.broadcast(index.plan_update() if run.is_main else None)
        if run.is_main and (plan.removed or plan.refreshed):
            index.commit(removed=plan.removed, refreshed=plan.refreshed)
        work = work_folder(index_path, index) if run.is_distributed else None
        # A file's key holds its content hash: a file changed since its result was written is embedded again.
        keys = [f"{item.relative}\n{item.sha256}" for item in plan.to_embed]

        def embed_share(share: list):
            for item in share:
                if progress is not None:
                    progress(item.relative, item.what)
                try:
                    embeds, spans = embed_video(pipeline, index.root / item.relative, segment, num_frames, timeout)
                except VideoDecodeError as error:
                    yield FailedItem.from_error(error)
                    continue
                if run.is_main:
                    index.commit([EmbeddedFile(item.relative, item.size, item.mtime_ns, item.sha256, embeds, spans)])
                    yield {"committed": True}
                else:
                    yield {"embeddings": embeds, "spans": spans}

        results = run.map(plan.to_embed, keys, embed_share, work, "files")
        if results is None:
            return None
        counts = {"added": 0, "changed": 0, "removed": len(plan.removed), "unchanged": plan.unchanged, "failed": 0}
        embedded, removed = [], []
        for item, result in zip(plan.to_embed, results):
            if isinstance(result, FailedItem):
                warnings.warn(f"{item.relative}: left out of the index: {result.message}", UserWarning, stacklevel=2)
                counts["failed"] += 1
                if item.what == "changed":
                    removed.append(item.relative)
                continue
            counts[item.what] += 1
            if "embeddings" in result:
                embedded.append(EmbeddedFile(
                    item.relative, item.size, item.mtime_ns, item.sha256, result["embeddings"], result["spans"]
                ))  # fmt: skip
        if embedded or removed:
            index.commit(embedded, removed)
    if work is not None:
        work.remove()
    return counts


__all__ = ["WORK_SUFFIX", "update_sharded", "work_folder"]
