"""Saving and loading pools: round trips, damage detection, and crashes during ``save``.

The crash tests run a child process that saves a large pool in a loop and kill it
with SIGKILL, either at a random moment or at a chosen ``fsync`` inside ``save``;
afterwards the directory must load completely, as one whole saved version.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from promptkd import DemoPool
from promptkd.exceptions import PersistenceError, PoolFormatError
from promptkd.pool.persistence import MANIFEST


def record_count(kind: str, n: int = 1) -> None:
    """Append to the reliability counts file when benchmarks/reliability_report.py asks for it."""
    path = os.environ.get("PROMPTKD_RELIABILITY_COUNTS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"kind": kind, "n": n}) + "\n")


def manifest(path: Path) -> dict:
    return json.loads((path / MANIFEST).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- round trips
def test_round_trip_with_embeddings(tmp_path: Path, hashing_pool: DemoPool) -> None:
    hashing_pool.embed()
    hashing_pool.add({"input": "line\u2028separator and é ü 中文", "output": "sports", "metadata": {"k": [1, None]}})
    out = hashing_pool.save(tmp_path / "p")
    loaded = DemoPool.load(out)
    assert [d.model_dump() for d in loaded] == [d.model_dump() for d in hashing_pool]
    np.testing.assert_array_equal(loaded.embeddings, hashing_pool.embeddings)
    assert loaded.embeddings.dtype == np.float32
    assert loaded.embedder_id == "hashing-v1:dim=128"
    # the embedder is recreated from its id, so new texts embed the same way
    np.testing.assert_allclose(loaded.encode_texts(["goal"]), hashing_pool.encode_texts(["goal"]))
    m = manifest(out)
    assert m["count"] == 31 and m["embedder"]["dim"] == 128 and m["schema_version"] == 1


def test_round_trip_without_embeddings(tmp_path: Path, hashing_pool: DemoPool) -> None:
    loaded = DemoPool.load(hashing_pool.save(tmp_path / "p"))
    assert not loaded.has_embeddings
    assert loaded.ids == hashing_pool.ids
    assert "embeddings" not in manifest(tmp_path / "p")["files"]
    assert loaded.embeddings.shape == (30, 128)  # embeds lazily with the restored hashing embedder


def test_round_trip_float16_and_mmap(tmp_path: Path) -> None:
    E = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float16)
    pool = DemoPool([{"input": f"t{i}", "output": "x"} for i in range(50)], embeddings=E)
    pool.save(tmp_path / "p")
    loaded = DemoPool.load(tmp_path / "p")
    assert loaded.embeddings.dtype == np.float16
    np.testing.assert_array_equal(loaded.embeddings, E)
    mm = DemoPool.load(tmp_path / "p", mmap=True)
    assert isinstance(mm.embeddings, np.memmap)
    assert not mm.embeddings.flags.writeable
    np.testing.assert_array_equal(np.asarray(mm.embeddings), E)
    assert loaded.embedder_id == "precomputed"


def test_mmap_pool_can_still_grow(tmp_path: Path, hashing_pool: DemoPool) -> None:
    hashing_pool.embed()
    hashing_pool.save(tmp_path / "p")
    mm = DemoPool.load(tmp_path / "p", mmap=True)
    mm.add({"input": "fresh text", "output": "finance"})
    assert mm.embeddings.shape == (31, 128)


def test_resave_replaces_and_cleans_old_files(tmp_path: Path, hashing_pool: DemoPool) -> None:
    hashing_pool.save(tmp_path / "p")
    hashing_pool.embed()
    hashing_pool.add({"input": "x y z", "output": "science"})
    hashing_pool.save(tmp_path / "p")
    names = sorted(p.name for p in (tmp_path / "p").iterdir() if p.name != ".lock")
    m = manifest(tmp_path / "p")
    expected = [MANIFEST, m["files"]["demos"]["name"], m["files"]["embeddings"]["name"], m["files"]["norms"]["name"]]
    assert names == sorted(expected)
    assert len(DemoPool.load(tmp_path / "p")) == 31


def test_save_refuses_foreign_directory_and_file(tmp_path: Path, hashing_pool: DemoPool) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "notes.txt").write_text("mine")
    with pytest.raises(PersistenceError, match="not empty"):
        hashing_pool.save(tmp_path / "d")
    assert (tmp_path / "d" / "notes.txt").read_text() == "mine"
    (tmp_path / "f").write_text("x")
    with pytest.raises(PersistenceError, match="not a directory"):
        hashing_pool.save(tmp_path / "f")


def test_save_after_a_crashed_first_save(tmp_path: Path, hashing_pool: DemoPool) -> None:
    # a first save killed before its commit leaves data files but no manifest
    d = tmp_path / "p"
    d.mkdir()
    (d / "demos-deadbeef0000.jsonl").write_text('{"input": "half')
    (d / ".manifest-abc.tmp").write_text("{")
    with pytest.raises(PoolFormatError, match="missing"):
        DemoPool.load(d)
    hashing_pool.save(d)
    assert len(DemoPool.load(d)) == 30
    assert not (d / "demos-deadbeef0000.jsonl").exists()


# ---------------------------------------------------------------------------- damage detection
def _saved(tmp_path: Path, pool: DemoPool) -> tuple[Path, dict]:
    pool.embed()
    d = pool.save(tmp_path / "p")
    return d, manifest(d)


@pytest.mark.parametrize("which", ["demos", "embeddings"])
def test_truncated_file_is_detected(tmp_path: Path, hashing_pool: DemoPool, which: str) -> None:
    d, m = _saved(tmp_path, hashing_pool)
    f = d / m["files"][which]["name"]
    f.write_bytes(f.read_bytes()[:-7])
    with pytest.raises(PoolFormatError, match=rf"{f.name}.*checksum"):
        DemoPool.load(d)
    # without checksums the truncation is still caught by the format checks
    with pytest.raises(PoolFormatError):
        DemoPool.load(d, verify=False)
    record_count("damaged_files", 2)


@pytest.mark.parametrize("which", ["demos", "embeddings"])
def test_bit_flip_is_detected(tmp_path: Path, hashing_pool: DemoPool, which: str) -> None:
    d, m = _saved(tmp_path, hashing_pool)
    f = d / m["files"][which]["name"]
    data = bytearray(f.read_bytes())
    rng = np.random.default_rng(0)
    for _ in range(5):
        pos = int(rng.integers(len(data)))
        bit = 1 << int(rng.integers(8))
        data[pos] ^= bit
        f.write_bytes(bytes(data))
        with pytest.raises(PoolFormatError, match="checksum"):
            DemoPool.load(d)
        data[pos] ^= bit  # restore for the next flip
        record_count("damaged_files")
    f.write_bytes(bytes(data))
    assert len(DemoPool.load(d)) == 30


def test_missing_file_and_newer_schema(tmp_path: Path, hashing_pool: DemoPool) -> None:
    d, m = _saved(tmp_path, hashing_pool)
    m2 = dict(m, schema_version=99)
    (d / MANIFEST).write_text(json.dumps(m2))
    with pytest.raises(PoolFormatError, match="newer"):
        DemoPool.load(d)
    (d / MANIFEST).write_text(json.dumps(m))
    (d / m["files"]["embeddings"]["name"]).unlink()
    with pytest.raises(PoolFormatError, match="missing"):
        DemoPool.load(d)
    with pytest.raises(PoolFormatError, match="not a directory"):
        DemoPool.load(tmp_path / "nowhere")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / MANIFEST).write_text('{"format": "something-else"}')
    with pytest.raises(PoolFormatError, match="not a promptkd pool manifest"):
        DemoPool.load(tmp_path / "foreign")


@pytest.mark.parametrize(
    "name",
    ["../outside.jsonl", "/etc/passwd", "sub/dir.jsonl", "..", "", 5, None, "a\\b", "x\x00y"],
)
def test_manifest_paths_cannot_escape_the_pool_directory(tmp_path: Path, hashing_pool: DemoPool, name: object) -> None:
    d, m = _saved(tmp_path, hashing_pool)
    (tmp_path / "outside.jsonl").write_bytes((d / m["files"]["demos"]["name"]).read_bytes())
    m["files"]["demos"]["name"] = name
    (d / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(PoolFormatError, match="demos file"):
        DemoPool.load(d)
    record_count("path_escapes")


def test_symlink_out_of_the_pool_directory_is_rejected(tmp_path: Path, hashing_pool: DemoPool) -> None:
    d, m = _saved(tmp_path, hashing_pool)
    real = d / m["files"]["demos"]["name"]
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_bytes(real.read_bytes())
    real.unlink()
    real.symlink_to(outside)
    with pytest.raises(PoolFormatError, match="outside the pool directory"):
        DemoPool.load(d)
    record_count("path_escapes")


def test_nan_embeddings_in_a_saved_file_are_rejected(tmp_path: Path, hashing_pool: DemoPool) -> None:
    d, m = _saved(tmp_path, hashing_pool)
    f = d / m["files"]["embeddings"]["name"]
    E = np.load(f)
    E[3, 2] = np.nan
    np.save(f, E)
    with pytest.raises(PoolFormatError, match="NaN"):
        DemoPool.load(d, verify=False)


# ---------------------------------------------------------------------------- crashes during save
# One "zygote" subprocess imports promptkd and builds the pools once; for each trial it
# forks a saver that writes the pools to the same directory over and over until the
# test kills it with SIGKILL (or it kills itself at a chosen fsync inside save).
ZYGOTE = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from promptkd import DemoPool

    path = sys.argv[1]

    def make(version, n, dim):
        demos = [{"input": f"v{version} demo {j}", "output": "x", "metadata": {"v": version, "j": j}} for j in range(n)]
        emb = np.zeros((n, dim), dtype=np.float32)
        emb[:, 0] = version
        emb[:, 1] = np.arange(n)
        return DemoPool(demos, embeddings=emb)

    sizes = {"small": (300, 8), "big": (4000, 384)}
    pools = {name: [make(1, *size), make(2, *size)] for name, size in sizes.items()}
    print("up", flush=True)
    for line in sys.stdin:
        size, crash_at = line.split()
        crash_at = int(crash_at)
        pid = os.fork()
        if pid == 0:
            if crash_at > 0:  # die inside save at the crash_at-th fsync
                real_fsync, calls = os.fsync, [0]
                def fsync(fd):
                    calls[0] += 1
                    if calls[0] == crash_at:
                        os.kill(os.getpid(), signal.SIGKILL)
                    real_fsync(fd)
                os.fsync = fsync
            print(f"ready {os.getpid()}", flush=True)
            i = 0
            while True:
                pools[size][i % 2].save(path)
                i += 1
        _, status = os.waitpid(pid, 0)
        print(f"exit {os.waitstatus_to_exitcode(status)}", flush=True)
    """
)


def check_whole_version(path: Path, versions: set[int]) -> int:
    """Load the pool and check it is one complete saved version; return that version."""
    pool = DemoPool.load(path)
    vs = {d.metadata["v"] for d in pool}
    assert len(vs) == 1, f"mixed versions {vs}"
    (v,) = vs
    assert v in versions
    E = np.asarray(pool.embeddings)
    assert E.shape[0] == len(pool)
    assert np.all(E[:, 0] == v), "embeddings from another version than the demos"
    np.testing.assert_array_equal(E[:, 1], [d.metadata["j"] for d in pool])
    return v


class Zygote:
    def __init__(self, script: Path, path: Path) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.readline() == "up"

    def readline(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def trial(self, size: str, crash_at: int, kill_after: float | None) -> int:
        """Run one saver; kill it after ``kill_after`` s (or let it crash itself); return its exit code."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{size} {crash_at}\n")
        self.proc.stdin.flush()
        word, pid = self.readline().split()
        assert word == "ready"
        if kill_after is not None:
            time.sleep(kill_after)
            os.kill(int(pid), signal.SIGKILL)
        word, code = self.readline().split()
        assert word == "exit"
        return int(code)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.slow  # starts and kills several writer processes (about 5 s)
def test_sigkill_during_save_never_leaves_a_mix(tmp_path: Path) -> None:
    path = tmp_path / "pool"
    base = DemoPool(
        [{"input": f"base {j}", "output": "x", "metadata": {"v": 0, "j": j}} for j in range(10)],
        embeddings=np.column_stack([np.zeros(10), np.arange(10), np.ones((10, 6))]).astype(np.float32),
    )
    base.save(path)
    script = tmp_path / "zygote.py"
    script.write_text(ZYGOTE)
    zygote = Zygote(script, path)
    seen: list[int] = []
    try:
        # deterministic crash points: each fsync inside one save (demos, embeddings, norms, manifest, directory x2)
        # and inside the second save (so the "old" pool is then a pool written by the saver itself)
        for crash_at in range(1, 13):
            assert zygote.trial("small", crash_at, kill_after=None) == -signal.SIGKILL
            seen.append(check_whole_version(path, {0, 1, 2}))
            record_count("crash_points")
        # random moments while a large pool (4000 x 384 float32) is saved over and over
        rng = np.random.default_rng(2026)
        for _ in range(12):
            assert zygote.trial("big", 0, kill_after=float(rng.uniform(0.0, 0.3))) == -signal.SIGKILL
            seen.append(check_whole_version(path, {0, 1, 2}))
            record_count("crash_points")
    finally:
        zygote.close()
    # the directory is still a valid target for the next save, which also clears leftovers
    base.save(path)
    assert check_whole_version(path, {0}) == 0
    left = {p.name for p in path.iterdir()} - {MANIFEST, ".lock"}
    assert len(left) == 3, left  # demos, embeddings and their row norms
    # the crashes hit both before and after a commit point
    assert 0 in seen and (1 in seen or 2 in seen)


def test_hostile_embedder_id_is_not_recreated(tmp_path: Path, hashing_pool: DemoPool) -> None:
    from promptkd.exceptions import InvalidInputError

    d = hashing_pool.save(tmp_path / "p")
    m = manifest(d)
    m["embedder"]["id"] = "hashing-v1:dim=99999999999"
    (d / MANIFEST).write_text(json.dumps(m))
    loaded = DemoPool.load(d)
    with pytest.raises(InvalidInputError, match="cannot recreate"):
        loaded.encode_texts(["q"])


def test_a_saved_pool_follows_the_umask(tmp_path: Path) -> None:
    """manifest.json is readable by others when the umask allows it (mkstemp alone would make it 0600)."""
    old = os.umask(0o022)
    try:
        pool = DemoPool([{"input": "a", "output": "x"}], embeddings=np.ones((1, 2), dtype=np.float32))
        root = pool.save(tmp_path / "pool")
    finally:
        os.umask(old)
    assert (root / "manifest.json").stat().st_mode & 0o777 == 0o644
