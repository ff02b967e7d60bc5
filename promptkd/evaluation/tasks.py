"""Classification tasks for ICL evaluation: loading, label words and default templates.

A task folder holds ``train.jsonl`` and ``test.jsonl`` with one JSON object per
line: ``text``, an optional ``text_pair`` and ``label``. Pair tasks (entailment)
are turned into a single demo input with :attr:`Task.input_format`, so selectors,
embedders and the prompt template all see the same text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from promptkd._validation import check_int
from promptkd.exceptions import InvalidInputError, InvalidTypeError, PoolFormatError
from promptkd.pool.demo import Demo
from promptkd.pool.pool import DemoPool
from promptkd.rendering.template import PromptTemplate, as_template

__all__ = ["TASK_PRESETS", "Task", "TaskPreset", "default_data_root", "load_task"]


@dataclass(frozen=True)
class TaskPreset:
    """Default prompt format of a task: the demo template and how text pairs are joined."""

    template: PromptTemplate
    input_format: str = "{text}"


def _tmpl(example: str, prefix: str = "") -> PromptTemplate:
    return PromptTemplate.from_string(example, prefix=prefix)


_NLI_TF = TaskPreset(_tmpl("{input}\nanswer: {output}"), "{text}\nquestion: {text_pair} True or False?")
_SENTIMENT = TaskPreset(_tmpl("Review: {input}\nSentiment: {output}"))

#: Default templates per task (Zhao et al. 2021 formats; see the data MANIFEST).
TASK_PRESETS: dict[str, TaskPreset] = {
    "sst2": _SENTIMENT,
    "mr": _SENTIMENT,
    "subj": TaskPreset(_tmpl("Input: {input}\nType: {output}")),
    "trec": TaskPreset(
        _tmpl(
            "Question: {input}\nAnswer Type: {output}",
            "Classify the questions based on whether their answer type is a Number, Location, Person, "
            "Description, Entity, or Abbreviation.",
        )
    ),
    "agnews": TaskPreset(
        _tmpl(
            "Article: {input}\nAnswer: {output}",
            "Classify the news articles into the categories of World, Sports, Business, and Technology.",
        )
    ),
    "dbpedia": TaskPreset(
        _tmpl(
            "Article: {input}\nAnswer: {output}",
            "Classify the documents based on whether they are about a Company, School, Artist, Athlete, "
            "Politician, Transportation, Building, Nature, Village, Animal, Plant, Album, Film, or Book.",
        )
    ),
    "rte": _NLI_TF,
    "cb": TaskPreset(_tmpl("{input}\nanswer: {output}"), "{text}\nquestion: {text_pair}. true, false, or neither?"),
}

#: Fallbacks for tasks without a preset.
GENERIC_SINGLE = TaskPreset(_tmpl("Input: {input}\nLabel: {output}"))
GENERIC_PAIR = TaskPreset(_tmpl("{input}\nanswer: {output}"), "{text}\nquestion: {text_pair}")


def default_data_root() -> Path:
    """Folder holding task folders: ``$PROMPTKD_DATA_ROOT`` or ``<repo>/../shared/data/icl``.

    Examples
    --------
    >>> default_data_root().name
    'icl'
    """
    env = os.environ.get("PROMPTKD_DATA_ROOT")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "icl"


@dataclass(frozen=True)
class Task:
    """One split of a classification task.

    Attributes
    ----------
    name, split
        Task name (folder name) and split (``"train"``, ``"test"``, ...).
    texts, text_pairs, labels
        Aligned columns; ``text_pairs`` is None for single-text tasks.
    label_words
        Every label of the task, sorted (the choices the classifier scores).
    template
        Prompt template for demos and query.
    input_format
        How ``text`` (and ``text_pair``) become one demo input, e.g.
        ``"{text}\\nquestion: {text_pair} True or False?"``.

    Examples
    --------
    >>> t = Task("toy", "train", ("good", "bad"), None, ("pos", "neg"), ("neg", "pos"),
    ...          TASK_PRESETS["sst2"].template)
    >>> t.demos()[0].input, t.demos()[0].output, len(t)
    ('good', 'pos', 2)
    """

    name: str
    split: str
    texts: tuple[str, ...]
    text_pairs: tuple[str, ...] | None
    labels: tuple[str, ...]
    label_words: tuple[str, ...]
    template: PromptTemplate
    input_format: str = "{text}"

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def is_pair(self) -> bool:
        """True when the task has a second text per item (entailment-style)."""
        return self.text_pairs is not None

    @property
    def inputs(self) -> list[str]:
        """The demo/query input of every item (text and text pair joined by :attr:`input_format`)."""
        if self.text_pairs is None:
            return [self.input_format.format(text=t) for t in self.texts]
        return [self.input_format.format(text=t, text_pair=p) for t, p in zip(self.texts, self.text_pairs, strict=True)]

    def demos(self) -> list[Demo]:
        """Every item as a :class:`~promptkd.pool.Demo` (id ``<name>-<split>-<row>``)."""
        return [
            Demo(input=x, output=y, id=f"{self.name}-{self.split}-{i}", metadata={"row": i})
            for i, (x, y) in enumerate(zip(self.inputs, self.labels, strict=True))
        ]

    def pool(self, embedder: Any = None) -> DemoPool:
        """A :class:`~promptkd.pool.DemoPool` of this split's items."""
        return DemoPool(self.demos(), embedder=embedder)

    def subset(self, indices: Sequence[int]) -> Task:
        """The items at ``indices`` (label words and template are kept)."""
        idx = [int(i) for i in indices]
        return replace(
            self,
            texts=tuple(self.texts[i] for i in idx),
            text_pairs=None if self.text_pairs is None else tuple(self.text_pairs[i] for i in idx),
            labels=tuple(self.labels[i] for i in idx),
        )

    def sample_indices(self, n: int | None, seed: int = 0) -> list[int]:
        """A seeded sample of ``n`` row indices (all rows if ``n`` is None or too large), sorted.

        Samples are nested: with one seed, the sample of ``n`` holds the sample of
        any smaller ``n``, so a resumable run can be extended to more items.

        Examples
        --------
        >>> t = Task("toy", "test", ("a", "b", "c"), None, ("x", "y", "x"), ("x", "y"), PromptTemplate())
        >>> t.sample_indices(2, seed=1) == t.sample_indices(2, seed=1)
        True
        >>> set(t.sample_indices(1, seed=1)) <= set(t.sample_indices(2, seed=1))
        True
        """
        if n is None or n >= len(self):
            return list(range(len(self)))
        check_int(n, "n", minimum=1)
        rng = np.random.default_rng(seed)
        return sorted(int(i) for i in rng.permutation(len(self))[:n])


def _read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise PoolFormatError(
                    f"{path}:{lineno} is not valid JSON ({err.msg}); fix or remove that line."
                ) from err
            if not isinstance(obj, dict) or "text" not in obj or "label" not in obj:
                raise PoolFormatError(f"{path}:{lineno} needs 'text' and 'label' keys, got {obj!r:.100}.")
            rows.append(obj)
    if not rows:
        raise PoolFormatError(f"{path} holds no rows; a task split needs at least one labelled line.")
    return rows


def _label_str(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _from_hf(dataset: Any, split: str) -> tuple[str, list[dict[str, Any]], list[str] | None]:
    """Rows from a Hugging Face ``Dataset`` / ``DatasetDict`` (imported lazily by the caller's object)."""
    if hasattr(dataset, "keys") and not hasattr(dataset, "column_names"):
        if split not in dataset:
            raise InvalidInputError(f"the dataset has no split {split!r}; available: {sorted(dataset.keys())}.")
        dataset = dataset[split]
    if not hasattr(dataset, "column_names"):
        raise InvalidTypeError(f"expected a datasets.Dataset or DatasetDict, got {type(dataset).__name__}.")
    cols = list(dataset.column_names)
    text_col = next((c for c in ("text", "sentence", "premise", "sentence1", "question") if c in cols), None)
    pair_col = next((c for c in ("text_pair", "hypothesis", "sentence2") if c in cols), None)
    label_col = next((c for c in ("label", "labels", "coarse_label") if c in cols), None)
    if text_col is None or label_col is None:
        raise InvalidInputError(
            f"cannot find text and label columns among {cols}; rename them to 'text' (and 'text_pair') and 'label'."
        )
    names = None
    feature = getattr(dataset, "features", {}).get(label_col) if hasattr(dataset, "features") else None
    if feature is not None and hasattr(feature, "names"):
        names = list(feature.names)
    rows = []
    for rec in dataset:
        lab = rec[label_col]
        if names is not None and isinstance(lab, int):
            if lab < 0:
                continue  # unlabelled rows (e.g. GLUE test) are skipped
            lab = names[lab]
        row = {"text": rec[text_col], "label": lab}
        if pair_col is not None:
            row["text_pair"] = rec[pair_col]
        rows.append(row)
    name = getattr(getattr(dataset, "info", None), "dataset_name", None) or "dataset"
    return str(name), rows, names


def load_task(
    name_or_path: Any,
    split: str = "test",
    *,
    data_root: str | os.PathLike[str] | None = None,
    template: PromptTemplate | str | None = None,
    input_format: str | None = None,
    label_words: Sequence[str] | None = None,
    max_chars: int | None = None,
) -> Task:
    """Load one split of a task.

    Parameters
    ----------
    name_or_path
        A task name under ``data_root`` (e.g. ``"sst2"``), a folder holding
        ``<split>.jsonl``, or a Hugging Face ``datasets`` object.
    split
        ``"train"`` or ``"test"`` (any ``<split>.jsonl`` in the folder).
    data_root
        Where task names are looked up; default :func:`default_data_root`.
    template, input_format
        Override the task's default template (:data:`TASK_PRESETS`) and pair format.
    label_words
        The label set; default: every label seen in the train and this split.
    max_chars
        Truncate each text (and text pair) to this many characters.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "toy"; d.mkdir()
    >>> rows = [{"text": "nice", "label": "positive"}, {"text": "dull", "label": "negative"}]
    >>> _ = (d / "test.jsonl").write_text("".join(json.dumps(r) + "\\n" for r in rows))
    >>> t = load_task(d, "test", template="Review: {input}\\nSentiment: {output}")
    >>> t.inputs, t.labels, t.label_words
    (['nice', 'dull'], ('positive', 'negative'), ('negative', 'positive'))
    """
    names: list[str] | None = None
    if hasattr(name_or_path, "column_names") or (
        hasattr(name_or_path, "keys") and type(name_or_path).__module__.startswith("datasets")
    ):
        name, rows, names = _from_hf(name_or_path, split)
        all_labels = {_label_str(r["label"]) for r in rows}
    else:
        if not isinstance(name_or_path, (str, os.PathLike)):
            raise InvalidTypeError(
                f"name_or_path must be a task name, a folder path or a datasets object, got {type(name_or_path).__name__}."
            )
        folder = Path(name_or_path)
        if not folder.is_dir():
            root = Path(data_root) if data_root is not None else default_data_root()
            folder = root / str(name_or_path)
        path = folder / f"{split}.jsonl"
        if not path.is_file():
            raise InvalidInputError(
                f"no {split}.jsonl for task {str(name_or_path)!r} (looked in {folder}); pass a folder holding "
                f"{split}.jsonl or set data_root= / PROMPTKD_DATA_ROOT."
            )
        name = folder.name
        rows = _read_rows(path)
        all_labels = {_label_str(r["label"]) for r in rows}
        other = folder / "train.jsonl"
        if split != "train" and other.is_file() and label_words is None:
            all_labels |= {_label_str(r["label"]) for r in _read_rows(other)}
    has_pair = any("text_pair" in r and r["text_pair"] is not None for r in rows)
    preset = TASK_PRESETS.get(name.lower(), GENERIC_PAIR if has_pair else GENERIC_SINGLE)

    def cut(s: Any) -> str:
        s = " ".join(str(s).split())
        return s if max_chars is None or len(s) <= max_chars else s[:max_chars].rstrip() + " ..."

    texts = tuple(cut(r["text"]) for r in rows)
    pairs = tuple(cut(r.get("text_pair") or "") for r in rows) if has_pair else None
    labels = tuple(_label_str(r["label"]) for r in rows)
    if label_words is not None:
        words = tuple(str(w) for w in label_words)
        unknown = sorted(set(labels) - set(words))
        if unknown:
            raise InvalidInputError(f"labels {unknown} of {name!r} are not in label_words={list(words)}.")
    elif names is not None:
        words = tuple(sorted(names))
    else:
        words = tuple(sorted(all_labels))
    if len(words) < 2:
        raise InvalidInputError(f"task {name!r} has fewer than two labels ({list(words)}); check the label column.")
    return Task(
        name=name,
        split=split,
        texts=texts,
        text_pairs=pairs,
        labels=labels,
        label_words=words,
        template=as_template(template) if template is not None else preset.template,
        input_format=input_format or preset.input_format,
    )


def task_names(data_root: str | os.PathLike[str] | None = None) -> list[str]:
    """Task folders (with a ``test.jsonl``) under ``data_root``, sorted.

    Examples
    --------
    >>> isinstance(task_names("/nonexistent"), list)
    True
    """
    root = Path(data_root) if data_root is not None else default_data_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "test.jsonl").is_file())
