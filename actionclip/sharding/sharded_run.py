"""One way to share a run among the processes a launcher starts (``torchrun``, ``accelerate launch``, one node or
several), used by ``actionclip eval``, ``classify`` and ``index``.

- `ShardedRun.from_environment`: this process's rank, the number of processes and its rank on its node, from the
  variables the launchers set (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); without a launcher, one process.
- ``with run:`` joins the processes (``torch.distributed`` with NCCL where there are GPUs, Gloo on CPUs) and leaves
  them at the end; `ShardedRun.device` puts each process on the GPU of its local rank.
- `ShardedRun.map`: every process takes every ``world_size``-th item of the items left to do (no padding: each item
  is computed once), writes each finished item's result to a `WorkFolder` as it goes, and the main process gathers
  the results in the items' order. A run killed in the middle and started again reads the work folder and computes
  only what is missing; the main process removes the folder once the output is written.
- An item that fails with one of the input errors the caller names is a `FailedItem` in the results, and the
  other items go on.

Results travel between processes as pickles and wait in the work folder as ``.npz`` files read back without
pickle: a result is JSON (numbers, strings, ``None``, lists, dicts), or a dict whose values are JSON or numpy
arrays. Nothing here imports torch unless there are several processes (``classify`` on an ONNX export runs
without it).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ShardedRunError
from ..files import replaced_when_done

# How long a process waits for the others in a collective (the gathering at the end waits for the slowest share).
# A process that dies is noticed by the launcher, which ends the others, so this only bounds a stuck one.
COLLECTIVE_TIMEOUT = datetime.timedelta(hours=12)
SETTINGS_NAME = "settings.json"
RESULT_SUFFIX = ".npz"


@dataclass(frozen=True)
class FailedItem:
    """An item whose input could not be used: the error's one-line message and, where known, its class name."""

    message: str
    error_type: str | None = None

    @classmethod
    def from_error(cls, error: BaseException) -> FailedItem:
        return cls(" ".join(str(error).split()), type(error).__name__)

    def __str__(self) -> str:
        return self.message


@dataclass
class ShardedRun:
    """This process's place in the run: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    joined: bool = field(default=False, init=False, repr=False, compare=False)
    """Whether ``with`` joined the processes (and leaves them at its end)."""

    @classmethod
    def from_environment(cls, environ: dict | None = None) -> ShardedRun:
        """The run the launcher started this process in (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, set by
        ``torchrun`` and ``accelerate launch`` on every node); one process when they are absent."""
        environ = os.environ if environ is None else environ
        values = {}
        for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0)):
            text = environ.get(name)
            try:
                values[name] = default if text in (None, "") else int(text)
            except ValueError:
                raise ShardedRunError(f"environment variable {name}={text!r} is not an integer") from None
        rank, world_size, local_rank = values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"]
        if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
            raise ShardedRunError(
                f"RANK={rank}, WORLD_SIZE={world_size}, LOCAL_RANK={local_rank} do not describe a process of a run"
            )
        return cls(rank, world_size, local_rank)

    @property
    def is_main(self) -> bool:
        """Whether this process writes the output (rank 0)."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def device(self, requested: str | None) -> str | None:
        """The device of this process: with several processes and GPUs, ``cuda:LOCAL_RANK`` unless a GPU was named
        (``None`` and ``"cuda"`` mean one GPU per process); otherwise ``requested`` as it is."""
        if not self.is_distributed or requested not in (None, "cuda"):
            return requested
        import torch

        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else requested

    # -------------------------------------------------------------- the process group

    def __enter__(self) -> ShardedRun:
        """Join the other processes (nothing to do alone); leaves them on exit if this call joined them."""
        if not self.is_distributed:
            return self
        import torch
        import torch.distributed as dist

        if dist.is_initialized():  # the caller's own group (a program that already joined)
            return self
        backend = "gloo"
        if torch.cuda.is_available():
            backend = "nccl"
            torch.cuda.set_device(self.local_rank)  # NCCL's collectives of objects go through the current GPU
        try:
            dist.init_process_group(backend, rank=self.rank, world_size=self.world_size, timeout=COLLECTIVE_TIMEOUT)
        except (ValueError, RuntimeError) as error:
            raise ShardedRunError(
                f"process {self.rank} of {self.world_size} could not join the others ({' '.join(str(error).split())}):"
                " start the run with torchrun or accelerate launch"
            ) from None
        self.joined = True
        return self

    def __exit__(self, *exc_info) -> None:
        if self.joined:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.joined = False

    def barrier(self) -> None:
        """Wait until every process gets here."""
        if self.is_distributed:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, value: Any) -> Any:
        """The main process's ``value``, on every process."""
        if not self.is_distributed:
            return value
        import torch.distributed as dist

        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather(self, value: Any) -> list | None:
        """Every process's ``value`` by rank on the main process; ``None`` on the others."""
        if not self.is_distributed:
            return [value]
        import torch.distributed as dist

        gathered = [None] * self.world_size if self.is_main else None
        dist.gather_object(value, gathered, dst=0)
        return gathered

    # -------------------------------------------------------------- sharing the work

    def share(self, items: Sequence) -> list:
        """This process's items: every ``world_size``-th one from its rank (shares differ in size by one at most;
        nothing is repeated to even them out)."""
        return list(items[self.rank :: self.world_size])

    def map(
        self,
        items: Sequence,
        keys: Sequence[str],
        compute: Callable[[list], Iterable],
        work: WorkFolder | None = None,
        what: str = "items",
    ) -> list | None:
        """``compute`` on every item once, shared among the processes; on the main process the results in the
        items' order (the others get ``None``).

        Every process must call this with the same ``items`` and ``keys`` (unique strings naming each item's
        result). ``compute(share)`` yields one result per item of ``share``, in order: a value, or a `FailedItem`.
        With a ``work`` folder, each result is written there as soon as it is yielded, and the items whose results
        the main process finds there already are not computed again (it says so on stderr); a folder that cannot
        be written is a warning, and the run goes on without it."""
        keys = list(keys)
        if len(keys) != len(items) or len(set(keys)) != len(keys):
            raise ValueError("map needs one distinct key per item")
        finished = work.read(keys) if work is not None and self.is_main else {}
        done = set(self.broadcast(sorted(finished)))
        left = [index for index, key in enumerate(keys) if key not in done]
        if done and self.is_main:
            print(
                f"resuming: {len(done)} of {len(keys)} {what} finished earlier (in {work.path}), {len(left)} left "
                f"for {self.world_size} process{'es' if self.is_distributed else ''}",
                file=sys.stderr,
            )
        mine = self.share(left)
        fresh = {}
        for index, result in zip(mine, compute([items[index] for index in mine]), strict=True):
            if work is not None:
                try:
                    work.write(keys[index], result)
                except OSError as error:  # the results still reach the output: only resuming is lost
                    print(
                        f"warning: cannot keep the finished {what} in {work.path} ({error.strerror or error}): "
                        "a run stopped now starts again from the beginning",
                        file=sys.stderr,
                    )
                    work = None
            fresh[keys[index]] = result
        gathered = self.gather(fresh)
        if not self.is_main:
            return None
        for results in gathered:
            finished.update(results)
        return [finished[key] for key in keys]


def default_work_root() -> Path:
    """Where a command without an output folder of its own (``classify``) keeps its finished results:
    ``$XDG_CACHE_HOME/actionclip/unfinished`` (``~/.cache/actionclip/unfinished``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "actionclip" / "unfinished"


class WorkFolder:
    """Finished results of a run waiting for the end of the run: one file per item under ``root/<digest>``, where
    the digest names the run's ``settings`` (a run with other settings uses another folder, never these results).

    Every process writes its own items' results (each file whole or not at all, `files.replaced_when_done`); the
    main process reads them when the run starts again and removes the folder when the output is written. On
    several nodes the folder should be on a file system they share; otherwise the main process finds only its
    node's results and the rest is computed again."""

    def __init__(self, root: str | os.PathLike, settings: dict):
        self.root = Path(root)
        self.settings = settings
        text = json.dumps(settings, sort_keys=True, ensure_ascii=False, default=str)
        self.path = self.root / hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"WorkFolder({str(self.path)!r})"

    def _file(self, key: str) -> Path:
        return self.path / (hashlib.sha256(key.encode("utf-8")).hexdigest()[:32] + RESULT_SUFFIX)

    def write(self, key: str, result: Any) -> None:
        """``result`` of the item ``key`` (a value or a `FailedItem`), replacing an earlier one."""
        import numpy as np

        arrays = {}
        if isinstance(result, FailedItem):
            header = {"key": key, "failed": [result.message, result.error_type]}
        else:
            if isinstance(result, dict):
                arrays = {name: value for name, value in result.items() if isinstance(value, np.ndarray)}
                result = {name: value for name, value in result.items() if name not in arrays}
            header = {"key": key, "value": result, "arrays": sorted(arrays)}
        if not (self.path / SETTINGS_NAME).exists():
            with replaced_when_done(self.path / SETTINGS_NAME) as temporary:
                temporary.write_text(json.dumps(self.settings, indent=2, default=str) + "\n", encoding="utf-8")
        with replaced_when_done(self._file(key)) as temporary, open(temporary, "wb") as handle:
            named = {f"array_{index}": arrays[name] for index, name in enumerate(sorted(arrays))}
            np.savez(handle, header=np.array(json.dumps(header, allow_nan=False)), **named)

    def read(self, keys: Iterable[str]) -> dict[str, Any]:
        """The results finished for ``keys``; a file that cannot be read back is left for the run to redo."""
        import numpy as np

        found = {}
        for key in keys:
            path = self._file(key)
            if not path.is_file():
                continue
            try:
                with np.load(path, allow_pickle=False) as stored:
                    header = json.loads(str(stored["header"]))
                    arrays = {name: stored[f"array_{index}"] for index, name in enumerate(header.get("arrays", ()))}
            except (OSError, ValueError, KeyError, TypeError):  # torn or foreign: computing it again is always right
                continue
            if not isinstance(header, dict) or header.get("key") != key:
                continue
            if "failed" in header:
                found[key] = FailedItem(*header["failed"])
            else:
                found[key] = {**header["value"], **arrays} if arrays else header["value"]
        return found

    def remove(self) -> None:
        """Remove this run's folder, and the root too once no other run's folder is left in it."""
        shutil.rmtree(self.path, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()


__all__ = ["COLLECTIVE_TIMEOUT", "FailedItem", "ShardedRun", "WorkFolder", "default_work_root"]
