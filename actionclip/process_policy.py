"""How our own commands run on a machine they share: imported first by the package, before torch loads.

A torch run with as many intra-op threads as cores slows down 10-40x when another process holds a core, because
OpenMP threads spin at barriers waiting for a thread that is not scheduled. Our commands (`actionclip`, the demo,
the training scripts, the benchmarks) therefore set ``OMP_WAIT_POLICY=PASSIVE`` for themselves when the user has
not set it (the OpenMP runtime reads it once, when torch loads it), and count the cores actually given to the
process (``os.sched_getaffinity``: a ``taskset``/cgroup limit, not the machine's total) when they choose thread
counts. A program that imports the package keeps its own settings.

This module imports nothing but the standard library.
"""

from __future__ import annotations

import os
import sys

WAIT_POLICY = "PASSIVE"
_COMMAND_DIRECTORIES = ("training_scripts", "benchmarks")


def available_cpus() -> int:
    """The number of CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def is_command_process(argv: list[str] | None = None) -> bool:
    """Whether this process is one of our commands: ``actionclip``, ``python -m actionclip...``, or a script in
    ``training_scripts/`` or ``benchmarks/``."""
    argv = list(getattr(sys, "orig_argv", sys.argv) if argv is None else argv)
    if "-m" in argv[1:]:
        module = argv[argv.index("-m", 1) + 1] if argv.index("-m", 1) + 1 < len(argv) else ""
        return module == "actionclip" or module.startswith("actionclip.")
    script = next((argument for argument in argv[1:] if not argument.startswith("-")), argv[0] if argv else "")
    if os.path.basename(script) == "actionclip":
        return True
    folder = os.path.basename(os.path.dirname(os.path.abspath(script)))
    return script.endswith(".py") and folder in _COMMAND_DIRECTORIES


# A decoding worker's allocator (glibc): blocks up to this size come from its heap, and the heap keeps up to this
# much freed memory instead of giving it back to the system.
WORKER_MMAP_THRESHOLD = 32 << 20
WORKER_TRIM_THRESHOLD = 128 << 20
_kept_freed_memory: dict[int, bool] = {}  # process id -> what keep_freed_memory returned there


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


def apply_command_policy() -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user set a value (which is kept)."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def runtime_summary() -> dict:
    """The settings above as this process has them (for ``actionclip info``)."""
    return {"cpus_available": available_cpus(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


if is_command_process():
    apply_command_policy()
