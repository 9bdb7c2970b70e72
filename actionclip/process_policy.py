"""How our own commands run on a machine they share: imported first by the package, before torch loads.

A torch run with as many intra-op threads as cores slows down 10-40x when another process holds a core, because
OpenMP threads spin at barriers waiting for a thread that is not scheduled. Our commands (`actionclip`, the demo,
the training scripts, the benchmarks) therefore set ``OMP_WAIT_POLICY=PASSIVE`` for themselves when the user has
not set it (the OpenMP runtime reads it once, when torch loads it). A program that imports the package keeps its own
settings. (The decoding workers' memory policy and CPU count are `video_decode_pool`'s.)

This module imports nothing but the standard library at import time, and is no part of the remote code: nothing
that travels with the weights imports it.
"""

from __future__ import annotations

import os
import sys

WAIT_POLICY = "PASSIVE"
_COMMAND_DIRECTORIES = ("training_scripts", "benchmarks")


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
    """The settings above as this process has them, and the CPUs it may use (for ``actionclip info``)."""
    from .video_decode_pool import available_cpus

    return {"cpus_available": available_cpus(), "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


if is_command_process():
    apply_command_policy()
