"""The vector store under the video index: commits, snapshots, the write lock, exact and FAISS search (synthetic
vectors; real processes for the concurrent cases)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from actionclip.errors import IndexLockedError, VideoIndexError
from actionclip.store.vector_store import AnnSettings, FileRows, VectorStore, read_manifest

REPO_ROOT = Path(__file__).resolve().parents[1]
DIM = 24
# Small enough to build FAISS on a few thousand rows; nprobe = every list and k * refine >= every row, so FAISS
# returns every candidate and the re-scored top-k is exact (what lets an ANN store equal a fresh exact answer).
ANN = AnnSettings(min_rows=600, nlist=8, pq_m=4, nprobe=8, refine=400, train_rows=2000, tail_rows=150)


def video(name: str, rows: int, seed: int) -> FileRows:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((rows, DIM)).astype(np.float32)
    starts = np.arange(rows, dtype=np.float64)
    record = {"size": rows, "mtime_ns": seed, "sha256": f"{seed:064x}"}
    return FileRows(name, record, vectors, np.stack([starts, starts + 1], axis=1))


def queries(count=8, seed=99) -> np.ndarray:
    q = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def answers(store: VectorStore, k=10, **kwargs) -> list[list[tuple]]:
    return [
        [(hit.path, hit.start, round(hit.score, 9)) for hit in hits]
        for hits in store.snapshot().search(queries(), k, **kwargs)
    ]


def fresh(folder, files, settings=None) -> VectorStore:
    store = VectorStore.create(folder, DIM, {"test": True}, settings)
    store.commit(files)
    return store


@pytest.mark.parametrize("settings", [None, ANN], ids=["exact", "faiss"])
def test_appends_and_deletes_answer_as_a_fresh_build_of_the_same_rows(tmp_path, settings):
    store = VectorStore.create(tmp_path / "grown", DIM, {"test": True}, settings)
    files = {f"v{i:03d}.mp4": video(f"v{i:03d}.mp4", 20 + i % 7, seed=i) for i in range(60)}
    for number, name in enumerate(files):  # one commit per file: merges, then FAISS built and extended
        store.commit([files[name]])
        if number % 9 == 8:
            store.commit(removed=[f"v{number - 4:03d}.mp4"])
    removed = {f"v{n - 4:03d}.mp4" for n in range(60) if n % 9 == 8}
    store.commit([video("v001.mp4", 30, seed=1001)])  # a changed file: its rows replaced
    live = {name: files[name] for name in files if name not in removed} | {"v001.mp4": video("v001.mp4", 30, 1001)}
    snapshot = store.snapshot()
    assert set(snapshot.files) == set(live) and len(snapshot) == sum(len(f.vectors) for f in live.values())
    assert len([s for s in snapshot.manifest["segments"] if s["name"] not in _sealed(snapshot)]) <= 8
    if settings is not None:
        assert snapshot.ann is not None  # the rows above min_rows went through FAISS
        assert any(entry["deleted"] for entry in snapshot.manifest["segments"])  # and FAISS skips deleted rows
    rebuilt = fresh(tmp_path / "fresh", list(live.values()), settings)
    assert answers(store) == answers(rebuilt) == answers(rebuilt, exact=True)
    assert answers(store, k=1000)[0] == answers(rebuilt, k=1000, exact=True)[0]  # every row, in one order


def _sealed(snapshot):
    return set(snapshot.manifest["ann"]["segments"]) if snapshot.manifest["ann"] else set()


def test_ties_are_ordered_by_path_and_start_whatever_the_insertion_order(tmp_path):
    same = video("b.mp4", 3, seed=5)
    twin = FileRows("a.mp4", same.record, same.vectors[::-1], same.spans)  # the same vectors, other starts
    first = fresh(tmp_path / "1", [same])
    first.commit([twin])
    second = fresh(tmp_path / "2", [twin, same])
    assert answers(first, k=6) == answers(second, k=6)
    pairs = answers(first, k=6)[0]
    assert [pairs[i][2] for i in (0, 2, 4)] == [pairs[i][2] for i in (1, 3, 5)]  # scores come in equal pairs
    assert [pair[0] for pair in pairs[:2]] == ["a.mp4", "b.mp4"]


def test_a_commit_is_all_or_nothing_and_leaves_no_stray_files(tmp_path):
    store = fresh(tmp_path / "s", [video("a.mp4", 4, 1)])
    before = read_manifest(store.folder)
    with pytest.raises(VideoIndexError, match="expected vectors of shape"):
        store.commit([video("b.mp4", 4, 2), FileRows("c.mp4", {}, np.zeros((2, DIM + 1)), np.zeros((2, 2)))])
    assert read_manifest(store.folder) == before
    (store.folder / "seg-000999.vectors.npy").write_bytes(b"left by a killed writer")
    store.commit(removed=["a.mp4"])
    assert not (store.folder / "seg-000999.vectors.npy").exists()
    assert sorted(path.name for path in store.folder.iterdir()) == ["lock", "manifest.json"]
    assert len(store.snapshot()) == 0 and store.snapshot().search(queries(), 5) == [[] for _ in range(8)]


def test_a_folder_that_is_not_a_store_and_an_old_single_file_index_are_refused(tmp_path):
    (tmp_path / "old.index").write_bytes(b"PK\x03\x04")
    with pytest.raises(VideoIndexError, match="actionclip index --convert .*old.index --out"):
        VectorStore.open(tmp_path / "old.index")
    with pytest.raises(VideoIndexError, match="no such file"):
        VectorStore.open(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    with pytest.raises(VideoIndexError, match="not an actionclip video index"):
        VectorStore.open(tmp_path / "other")


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from actionclip.store.vector_store import VectorStore
    store = VectorStore.open(sys.argv[1])
    with store.writing():
        print("locked", flush=True)
        sys.stdin.readline()  # until the test says so
    """
)


def python(script, *args, **kwargs):
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=environment, text=True, **kwargs)


def test_a_second_writer_gets_a_typed_error_naming_the_holder_or_waits(tmp_path):
    store = fresh(tmp_path / "s", [video("a.mp4", 4, 1)])
    holder = python(HOLD_LOCK, store.folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=f"being written by process {holder.pid}") as caught:
            store.commit([video("b.mp4", 4, 2)], wait=False)
        assert caught.value.pid == holder.pid and caught.value.index == str(store.folder)
        with pytest.raises(IndexLockedError):
            store.commit([video("b.mp4", 4, 2)], wait=0.3)  # waited 0.3 s, then gave up
        holder.stdin.write("done\n")
        holder.stdin.flush()
        store.commit([video("b.mp4", 4, 2)], wait=60)  # waits for the holder to finish
    finally:
        holder.kill()
        holder.wait()
    assert set(store.snapshot().files) == {"a.mp4", "b.mp4"}


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[2])
    from test_vector_store import video, VectorStore
    store = VectorStore.open(sys.argv[1])
    for round in range(int(sys.argv[3])):  # X -> Y -> X ...: a.mp4 replaced, b.mp4 removed and added back
        if round % 2 == 0:
            store.commit([video("a.mp4", 40, seed=2)], removed=["b.mp4"])
        else:
            store.commit([video("a.mp4", 40, seed=1), video("b.mp4", 30, seed=3)])
    print("writer done", flush=True)
    """
)

READER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[2])
    from test_vector_store import queries, VectorStore
    seen = []
    store = VectorStore.open(sys.argv[1])
    while True:
        hits = store.snapshot().search(queries(), 5)
        seen.append([[(hit.path, hit.start) for hit in row] for row in hits])
        if len(seen) % 5 == 0:
            store = VectorStore.open(sys.argv[1])  # a new reader now and then: snapshots taken while files go
        if len(seen) >= 30 and open(sys.argv[3]).read():
            break
    print(json.dumps(seen))
    """
)


@pytest.mark.parametrize("settings", [None, ANN], ids=["exact", "faiss"])
def test_a_search_during_updates_sees_the_old_or_the_new_rows_never_an_error(tmp_path, settings):
    base = [video(f"base{i}.mp4", 40, seed=10 + i) for i in range(16)]  # 640 rows: FAISS with ANN's settings
    state_x = base + [video("a.mp4", 40, seed=1), video("b.mp4", 30, seed=3)]
    state_y = base + [video("a.mp4", 40, seed=2)]
    expected = []
    for name, files in (("x", state_x), ("y", state_y)):
        reference = fresh(tmp_path / name, files, settings)
        expected.append([[(hit.path, hit.start) for hit in row] for row in reference.snapshot().search(queries(), 5)])
    assert expected[0] != expected[1]
    store = fresh(tmp_path / "live", state_x, settings)
    done = tmp_path / "writer-done"
    done.write_text("")
    tests = Path(__file__).parent
    reader = python(READER, store.folder, tests, done, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer = python(WRITER, store.folder, tests, 40, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    writer_out, writer_err = writer.communicate(timeout=240)
    assert writer.returncode == 0, writer_err[-2000:]
    done.write_text("yes")
    reader_out, reader_err = reader.communicate(timeout=240)
    assert reader.returncode == 0, reader_err[-2000:]
    seen = json.loads(reader_out.splitlines()[-1])
    assert len(seen) >= 30
    as_lists = [json.loads(json.dumps(answer)) for answer in expected]
    assert all(answer in as_lists for answer in seen)
    assert len(os.listdir(store.folder)) <= 2 + 4 * 12 + 12 + 1  # old files removed as commits go


def test_the_settings_travel_with_the_store(tmp_path):
    VectorStore.create(tmp_path / "s", DIM, {"model": "m"}, ANN)
    reopened = VectorStore.open(tmp_path / "s")
    assert reopened.settings == ANN and reopened.meta == {"model": "m"} and reopened.dim == DIM


def test_deleting_past_max_deleted_rebuilds_faiss_over_the_rows_left_in_one_commit(tmp_path):
    store = fresh(tmp_path / "s", [video(f"v{i:02d}.mp4", 40, i) for i in range(40)], ANN)
    first = store.snapshot().manifest["ann"]
    store.commit(removed=[f"v{i:02d}.mp4" for i in range(10)])  # 25% of the sealed rows
    manifest = store.snapshot().manifest
    assert manifest["ann"]["file"] != first["file"] and manifest["ann"]["trained_for"] == 1200
    assert manifest["ann"]["segments"] == [entry["name"] for entry in manifest["segments"]]
    assert all(entry["deleted"] is None for entry in manifest["segments"])  # the deleted rows were dropped
    rest = fresh(tmp_path / "rest", [video(f"v{i:02d}.mp4", 40, i) for i in range(10, 40)], ANN)
    assert answers(store) == answers(rest)


def mapped_kb(path: Path) -> int:
    """Resident kB of this process's memory maps of ``path`` (``/proc/self/smaps``)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if line[:1] in "0123456789abcdef" and "-" in line.split()[0]:
            inside = line.rstrip().endswith(str(path))
        elif inside and line.startswith("Rss:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux's /proc/self/smaps")
def test_searching_leaves_no_rows_mapped_in_the_process(tmp_path):
    """Candidates are read through the segment's memory map, whose pages are then released: the process's RSS does
    not grow with the files searched (10M rows are 10 GB of float16 vectors)."""
    settings = AnnSettings(min_rows=600, nlist=8, pq_m=4, nprobe=8, refine=60, train_rows=2000, tail_rows=150)
    store = fresh(tmp_path / "s", [video(f"v{i:03d}.mp4", 400, i) for i in range(40)], settings)  # 16,000 rows
    snapshot = store.snapshot()
    (segment,) = snapshot.segments
    path = (store.folder / f"{segment.name}.vectors.npy").resolve()
    assert snapshot.ann is not None and segment.rows == 16000
    assert np.isfinite(segment.vectors[::97].astype(np.float32)).all()  # reads every 97th row through the map ...
    assert mapped_kb(path) > 0
    segment.release()  # ... and gives those pages back
    assert mapped_kb(path) == 0
    hits = snapshot.search(queries(), 10)  # 600 candidates a query, read from the map
    assert mapped_kb(path) == 0 and all(len(row) == 10 for row in hits)
