"""Reliability and safety guarantees that cut across the library.

* error model: one root, families that are also the built-in exceptions users expect,
  and no library code raising bare built-in exceptions at users;
* safety: nothing in the package unpickles, runs remote code by default, or trusts
  file names from a manifest;
* concurrency: ``add`` and ``select`` from threads never produce a selection that
  references a missing demo;
* determinism: the same inputs and seed give the same selection across processes and
  between ``select`` and ``select_batch``.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

import promptkd
from promptkd import DemoPool, Selector, exceptions
from promptkd._optional import require
from promptkd.embeddings import HashingEmbedder
from promptkd.exceptions import (
    BudgetInfeasibleError,
    InvalidInputError,
    InvalidTypeError,
    MissingDependencyError,
    ModelLoadError,
    NotFittedError,
    PersistenceError,
    PoolFormatError,
    PromptKDError,
)
from promptkd.pool.persistence import MANIFEST

PACKAGE = Path(promptkd.__file__).resolve().parent
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def record_count(kind: str, n: int = 1) -> None:
    """Append to the reliability counts file when benchmarks/reliability_report.py asks for it."""
    path = os.environ.get("PROMPTKD_RELIABILITY_COUNTS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"kind": kind, "n": n}) + "\n")


@functools.cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


# ---------------------------------------------------------------------------- error model
def test_exception_families() -> None:
    families = {
        InvalidInputError: ValueError,
        InvalidTypeError: TypeError,
        NotFittedError: AttributeError,
        MissingDependencyError: ImportError,
        PersistenceError: OSError,
        PoolFormatError: PersistenceError,
        ModelLoadError: OSError,
        BudgetInfeasibleError: ValueError,
    }
    for cls, builtin in families.items():
        assert issubclass(cls, PromptKDError) and issubclass(cls, builtin), cls
    assert issubclass(InvalidTypeError, InvalidInputError)  # one "bad argument" family
    public = [
        obj for _, obj in inspect.getmembers(exceptions, inspect.isclass) if obj.__module__ == exceptions.__name__
    ]
    assert set(public) == {PromptKDError, *families}
    for cls in public:
        assert cls.__doc__ and cls is getattr(promptkd, cls.__name__)


def test_missing_dependency_names_the_extra() -> None:
    with pytest.raises(MissingDependencyError, match=r'pip install "promptkd\[ann\]"') as info:
        require("promptkd_no_such_module_xyz", "ann", purpose="the ANN candidate index")
    assert isinstance(info.value, ImportError)
    assert "the ANN candidate index" in str(info.value)


# built-in exceptions that library code may raise: internal invariants and abstract methods.
ALLOWED_BUILTIN_RAISES = {
    ("pool/persistence.py", "ValueError"),  # caught two lines below and re-raised as PoolFormatError
    ("pool/persistence.py", "AssertionError"),  # unreachable
    ("selection/base.py", "NotImplementedError"),  # abstract _choose
    ("kernels/functions.py", "AttributeError"),  # module __getattr__ must raise AttributeError for unknown names
}


def builtin_raises() -> list[tuple[str, int, str]]:
    found = []
    for path in SOURCES:
        for node in ast.walk(parsed(path)):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = exc.id if isinstance(exc, ast.Name) else None
            obj = getattr(builtins, name, None) if name else None
            if isinstance(obj, type) and issubclass(obj, BaseException):
                found.append((rel(path), node.lineno, name))
    return found


def test_library_raises_only_promptkd_errors() -> None:
    unexpected = [(f, line, name) for f, line, name in builtin_raises() if (f, name) not in ALLOWED_BUILTIN_RAISES]
    assert not unexpected, f"raise a promptkd.exceptions class instead: {unexpected}"


# ---------------------------------------------------------------------------- safety
def _call_name(func: ast.expr) -> str:
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if isinstance(func, ast.Name):
        parts.append(func.id)
    return ".".join(reversed(parts))


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.expr | None, value: object) -> bool:
    return isinstance(node, ast.Constant) and node.value is value


UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "shelve", "marshal", "joblib"}


def unsafe_loading_sites() -> list[str]:
    problems = []
    for path in SOURCES:
        for node in ast.walk(parsed(path)):
            where = f"{rel(path)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Import):
                problems += [f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in UNSAFE_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in UNSAFE_MODULES:
                problems.append(f"{where} imports from {node.module}")
            elif isinstance(node, ast.Call):
                name = _call_name(node.func)
                if name.endswith("torch.load") and not _is_const(_kw(node, "weights_only"), True):
                    problems.append(f"{where} torch.load without weights_only=True")
                if name in ("np.load", "numpy.load") and _is_const(_kw(node, "allow_pickle"), True):
                    problems.append(f"{where} np.load(allow_pickle=True)")
                if name.endswith(("read_pickle", "unsafe_load")) or name in ("eval", "exec"):
                    problems.append(f"{where} calls {name}")
                if name.endswith("yaml.load") and _kw(node, "Loader") is None:
                    problems.append(f"{where} yaml.load without a safe Loader")
                if _is_const(_kw(node, "trust_remote_code"), True):
                    problems.append(f"{where} passes trust_remote_code=True")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args
                positional = args.posonlyargs + args.args
                pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
                pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
                for arg, default in pairs:
                    if arg.arg == "trust_remote_code" and not _is_const(default, False):
                        problems.append(f"{where} {node.name}(trust_remote_code=...) does not default to False")
    return problems


def test_no_unsafe_loading_anywhere_in_the_package() -> None:
    problems = unsafe_loading_sites()
    assert not problems, problems
    record_count("source_files_scanned", len(SOURCES))


def test_the_scanner_catches_what_it_should(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        textwrap.dedent(
            """
            import pickle
            import numpy as np, torch
            def f(path, trust_remote_code=True):
                np.load(path, allow_pickle=True)
                torch.load(path)
                torch.load(path, weights_only=False)
                model(path, trust_remote_code=True)
                eval("1")
            """
        )
    )
    monkeypatch.setattr(sys.modules[__name__], "SOURCES", [bad])
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    assert len(unsafe_loading_sites()) == 7


def test_loaded_embeddings_refuse_pickled_object_arrays(tmp_path: Path) -> None:
    pool = DemoPool([{"input": "a", "output": "x"}, {"input": "b", "output": "y"}], embeddings=np.ones((2, 3)))
    d = pool.save(tmp_path / "p")
    m = json.loads((d / MANIFEST).read_text())
    f = d / m["files"]["embeddings"]["name"]
    # an object array needs pickle to load; write one and make the checksum match
    np.save(f, np.array([[{"x": 1}, None, 1], [2, 3, 4]], dtype=object), allow_pickle=True)
    import hashlib

    m["files"]["embeddings"]["sha256"] = hashlib.sha256(f.read_bytes()).hexdigest()
    (d / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(PoolFormatError, match="dtype"):
        DemoPool.load(d)


# ---------------------------------------------------------------------------- concurrency
def test_concurrent_add_and_select_never_reference_a_missing_demo() -> None:
    pool = DemoPool(
        [{"input": f"seed demo {i} about topic {i % 3}", "output": str(i % 3)} for i in range(20)],
        embedder=HashingEmbedder(dim=32),
    )
    pool.embed()
    errors: list[BaseException] = []
    checked = [0]
    stop = threading.Event()

    def adder(worker: int) -> None:
        try:
            for j in range(60):
                pool.add({"input": f"worker {worker} demo {j} topic {j % 3}", "output": str(j % 3)})
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    def selector_loop(seed: int) -> None:
        try:
            while not stop.is_set():
                sel = Selector(k=4, seed=seed).fit(pool)
                assert len(sel.demos_) == sel.embeddings_.shape[0] == sel.n_demos_
                for query in ("topic 1 demo", "worker 0 topic 2"):
                    s = sel.select(query)
                    now = pool.snapshot().demos  # the pool only grows, so indices stay valid
                    for i, demo in zip(s.indices, s.demos, strict=True):
                        assert i < len(now) and now[i].id == demo.id and sel.demos_[i] is demo
                    checked[0] += 1
                batch = sel.select_batch(["demo 3", "topic 0"])
                assert all(max(b.indices) < sel.n_demos_ for b in batch)
        except BaseException as err:
            errors.append(err)

    readers = [threading.Thread(target=selector_loop, args=(s,)) for s in range(2)]
    writers = [threading.Thread(target=adder, args=(w,)) for w in range(2)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors[0]
    assert len(pool) == 140 and pool.embeddings.shape == (140, 32)
    assert len(set(pool.ids)) == 140
    assert checked[0] > 0
    record_count("concurrent_selections_checked", checked[0])


class _PoolGrowingBetweenSnapshots(DemoPool):
    """A pool where another writer appends a demo right after the first snapshot is taken."""

    def snapshot(self):  # type: ignore[no-untyped-def]
        snap = super().snapshot()
        if not getattr(self, "_grew", False):
            self._grew = True
            self.add({"input": "appended by another thread", "output": "9"})
        return snap


def test_fit_sees_one_consistent_snapshot() -> None:
    pool = _PoolGrowingBetweenSnapshots(
        [{"input": f"demo {i}", "output": str(i % 2)} for i in range(6)], embedder=HashingEmbedder(dim=16)
    )
    pool.embed()
    pool._grew = False
    sel = Selector(k=2).fit(pool)
    assert len(sel.demos_) == sel.embeddings_.shape[0] == sel.n_demos_


def test_concurrent_saves_to_one_directory_leave_a_loadable_pool(tmp_path: Path) -> None:
    pools = [
        DemoPool([{"input": f"w{w} demo {i}", "output": "x", "metadata": {"w": w}} for i in range(200)],
                 embeddings=np.full((200, 8), float(w), dtype=np.float32))
        for w in range(3)
    ]  # fmt: skip
    errors: list[BaseException] = []

    def saver(w: int) -> None:
        try:
            for _ in range(8):
                pools[w].save(tmp_path / "shared")
        except BaseException as err:  # pragma: no cover
            errors.append(err)

    threads = [threading.Thread(target=saver, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    # read while the writers race: every read is one whole pool
    reads = 0
    while any(t.is_alive() for t in threads):
        if (tmp_path / "shared" / MANIFEST).exists():
            loaded = DemoPool.load(tmp_path / "shared")
            ws = {d.metadata["w"] for d in loaded}
            assert len(ws) == 1 and np.all(np.asarray(loaded.embeddings) == float(ws.pop()))
            reads += 1
    for t in threads:
        t.join()
    assert not errors, errors[0]
    final = DemoPool.load(tmp_path / "shared")
    assert len(final) == 200
    record_count("concurrent_saves", 24)


# ---------------------------------------------------------------------------- determinism
DETERMINISM_SCRIPT = textwrap.dedent(
    """
    import json
    from promptkd import DemoPool, Selector
    from promptkd.embeddings import HashingEmbedder
    demos = [{"input": f"demo {i} talks about {['sport', 'money', 'stars'][i % 3]} {i * 7 % 11}", "output": str(i % 3)}
             for i in range(60)]
    pool = DemoPool(demos, embedder=HashingEmbedder(dim=64))
    out = {}
    for name, sel in {"herding": Selector(k=5, seed=4), "herding-laplacian": Selector(k=5, kernel="laplacian")}.items():
        sel.fit(pool)
        out[name] = [list(sel.select(q).indices) for q in ("money talk", "stars and sport")]
        out[name + "-mmd2"] = [round(sel.select(q).mmd2, 12) for q in ("money talk", "stars and sport")]
    print(json.dumps(out, sort_keys=True))
    """
)


def test_same_inputs_and_seed_give_the_same_selection_across_processes(tmp_path: Path) -> None:
    script = tmp_path / "det.py"
    script.write_text(DETERMINISM_SCRIPT)
    outputs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        outputs.append(json.loads(res.stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1]
    record_count("determinism_runs", 2)


def test_select_and_select_batch_agree_for_every_selector(hashing_pool: DemoPool) -> None:
    from promptkd.selection import BaseSelector

    classes: list[type[BaseSelector]] = [Selector]
    try:
        from promptkd.selection import baselines

        classes += [
            obj
            for name, obj in vars(baselines).items()
            if isinstance(obj, type)
            and issubclass(obj, BaseSelector)
            and obj.__module__ == baselines.__name__
            and not name.startswith("_")
        ]
    except ImportError:  # pragma: no cover - baselines not present
        pass
    queries = ["the coach and the league", "bank profit and shares", "a protein in the cell"]
    for cls in classes:
        a = cls(k=4, seed=7).fit(hashing_pool)
        b = cls(k=4, seed=7).fit(hashing_pool)
        single = [a.select(q).indices for q in queries]
        assert single == [b.select(q).indices for q in queries], cls.__name__
        assert single == [s.indices for s in a.select_batch(queries)], cls.__name__
        record_count("determinism_selectors")
