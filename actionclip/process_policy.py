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


def apply_command_policy() -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user set a value (which is kept)."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)


def runtime_summary() -> dict:
    """The settings above as this process has them (for ``actionclip info``)."""
    return {"cpus_available": available_cpus(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


if is_command_process():
    apply_command_policy()
