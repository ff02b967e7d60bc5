"""Building a pool from records and files: the ``from_records`` / ``from_jsonl`` / ``from_csv`` constructors."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from promptkd.embeddings.base import Embedder
from promptkd.exceptions import InvalidInputError, InvalidTypeError
from promptkd.pool.checks import _as_demo
from promptkd.pool.records import DEDUPE, _dedupe_records, read_csv_records, read_jsonl_lines

__all__ = ["RecordConstructors"]

Self = TypeVar("Self", bound="RecordConstructors")


class RecordConstructors:
    """Class methods that build a pool from dict-like records or record files (mixed into DemoPool)."""

    @classmethod
    def from_records(
        cls: type[Self],
        records: Iterable[Mapping[str, Any]],
        *,
        input_key: str = "input",
        output_key: str = "output",
        id_key: str | None = None,
        metadata_keys: Sequence[str] | None = None,
        embedder: Embedder | None = None,
        dedupe: str = "none",
        locations: Sequence[str] | None = None,
        pair_key: str | None = None,
        cache: bool | str | os.PathLike[str] = True,
    ) -> Self:
        """Build a pool from dict-like records, mapping their keys to demo fields.

        ``metadata_keys=None`` keeps every other key as metadata. ``pair_key``
        names the second text of sentence-pair records (e.g. ``"text_pair"``),
        which becomes :attr:`Demo.input_pair`. Real datasets
        repeat rows: with ``dedupe="none"`` (default) every copy is kept and a
        repeated content id gets a suffix (``<id>.2``, ``<id>.3``, ...);
        ``dedupe="exact"`` keeps only the first copy of each (input, output).
        Ids taken from ``id_key`` must be unique. ``locations`` (one string per
        record, e.g. ``"train.jsonl:12"``) names the records in error messages.

        Examples
        --------
        >>> from promptkd import DemoPool
        >>> from promptkd.embeddings import HashingEmbedder
        >>> rows = [{"text": "fine", "label": 1, "src": "a"}, {"text": "bad", "label": 0, "src": "b"}]
        >>> pool = DemoPool.from_records(rows, input_key="text", output_key="label", embedder=HashingEmbedder())
        >>> pool[0].output, pool[0].metadata
        ('1', {'src': 'a'})
        """
        if records is None or isinstance(records, (str, bytes, Mapping)):
            raise InvalidTypeError("records must be an iterable of mappings (e.g. a list of dicts).")
        if dedupe not in DEDUPE:
            raise InvalidInputError(f"dedupe={dedupe!r} is not supported; use one of {', '.join(DEDUPE)}.")
        demos = []
        explicit = []
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                raise InvalidTypeError(f"records[{i}] must be a mapping, got {type(rec).__name__}.")
            for key in (input_key, output_key):
                if key not in rec:
                    raise InvalidInputError(
                        f"records[{i}] has no key {key!r} (keys: {sorted(rec)[:8]}); pass input_key=/output_key= to match your data."
                    )
            if pair_key is not None and pair_key not in rec:
                raise InvalidInputError(
                    f"records[{i}] has no pair key {pair_key!r} (keys: {sorted(rec)[:8]}); every record of a "
                    "pair task needs its second text."
                )
            used = {input_key, output_key} | ({id_key} if id_key else set()) | ({pair_key} if pair_key else set())
            if metadata_keys is None:
                meta = {k: v for k, v in rec.items() if k not in used}
            else:
                meta = {k: rec[k] for k in metadata_keys if k in rec}
            demos.append(
                _as_demo(
                    {
                        "input": rec[input_key],
                        "input_pair": rec[pair_key] if pair_key else None,
                        "output": rec[output_key],
                        "id": rec.get(id_key) if id_key else None,
                        "metadata": meta,
                    },
                    i,
                )
            )
            explicit.append(bool(id_key) and rec.get(id_key) not in (None, ""))
        where = (lambda i: locations[i]) if locations is not None else (lambda i: f"records[{i}]")
        demos = _dedupe_records(demos, explicit, dedupe, where)
        return cls(demos, embedder=embedder, cache=cache)  # type: ignore[call-arg]

    @classmethod
    def from_jsonl(
        cls: type[Self],
        path: str | os.PathLike[str],
        *,
        input_key: str = "input",
        output_key: str = "output",
        id_key: str | None = None,
        metadata_keys: Sequence[str] | None = None,
        embedder: Embedder | None = None,
        dedupe: str = "none",
        pair_key: str | None = None,
        cache: bool | str | os.PathLike[str] = True,
    ) -> Self:
        """Read a JSON-lines file of records (see :meth:`from_records`); errors name the file's line.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from promptkd import DemoPool
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.jsonl"
        >>> _ = p.write_text('{"input": "hi", "output": "greeting"}\\n')
        >>> len(DemoPool.from_jsonl(p))
        1
        """
        records, lines = read_jsonl_lines(path)
        return cls.from_records(
            records,
            input_key=input_key,
            output_key=output_key,
            id_key=id_key,
            metadata_keys=metadata_keys,
            embedder=embedder,
            dedupe=dedupe,
            locations=[f"{path}:{n}" for n in lines],
            pair_key=pair_key,
            cache=cache,
        )

    @classmethod
    def from_csv(
        cls: type[Self],
        path: str | os.PathLike[str],
        *,
        input_key: str = "input",
        output_key: str = "output",
        id_key: str | None = None,
        pair_key: str | None = None,
        metadata_keys: Sequence[str] | None = None,
        embedder: Embedder | None = None,
        dedupe: str = "none",
        delimiter: str = ",",
        cache: bool | str | os.PathLike[str] = True,
    ) -> Self:
        """Read a CSV (or, with ``delimiter="\\t"``, TSV) file with a header line (see :meth:`from_records`).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from promptkd import DemoPool
        >>> from promptkd.embeddings import HashingEmbedder
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
        >>> _ = p.write_text("text,label\\ngood,pos\\nbad,neg\\n")
        >>> DemoPool.from_csv(p, input_key="text", output_key="label", embedder=HashingEmbedder()).outputs
        ['pos', 'neg']
        """
        records = read_csv_records(path, delimiter)
        return cls.from_records(
            records,
            input_key=input_key,
            output_key=output_key,
            id_key=id_key,
            metadata_keys=metadata_keys,
            embedder=embedder,
            dedupe=dedupe,
            locations=[f"{path} row {i + 1}" for i in range(len(records))],
            pair_key=pair_key,
            cache=cache,
        )
