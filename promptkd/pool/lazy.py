"""Demos read on access from a columnar table: :class:`LazyDemos`.

A pool opened with :meth:`DemoPool.open <promptkd.pool.DemoPool.open>` keeps its
demos as an Arrow table (memory-mapped from the saved file, so opening costs the
same for ten demos or ten million) and builds a :class:`~promptkd.pool.Demo` only
when one is asked for. Columns (``ids``, ``outputs``, ...) are read without
building any demo. Demos added later live in memory after the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np

from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.demo import Demo

__all__ = ["COLUMNS", "LazyDemos", "demo_field", "demo_field_codes", "records_table"]

#: The demo fields, one Arrow column each; ``metadata`` is stored as JSON text.
COLUMNS = ("id", "input", "output", "input_pair", "metadata")

_FIELDS = frozenset(("id", "input", "output", "metadata"))
_FIELDS_PAIR = _FIELDS | {"input_pair"}


def arrow_schema() -> Any:
    """The Arrow schema of a demos table (all columns strings; ``input_pair`` may be null)."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("id", pa.string(), nullable=False),
            pa.field("input", pa.string(), nullable=False),
            pa.field("output", pa.string(), nullable=False),
            pa.field("input_pair", pa.string()),
            pa.field("metadata", pa.string(), nullable=False),
        ]
    )


def records_table(records: Iterable[dict[str, Any]]) -> Any:
    """An Arrow table of demo records (as :meth:`Demo.to_record` makes them).

    Examples
    --------
    >>> t = records_table([Demo(input="a", output="x", id="d1").to_record()])
    >>> t.num_rows, t.column("metadata").to_pylist()
    (1, ['{}'])
    """
    import pyarrow as pa

    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for rec in records:
        cols["id"].append(rec["id"])
        cols["input"].append(rec["input"])
        cols["output"].append(rec["output"])
        cols["input_pair"].append(rec.get("input_pair"))
        cols["metadata"].append(json.dumps(rec.get("metadata") or {}, ensure_ascii=False, sort_keys=True))
    return pa.Table.from_pydict(cols, schema=arrow_schema())


def _fast_demo(fid: str, inp: str, out: str, pair: str | None, meta: dict[str, Any]) -> Demo:
    """A Demo from fields already checked (column types by the Arrow schema), without re-validation.

    Used when a whole table is iterated; the result equals ``Demo(**record)``.
    """
    demo = object.__new__(Demo)
    fields = {"input": inp, "output": out, "input_pair": pair, "id": fid, "metadata": meta}
    object.__setattr__(demo, "__dict__", fields)
    object.__setattr__(demo, "__pydantic_fields_set__", set(_FIELDS if pair is None else _FIELDS_PAIR))
    object.__setattr__(demo, "__pydantic_extra__", None)
    object.__setattr__(demo, "__pydantic_private__", None)
    return demo


def _metadata(text: str, where: str) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except ValueError as err:
        raise InvalidInputError(f"{where}: the metadata is not valid JSON ({err}); the pool file is damaged.") from err
    if not isinstance(meta, dict):
        raise InvalidInputError(f"{where}: the metadata is not a JSON object; the pool file is damaged.")
    return meta


def _metadata_batch(texts: list[str], start: int) -> list[dict[str, Any]]:
    """Parse a batch of metadata JSON texts in one call (one JSON array), row by row only to report an error."""
    try:
        metas = json.loads("[" + ",".join(texts) + "]")
    except ValueError:
        metas = None
    if metas is None or len(metas) != len(texts) or not all(type(m) is dict for m in metas):
        return [_metadata(t, f"demo {start + j}") for j, t in enumerate(texts)]
    return metas


def demo_field(demos: Sequence[Demo], name: str) -> list[Any]:
    """One field (``id``, ``input``, ``output``, ``input_pair``) of every demo; a lazy sequence reads its column.

    Examples
    --------
    >>> demo_field([Demo(input="a", output="x")], "output")
    ['x']
    """
    if isinstance(demos, LazyDemos):
        return demos.column(name)
    return [getattr(d, name) for d in demos]


def demo_field_codes(demos: Sequence[Demo], name: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Sorted distinct values of one text field and every demo's code; a lazy sequence encodes its column.

    Equals ``numpy.unique(demo_field(demos, name), return_inverse=True)`` (names
    as a tuple of str, codes as int64), without building a Python string per
    demo of a lazily opened pool.

    Examples
    --------
    >>> names, codes = demo_field_codes([Demo(input="a", output="y"), Demo(input="b", output="x")], "output")
    >>> names, codes.tolist()
    (('x', 'y'), [1, 0])
    """
    if isinstance(demos, LazyDemos):
        return demos.column_codes(name)
    values = [getattr(d, name) for d in demos]
    names = sorted(set(values))
    rank = {v: i for i, v in enumerate(names)}
    return tuple(names), np.array([rank[v] for v in values], dtype=np.int64)


def _int_values(array: Any) -> np.ndarray:
    """A null-free Arrow integer array as a numpy view of its data buffer.

    ``pyarrow.Array.to_numpy`` imports pandas on first use (half a second in a
    fresh process); reading the buffer directly does not.
    """
    dtype = np.dtype(f"int{array.type.bit_width}")
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


class LazyDemos(Sequence[Demo]):
    """A read-only sequence of demos backed by an Arrow table, plus demos added in memory.

    Indexing builds (and validates) one :class:`Demo`; iterating builds them one
    record batch at a time; :meth:`column` reads a field without building any.
    ``built`` counts the demos built so far.

    Examples
    --------
    >>> lazy = LazyDemos(records_table([{"id": "a", "input": "hi", "output": "x", "metadata": {}}]))
    >>> lazy.built, lazy.column("input"), lazy.built
    (0, ['hi'], 0)
    >>> lazy[0].input, lazy.built
    ('hi', 1)
    """

    def __init__(self, table: Any, tail: tuple[Demo, ...] = ()) -> None:
        self.table = table
        self.tail = tuple(tail)
        self.n_table = int(table.num_rows)
        self.built = 0
        self._positions: dict[str, int] | None = None

    def __len__(self) -> int:
        return self.n_table + len(self.tail)

    def record(self, index: int) -> dict[str, Any]:
        """The stored record at ``index`` (a table row) as a plain dict."""
        row = {c: self.table.column(c)[index].as_py() for c in COLUMNS}
        row["metadata"] = _metadata(row["metadata"], f"demo {index}")
        if row["input_pair"] is None:
            del row["input_pair"]
        return row

    @overload
    def __getitem__(self, index: int) -> Demo: ...

    @overload
    def __getitem__(self, index: slice) -> LazyDemos: ...

    def __getitem__(self, index: int | slice) -> Demo | LazyDemos:
        if isinstance(index, slice):
            return self.take(range(len(self))[index])
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise InvalidTypeError(f"demo index must be an int or a slice, got {type(index).__name__}.")
        n = len(self)
        i = int(index) + n if index < 0 else int(index)
        if not 0 <= i < n:
            raise InvalidInputError(f"demo index {index} is out of range for {n} demos.")
        if i >= self.n_table:
            return self.tail[i - self.n_table]
        self.built += 1
        return Demo(**self.record(i))

    def __iter__(self) -> Iterator[Demo]:
        done = 0
        for batch in self.table.to_batches():
            cols = [batch.column(c).to_pylist() for c in COLUMNS]
            metas = _metadata_batch(cols[4], done)
            self.built += batch.num_rows
            done += batch.num_rows
            yield from map(_fast_demo, cols[0], cols[1], cols[2], cols[3], metas)
        yield from self.tail

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        """Position of the demo equal to ``value`` (found by its id, without building the others)."""
        position = self.positions().get(getattr(value, "id", None)) if isinstance(value, Demo) else None
        end = len(self) if stop is None else stop
        if position is None or not start <= position < end or self[position] != value:
            raise InvalidInputError(f"{value!r:.60} is not in this pool.")
        return position

    def __contains__(self, value: object) -> bool:
        try:
            self.index(value)
        except InvalidInputError:
            return False
        return True

    def __add__(self, other: Sequence[Demo]) -> LazyDemos:
        out = LazyDemos(self.table, self.tail + tuple(other))
        return out

    def __repr__(self) -> str:
        return f"LazyDemos(n={len(self)}, in_memory={len(self.tail)}, built={self.built})"

    def column(self, name: str) -> list[Any]:
        """One field of every demo (``id``, ``input``, ``output``, ``input_pair``), without building demos."""
        if name not in COLUMNS or name == "metadata":
            raise InvalidInputError(
                f"column {name!r} is not a demo text field; use one of id, input, output, input_pair."
            )
        return self.table.column(name).to_pylist() + [getattr(d, name) for d in self.tail]

    def column_codes(self, name: str) -> tuple[tuple[str, ...], np.ndarray]:
        """Distinct values of a text field, sorted, and the code of every demo's value (no Python strings per row).

        The Arrow column is dictionary-encoded in place, so a million labels take
        milliseconds; the result equals ``numpy.unique(column, return_inverse=True)``.

        Examples
        --------
        >>> lazy = LazyDemos(records_table([{"id": i, "input": "t", "output": o, "metadata": {}}
        ...                                 for i, o in (("a", "pos"), ("b", "neg"), ("c", "pos"))]))
        >>> names, codes = lazy.column_codes("output")
        >>> names, codes.tolist(), lazy.built
        (('neg', 'pos'), [1, 0, 1], 0)
        """
        import pyarrow.compute as pc

        if name not in COLUMNS or name == "metadata":
            raise InvalidInputError(
                f"column {name!r} is not a demo text field; use one of id, input, output, input_pair."
            )
        col = self.table.column(name)
        if col.null_count:
            raise InvalidInputError(f"column {name!r} has missing values; codes need a value for every demo.")
        enc = pc.dictionary_encode(col).combine_chunks() if len(col) else None
        values = [] if enc is None else enc.dictionary.to_pylist()
        tail = [getattr(d, name) for d in self.tail]
        names = sorted(set(values) | set(tail))
        rank = {v: i for i, v in enumerate(names)}
        codes = np.empty(len(self), dtype=np.int64)
        if enc is not None:
            remap = np.array([rank[v] for v in values], dtype=np.int64)
            codes[: self.n_table] = remap[_int_values(enc.indices)]
        codes[self.n_table :] = [rank[v] for v in tail]
        return tuple(names), codes

    def metadata(self) -> list[dict[str, Any]]:
        """Every demo's metadata (parsed from the stored JSON), without building demos."""
        out: list[dict[str, Any]] = []
        for batch in self.table.to_batches():
            out.extend(_metadata_batch(batch.column("metadata").to_pylist(), len(out)))
        return out + [d.metadata for d in self.tail]

    def positions(self) -> dict[str, int]:
        """Map from demo id to position (built once, then cached)."""
        if self._positions is None or len(self._positions) != len(self):
            self._positions = {fid: i for i, fid in enumerate(self.column("id"))}
        return self._positions

    def take(self, indices: Iterable[int]) -> LazyDemos:
        """The demos at ``indices`` (in that order), still lazy."""
        import pyarrow as pa

        idx = np.asarray(list(indices), dtype=np.int64)
        in_table = idx[idx < self.n_table]
        if len(in_table) == len(idx):
            return LazyDemos(self.table.take(pa.array(idx)))
        rows = self.to_table()  # a subset that mixes stored and added demos: convert the added ones once
        return LazyDemos(rows.take(pa.array(idx)))

    def to_table(self) -> Any:
        """The whole sequence as one Arrow table (added demos appended as rows)."""
        import pyarrow as pa

        if not self.tail:
            return self.table
        return pa.concat_tables([self.table, records_table(d.to_record() for d in self.tail)])

    def records(self) -> Iterator[dict[str, Any]]:
        """Every demo as a plain record dict (as :meth:`Demo.to_record`), without building demos."""
        done = 0
        for batch in self.table.to_batches():
            rows = batch.to_pylist()
            for row, meta in zip(rows, _metadata_batch([r["metadata"] for r in rows], done), strict=True):
                row["metadata"] = meta
                if row["input_pair"] is None:
                    del row["input_pair"]
                yield row
            done += len(rows)
        for d in self.tail:
            yield d.to_record()
