"""Exact top-10 search over 100,000 x 512 float16 vectors: the index's exact search against a naive baseline, one run.

Usage: ``OMP_NUM_THREADS=1 python benchmarks/search.py [--rows 100000] [--dim 512] [--queries 20]`` (numpy's BLAS
uses the threads the environment gives it). Larger indexes go through FAISS: ``benchmarks/index_scale.py``.

- **ours (exact)**: a store (`actionclip.store.vector_store`) below its FAISS threshold, searched as
  ``VideoIndex.search`` searches it: chunked float32 matmul against the float32 copy of the float16 vectors (made
  once per opened segment; its cost is printed separately), candidates near the k-th score re-scored exactly and
  ordered by (score, path, start).
- **baseline**: the float16 vectors multiplied as float16 by numpy on every query, then a full ``argsort``.

Prints milliseconds per query (median) and the speed-up; the goal is <= 100 ms per query on the 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from actionclip.store.vector_store import FileRows, VectorStore  # noqa: E402


def timed(function, repeats: int) -> float:
    """Median milliseconds of ``function()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def run(args) -> str:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.rows, args.dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as folder:
        store = VectorStore.create(Path(folder) / "index", args.dim, {})
        starts = np.arange(args.rows, dtype=np.float64)
        store.commit([FileRows("v.mp4", {}, vectors, np.stack([starts, starts + 1], axis=1))], maintain=False)
        snapshot = store.snapshot()
        queries = rng.standard_normal((args.queries, args.dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        start = time.perf_counter()
        snapshot.search(queries[:1], k=10)  # makes the float32 copy
        first = 1000 * (time.perf_counter() - start)
        stored = vectors.astype(np.float16)

        state = iter(range(10**9))

        def next_query():
            return queries[next(state) % len(queries)]

        ours = timed(lambda: snapshot.search(next_query()[None], k=10), args.queries)

        def baseline():
            scores = stored @ next_query().astype(np.float16)
            return np.argsort(-scores.astype(np.float32))[:10]

        naive = timed(baseline, max(3, args.queries // 4))
        check = [int(hit.start) for hit in snapshot.search(queries[1:2], k=10)[0]]
    assert check == np.argsort(-(stored.astype(np.float32) @ queries[1]))[:10].tolist()
    lines = [
        f"{args.rows:,} x {args.dim} float16 vectors, top-10, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"median of {args.queries} queries",
        "",
        "| method | ms per query |",
        "| --- | --- |",
        f"| baseline: float16 matmul + full argsort | {naive:.1f} |",
        f"| ours, numpy (exact, chunked) | {ours:.1f} |",
        "",
        f"first search (float16 -> float32 copy, once per opened segment): {first:.0f} ms; "
        f"speed-up over the baseline: {naive / ours:.1f}x; goal <= 100 ms: {'met' if ours <= 100 else 'NOT met'}",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=20)
    print(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
