"""Decoding in worker processes: :class:`DecodePool` runs `video_clips.read_clip` for a stream of inputs.

Decoding holds the interpreter lock in places and the resize does too, so threads stop scaling at a few cores: the
pool decodes in processes. Results come back in input order; a file that cannot be read gives its typed error and
the others go on; a worker that dies (a crash in a decoder, SIGKILL) gives its item a `DecodeWorkerDiedError` and is
replaced; a worker stuck past the decode timeout is killed and its item gets a `VideoTimeoutError`. A worker writes
its frames into a slot of its own shared memory (one anonymous memory file), and the parent lends the consumer a
tensor viewing that slot (a slot is written again only once the consumer has dropped its clip; past
``LENT_PER_WORKER`` held clips, a clip is copied out): one copy in all, no bytes through the pipe (where the system
has no memory files, or for a clip larger than a slot, the frames travel through the pipe once, straight into the
tensor). The pool ends its workers when the iteration ends, fails, is interrupted or is closed early; the memory goes
with the last clip that views it (it has no name: nothing is left in ``/dev/shm``).

A decoding worker keeps the memory it frees for its next clip (:func:`keep_freed_memory`): the pool's workers, and
the DataLoader workers of evaluation and training, which decode with `video_clips.read_clip` too.

This module imports torch only in the functions that return tensors, so worker processes start without it; it is
copied next to the weights with the pipeline (remote code), so it imports its package's modules relatively.
"""

from __future__ import annotations

import contextlib
import mmap
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.connection import wait
from multiprocessing.reduction import DupFd

import numpy as np

from .errors import (
    DecodeWorkerDiedError,
    SamplingError,
    VideoDecodeError,
    VideoInputError,
    VideoTimeoutError,
)
from .video_clips import is_decodable, prepare_clip, read_clip

# Start method of the worker processes. The parent has torch (and its threads) loaded, so fork is unsafe; a fork
# server that has imported this module once starts each worker in milliseconds, where spawn re-imports numpy, PyAV
# and Pillow in every worker (see benchmarks/input_engine.py for both).
START_METHOD = "forkserver"
# Items handed to one worker before it returns the first: the second waits in its pipe, so a worker never idles
# between sending a result and receiving the next item.
ITEMS_PER_WORKER = 2
# A worker's shared memory: slots of SLOT_BYTES (a 224-px clip of 8 frames takes 1.2 MB; a larger clip goes through
# the pipe), one per item in flight and LENT_PER_WORKER lent to the consumer at once (their tensors view the memory,
# and a slot is written again only once the consumer has dropped them; beyond that, clips are copied out). The file
# is sparse: memory is used by the slots' touched pages only.
SLOT_BYTES = 16 << 20
LENT_PER_WORKER = 8
SLOTS_PER_WORKER = ITEMS_PER_WORKER + LENT_PER_WORKER
# A worker holding an item longer than the decode timeout times this (plus the grace) is killed: the decoder's own
# deadline normally fires long before.
TIMEOUT_FACTOR = 2.0
TIMEOUT_GRACE_S = 5.0
# What the classifiers' on_error="skip" skips: a video that cannot be decoded, is not a usable video, or cannot be
# sampled as asked.
SKIPPABLE_ERRORS = (VideoDecodeError, VideoInputError, SamplingError)
# A decoding worker's allocator (glibc): blocks up to this size come from its heap, and the heap keeps up to this
# much freed memory instead of giving it back to the system.
WORKER_MMAP_THRESHOLD = 32 << 20
WORKER_TRIM_THRESHOLD = 128 << 20
_kept_freed_memory: dict[int, bool] = {}  # process id -> what keep_freed_memory returned there


def report_errors(prepared: Iterable, on_error: str) -> Iterator:
    """Results of :meth:`DecodePool.imap` with the errors handled: raised, or (``on_error="skip"``, the typed input
    errors of `SKIPPABLE_ERRORS` only) warned about as ``"skipped: <error>"`` and given as ``None``."""
    for item_result in prepared:
        if isinstance(item_result, BaseException):
            if on_error == "raise" or not isinstance(item_result, SKIPPABLE_ERRORS):
                raise item_result
            warnings.warn(f"skipped: {item_result}", UserWarning, stacklevel=2)
            yield None
        else:
            yield item_result


# ---------------------------------------------------------------------- worker processes


def available_cpus() -> int:
    """The number of CPUs this process may run on (its affinity mask: a ``taskset`` or cgroup limit, not the
    machine's total), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def default_num_workers() -> int:
    """One decoding process per CPU this process may use, leaving one for the model loop on larger machines."""
    cpus = available_cpus()
    return cpus if cpus <= 2 else cpus - 1


def _worker_main(connection, slots: _FrameSlots | None = None) -> None:
    """A worker's loop: receive ``(key, source, spec, rng, slot)``, send the frames (a header, then the frames in
    memory file ``slot``, or their raw bytes on the pipe) or the error. Ends when the parent closes its end or sends
    ``None``."""
    # Ctrl-C goes to the whole process group: the parent decides, and ends its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    keep_freed_memory()
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        key, source, spec, rng, slot = message
        cpu = time.process_time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                frames = np.ascontiguousarray(read_clip(source, spec, rng))
                error = None
                if slots is None or slot is None or not slots.write(slot, frames):
                    slot = None  # through the pipe
            except Exception as raised:  # sent back and raised (or reported) in the parent, as in-process
                frames, error = None, raised
        notes = ([(str(w.message), w.category) for w in caught], time.process_time() - cpu)
        try:
            if error is None:
                connection.send(("frames", key, (frames.shape, slot), notes))
                if slot is None:
                    _write_all(connection.fileno(), memoryview(frames).cast("B"))
            else:
                connection.send(("error", key, _picklable(error, source), notes))
        except (BrokenPipeError, EOFError, OSError):
            return


def keep_freed_memory() -> bool:
    """Make glibc's allocator keep the memory a loop of same-sized allocations frees (a decoding worker: a clip's
    frames, the decoder's buffers), so that the next item reuses it. Once per process (a forked child sets it again).

    With glibc's defaults a long-running decoder gives freed memory back to the system and faults it in again one
    4 KB page at a time: about 800 page faults a 224-px clip in a worker process, where the same loop in a fresh
    process had almost none. Returns whether the settings took (``False`` off glibc; nothing is changed then).
    """
    pid = os.getpid()
    if pid not in _kept_freed_memory:
        _kept_freed_memory[pid] = _set_worker_thresholds()
    return _kept_freed_memory[pid]


def _set_worker_thresholds() -> bool:
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    return bool(mallopt(m_mmap_threshold, WORKER_MMAP_THRESHOLD)) and bool(
        mallopt(m_trim_threshold, WORKER_TRIM_THRESHOLD)
    )


def _new_array(shape) -> np.ndarray:
    """A new uint8 array whose memory is in place before it is written: a clip's megabytes in fresh pages would
    otherwise fault in one 4 KB page at a time as the copy touches them (2 ms a clip on this project's machine, more
    than the copy), where one populated mapping costs a tenth of that. The mapping is unmapped with the array."""
    size = int(np.prod(shape))
    if size < (1 << 20) or not hasattr(mmap, "MAP_POPULATE"):
        return np.empty(shape, dtype=np.uint8)
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
    return np.frombuffer(memory, dtype=np.uint8).reshape(shape)


class _FrameSlots:
    """The shared memory a worker hands its frames over in: one anonymous memory file (``memfd_create``) of
    ``SLOTS_PER_WORKER`` slots of ``SLOT_BYTES``, mapped once by each side.

    The parent chooses the slot of each item when it sends it (:meth:`take`): one neither in flight (the worker's
    ``slot_of`` says which are) nor lent. A
    received clip (:meth:`receive`) is lent to the consumer, its array viewing the slot's memory, while fewer than
    ``LENT_PER_WORKER`` are, else copied out; a lent slot is free again once nothing but this object holds the array
    lent from it (its reference count says so), so a slot is never written while a clip in it can be read. The
    consumer keeps what it was lent for as long as it likes: the mapping outlives the pool and goes with the last
    array.

    Made by the parent for each worker (the file travels to the worker with its start-up arguments). The file has no
    name: it goes away with the last process that holds or maps it, even one killed with SIGKILL.
    """

    def __init__(self, fd: int):
        self.fd = fd
        self.mapped: mmap.mmap | None = None
        self.lent: list[np.ndarray | None] = [None] * SLOTS_PER_WORKER  # (parent) the array lent from each slot
        self.unheld = 0  # (parent) a lent array's reference count when the consumer no longer holds it

    @classmethod
    def create(cls) -> _FrameSlots | None:
        """The memory file of one worker, or ``None`` where the system has none (the frames then use the pipe)."""
        if not hasattr(os, "memfd_create"):
            return None
        try:
            fd = os.memfd_create("actionclip-frames", os.MFD_CLOEXEC)
        except OSError:
            return None
        try:
            os.ftruncate(fd, SLOTS_PER_WORKER * SLOT_BYTES)
        except OSError:
            os.close(fd)
            return None
        return cls(fd)

    def __reduce__(self):
        # Sent to the worker when it starts: the descriptor duplicated into the new process.
        return _FrameSlots._rebuild, (DupFd(self.fd),)

    @staticmethod
    def _rebuild(duplicate) -> _FrameSlots:
        return _FrameSlots(duplicate.detach())

    def _slot(self, slot: int, size: int) -> np.ndarray:
        if self.mapped is None:
            self.mapped = mmap.mmap(self.fd, SLOTS_PER_WORKER * SLOT_BYTES)
        return np.frombuffer(self.mapped, dtype=np.uint8, count=size, offset=slot * SLOT_BYTES)

    def write(self, slot: int, frames: np.ndarray) -> bool:
        """(In the worker.) Copy ``frames`` into ``slot``; ``False`` if they do not fit (they go through the pipe)."""
        if frames.nbytes > SLOT_BYTES:
            return False
        np.copyto(self._slot(slot, frames.nbytes), frames.reshape(-1))
        return True

    def _references(self, slot: int) -> int:
        return sys.getrefcount(self.lent[slot])

    def _is_lent(self, slot: int) -> bool:
        if self.lent[slot] is None:
            return False
        if self._references(slot) > self.unheld:
            return True
        self.lent[slot] = None
        return False

    def take(self, in_flight) -> int | None:
        """(In the parent.) A slot for the next item sent, neither ``in_flight`` nor lent; ``None``: the pipe."""
        for slot in range(SLOTS_PER_WORKER):
            if slot not in in_flight and not self._is_lent(slot):
                return slot
        return None

    def receive(self, slot: int, shape) -> np.ndarray:
        """(In the parent.) The frames in ``slot``: lent (a view of the memory) or copied into a new array."""
        in_memory = self._slot(slot, int(np.prod(shape)))
        if sum(self._is_lent(k) for k in range(SLOTS_PER_WORKER)) < LENT_PER_WORKER:
            self.lent[slot] = in_memory.reshape(shape)
            # What the count is while only this object holds it, counted the way `_is_lent` counts.
            self.unheld = self._references(slot)
            return self.lent[slot]
        frames = _new_array(shape)
        np.copyto(frames.reshape(-1), in_memory)
        return frames

    def close(self) -> None:
        """Close the file; the mapping stays while the consumer holds a clip lent from it."""
        # Not ``mmap.close()``: numpy's views of a mapping do not stop it from unmapping the memory under them. The
        # mapping object goes (and unmaps) with the last reference: this one, or the last lent array's.
        if self.fd >= 0:
            os.close(self.fd)
        self.mapped, self.fd, self.lent = None, -1, [None] * SLOTS_PER_WORKER


def _write_all(fd: int, data: memoryview) -> None:
    """The frames' bytes, as they lie in memory, after their header message: no pickling, no framing copy."""
    while data:
        data = data[os.write(fd, data) :]


def _read_into(fd: int, target: memoryview) -> None:
    """Fill ``target`` from the worker's end: the bytes land in the frames' tensor (`recv_bytes_into` would read
    them into a new buffer first, then copy).

    Raises:
        EOFError: the worker's end closed before all of them came (the worker died).
    """
    while target:
        count = os.readv(fd, [target])
        if count == 0:
            raise EOFError("the decoding worker closed its end in the middle of a clip")
        target = target[count:]


def _picklable(error: Exception, source) -> Exception:
    try:
        pickle.dumps(error)
        return error
    except Exception:
        return VideoDecodeError(source, f"{type(error).__name__}: {error}")


def _source_for_worker(source):
    """What a worker can receive: paths, URLs and bytes (file objects are decoded in the parent)."""
    if isinstance(source, (bytearray, memoryview)):
        return bytes(source)
    if hasattr(source, "__fspath__"):
        return os.fspath(source)
    return source


@contextlib.contextmanager
def _main_not_inherited():
    """Start processes that do not re-import the parent's ``__main__``: spawn and the fork server run the parent's
    main file again in every child (a script that imports torch and transformers costs seconds per worker, one read
    from stdin cannot be run again at all), and a worker needs nothing from it."""
    main = sys.modules.get("__main__")
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if main and name in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)


class _Worker:
    def __init__(self, context):
        self.connection, child = context.Pipe(duplex=True)
        self.slots = _FrameSlots.create()
        self.process = context.Process(
            target=_worker_main, args=(child, self.slots), name="actionclip-decode", daemon=True
        )
        try:
            with _main_not_inherited():
                self.process.start()
        except BaseException:
            self.connection.close()
            if self.slots is not None:
                self.slots.close()
            raise
        finally:
            child.close()
        self.in_flight: deque = deque()  # (key, source, spec, rng), in the order the worker handles them
        self.slot_of: dict[int, int | None] = {}  # the memory slot each item in flight was sent with
        self.started = time.monotonic()  # when the item at the head of in_flight was handed over (or reached)

    def send(self, job) -> None:
        if not self.in_flight:
            self.started = time.monotonic()
        self.in_flight.append(job)
        key, source, spec, rng = job
        slot = self.slots.take(self.slot_of.values()) if self.slots is not None else None
        self.connection.send((key, _source_for_worker(source), spec, rng, slot))
        self.slot_of[key] = slot

    def ask_to_stop(self) -> None:
        try:
            self.connection.send(None)
        except OSError:
            pass

    def stop(self, kill: bool = False, deadline: float | None = None) -> None:
        """End the process: by its own exit (asked with `ask_to_stop`) until ``deadline``, else killed."""
        if not kill:
            self.process.join(max(0.0, (deadline or time.monotonic() + 1.0) - time.monotonic()))
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5.0)
        self.connection.close()
        self.process.close()
        if self.slots is not None:
            self.slots.close()


class _FeedState:
    """What the feeder thread and the consuming generator share (under ``condition``)."""

    def __init__(self):
        self.condition = threading.Condition()
        self.ready: dict[int, object] = {}
        self.consumed = 0
        self.stop = False
        self.done = False
        self.total: int | None = None
        self.fatal: BaseException | None = None

    def finished(self, next_out: int) -> bool:
        """No result ``next_out`` will come: the feeder is done and had fewer jobs, or stopped on an error."""
        return self.done and (self.total is None or next_out >= self.total)


class DecodePool:
    """Decodes video sources in worker processes; :meth:`imap` yields results in input order.

    Args:
        num_workers: worker processes (default :func:`default_num_workers`); ``0`` decodes in this process.
        start_method: ``"forkserver"`` or ``"spawn"`` (default `START_METHOD`, forkserver); fork is refused (the
            parent holds torch's threads).

    Use as a context manager, or call :meth:`close`; an :meth:`imap` iterator that ends, fails or is closed ends
    the workers it started too.
    """

    def __init__(self, num_workers: int | None = None, start_method: str | None = None):
        start_method = start_method or START_METHOD
        if num_workers is None:
            num_workers = default_num_workers()
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise VideoInputError("num_workers", f"must be an integer >= 0, got {num_workers!r}")
        if start_method not in ("forkserver", "spawn"):
            raise VideoInputError("start_method", f"must be 'forkserver' or 'spawn', got {start_method!r}")
        self.num_workers = num_workers
        self.start_method = start_method
        self._workers: list[_Worker] = []
        self.worker_cpu_seconds = 0.0  # CPU time the workers spent on items (start-up excluded)

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """End every worker (they are started again by the next :meth:`imap`)."""
        workers, self._workers = self._workers, []
        for worker in workers:
            if worker.process.is_alive():
                worker.ask_to_stop()
        # One second for all of them together (a worker in the middle of a video finishes it first), then killed.
        deadline = time.monotonic() + 1.0
        for worker in workers:
            worker.stop(deadline=deadline)

    def worker_pids(self, holding=None) -> list[int]:
        """The process ids of the running workers; with ``holding``, of those that have that source among their
        items in flight (for a caller that watches its workers or signals one)."""
        return [
            worker.process.pid
            for worker in list(self._workers)
            if holding is None or any(job[1] == holding for job in list(worker.in_flight))
        ]

    def _context(self):
        context = multiprocessing.get_context(self.start_method)
        if self.start_method == "forkserver":
            # Imported once by the fork server, so each worker starts as a fork of a process that has it.
            context.set_forkserver_preload([__name__])
        return context

    def imap(self, jobs: Iterable, ahead: int | None = None, local=None, tensors: bool = True) -> Iterator:
        """``jobs``: ``(item, spec, rng)`` triples (``rng`` an int seed or ``None``); a video source or a
        `video_clips.FrameFolder` is decoded by a worker, frames in memory are resized and cropped here. Yields, in
        order, a uint8 tensor ``(V, T, h, w, 3)`` per job (a numpy array with ``tensors=False``: torch is not
        imported), or the exception that job raised (typed: `VideoDecodeError`, `VideoInputError`, `SamplingError`,
        `DecodeWorkerDiedError`, ...). At most ``ahead`` jobs (default 2 per worker) are read from ``jobs`` before
        their results are taken. ``local(item, spec, rng)`` prepares the items
        that are not decoded (default `video_clips.clip_from_frames`); its result is yielded as it is."""
        if tensors:
            import torch
        else:
            torch = None

        def prepare_here(item, spec, rng):
            if local is not None and not is_decodable(item):
                return local(item, spec, rng)
            frames = prepare_clip(item, spec, rng)
            return frames if torch is None else torch.from_numpy(frames)

        if self.num_workers == 0:
            for source, spec, rng in jobs:
                try:
                    yield prepare_here(source, spec, rng)
                except Exception as error:  # noqa: BLE001 - handed to the caller, as the workers' errors are
                    yield error
            return
        ahead = max(ahead or 0, ITEMS_PER_WORKER * self.num_workers)
        # A feeder thread hands jobs to the workers and receives their frames while the caller is busy elsewhere
        # (running the model): a worker's result does not fit in its pipe, so without a reader it would wait.
        state = _FeedState()
        feeder = threading.Thread(
            target=self._feed,
            args=(iter(jobs), ahead, prepare_here, state, torch),
            name="actionclip-feed",
            daemon=True,
        )
        feeder.start()
        next_out = 0
        try:
            while True:
                with state.condition:
                    while next_out not in state.ready and not state.finished(next_out):
                        state.condition.wait(0.5)
                    if next_out not in state.ready:
                        if state.fatal is not None:
                            raise state.fatal
                        return
                    result = state.ready.pop(next_out)
                    next_out += 1
                    state.consumed = next_out
                    state.condition.notify_all()
                yield result
        finally:
            # An error, a KeyboardInterrupt or the caller closing the iterator early: no thread or worker outlives it.
            with state.condition:
                state.stop = True
                state.condition.notify_all()
            feeder.join()
            self.close()

    def _feed(self, jobs: Iterator, ahead: int, prepare_here, state: _FeedState, torch) -> None:
        """The feeder thread: read jobs (at most ``ahead`` beyond what the caller took), dispatch, collect. ``torch``:
        the module, or None to give numpy arrays."""
        context = self._context()
        waiting: deque = deque()  # jobs read but not yet handed to a worker (or given back by a dead one)
        results: dict[int, object] = {}
        next_key = 0
        exhausted = False
        try:
            while not state.stop:
                while not exhausted and next_key - state.consumed < ahead:
                    try:
                        source, spec, rng = next(jobs)
                    except StopIteration:
                        exhausted = True
                        break
                    if is_decodable(source) and not hasattr(source, "read"):
                        waiting.append((next_key, source, spec, rng))
                    else:  # frames in memory, or a file object (it cannot travel): prepared here, in order
                        try:
                            results[next_key] = prepare_here(source, spec, rng)
                        except Exception as error:  # noqa: BLE001 - handed to the caller like the workers' errors
                            results[next_key] = error
                    next_key += 1
                self._dispatch(waiting, context, results)
                if results:
                    with state.condition:
                        state.ready.update(results)
                        state.condition.notify_all()
                    results = {}
                busy = any(worker.in_flight for worker in self._workers)
                if exhausted and not waiting and not busy:
                    break
                if busy:
                    self._collect(results, waiting, torch)
                else:  # everything read ahead is done: wait for the caller to take some
                    with state.condition:
                        if not state.stop and next_key - state.consumed >= ahead:
                            state.condition.wait(0.5)
        except BaseException as error:  # noqa: BLE001 - the jobs iterator's own error (or interrupt), for the caller
            state.fatal = error
        finally:
            with state.condition:
                state.ready.update(results)
                state.total = next_key if state.fatal is None else None
                state.done = True
                state.condition.notify_all()

    def _dispatch(self, waiting: deque, context, results: dict) -> None:
        while waiting:
            if len(self._workers) < self.num_workers:
                self._workers.append(_Worker(context))
            worker = min(self._workers, key=lambda w: len(w.in_flight))
            if len(worker.in_flight) >= ITEMS_PER_WORKER:
                return
            job = waiting.popleft()
            try:
                worker.send(job)
            except OSError:  # the worker died before taking it: noticed by _collect, which hands it on again
                pass
            except Exception as error:  # e.g. a file object that cannot be read
                worker.in_flight.pop()
                results[job[0]] = error

    def _collect(self, results: dict, waiting: deque, torch) -> None:
        """Wait for the next message (or a worker's death, or a stuck worker) and file what arrived."""
        by_handle = {}
        for worker in self._workers:
            if worker.in_flight:
                by_handle[worker.connection] = worker
                by_handle[worker.process.sentinel] = worker
        ready = wait(list(by_handle), timeout=1.0)
        for worker in {id(by_handle[h]): by_handle[h] for h in ready}.values():
            try:
                while worker.in_flight and worker.connection.poll():
                    self._receive(worker, results, torch)
            except (EOFError, OSError):
                pass
            if not worker.process.is_alive() and worker.in_flight:
                self._replace(worker, results, waiting, died=True)
        now = time.monotonic()
        for worker in list(self._workers):
            if worker.in_flight:
                spec = worker.in_flight[0][2]
                if spec.timeout is not None and now - worker.started > TIMEOUT_FACTOR * spec.timeout + TIMEOUT_GRACE_S:
                    self._replace(worker, results, waiting, died=False)

    def _receive(self, worker: _Worker, results: dict, torch) -> None:
        kind, key, payload, (notes, cpu) = worker.connection.recv()
        self.worker_cpu_seconds += cpu
        worker.slot_of.pop(key, None)  # the slot is free again (or, lent, once the consumer drops the clip)
        if kind == "frames":
            shape, slot = payload
            if slot is None:
                frames = np.empty(shape, dtype=np.uint8) if torch is None else torch.empty(shape, dtype=torch.uint8)
                _read_into(
                    worker.connection.fileno(), memoryview(frames if torch is None else frames.numpy()).cast("B")
                )
            else:
                frames = worker.slots.receive(slot, shape)
                if torch is not None:
                    frames = torch.from_numpy(frames)
            results[key] = frames
        else:
            results[key] = payload
        worker.in_flight.popleft()
        worker.started = time.monotonic()
        for message, category in notes:
            warnings.warn(message, category, stacklevel=4)

    def _replace(self, worker: _Worker, results: dict, waiting: deque, died: bool) -> None:
        """The worker's current item gets a typed error; the items queued behind it go to another worker."""
        key, source, spec, _ = worker.in_flight.popleft()
        code = worker.process.exitcode
        worker.stop(kill=True)
        self._workers.remove(worker)
        if died:
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            results[key] = DecodeWorkerDiedError(
                source, f"the decoding worker process {how} while decoding it (a crash in the decoder?)"
            )
        else:
            results[key] = VideoTimeoutError(source, f"decoding did not finish within {spec.timeout} s; worker killed")
        waiting.extendleft(reversed(worker.in_flight))


__all__ = [
    "SKIPPABLE_ERRORS",
    "DecodePool",
    "available_cpus",
    "default_num_workers",
    "keep_freed_memory",
    "report_errors",
]
