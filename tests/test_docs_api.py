"""The documentation site covers the public API, and its quoted numbers match the generated pages.

The strict MkDocs build (``make test``) fails on broken links and pages missing from the navigation; these
fast checks cover what it cannot see: a public name that no API page renders, an API page naming an object
that no longer exists, and benchmark rows quoted by hand that drifted from the generated page.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import promptkd

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^:::\s+(\S+)\s*$", flags=re.M)

# subpackages whose __all__ the API reference renders in full
SUBPACKAGES = [
    "promptkd.pool",
    "promptkd.selection",
    "promptkd.bounds",
    "promptkd.probes",
    "promptkd.evaluation",
    "promptkd.rendering",
    "promptkd.embeddings",
    "promptkd.kernels",
    "promptkd.integrations",
    "promptkd.integrations.langchain",
    "promptkd.integrations.dspy",
    "promptkd.distributed",
    "promptkd.exceptions",
]


def api_identifiers() -> list[str]:
    idents = []
    for page in sorted((DOCS / "api").glob("*.md")):
        idents += BLOCK.findall(page.read_text(encoding="utf-8"))
    return idents


def resolve(identifier: str):
    parts = identifier.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(identifier)


def test_every_api_block_names_an_existing_object_once():
    idents = api_identifiers()
    assert idents, "docs/api has no ::: blocks"
    duplicates = sorted({i for i in idents if idents.count(i) > 1})
    assert not duplicates, f"rendered twice: {duplicates}"
    for ident in idents:
        resolve(ident)


def _documented(module: str, name: str, idents: list[str], objects: list) -> bool:
    if f"{module}.{name}" in idents:
        return True
    obj = getattr(importlib.import_module(module), name)
    if isinstance(obj, (str, int, float, tuple)):  # values are matched by path only
        return False
    return any(obj is other for other in objects)


def test_every_top_level_public_name_is_in_the_api_reference():
    idents = api_identifiers()
    objects = [resolve(i) for i in idents]
    missing = [name for name in promptkd.__all__ if not _documented("promptkd", name, idents, objects)]
    assert not missing, f"in promptkd.__all__ but on no page under docs/api: {missing}"


@pytest.mark.parametrize("module", SUBPACKAGES)
def test_every_subpackage_public_name_is_in_the_api_reference(module):
    idents = api_identifiers()
    objects = [resolve(i) for i in idents]
    names = importlib.import_module(module).__all__
    missing = [name for name in names if not _documented(module, name, idents, objects)]
    assert not missing, f"in {module}.__all__ but on no page under docs/api: {missing}"


def test_quality_rows_quoted_in_the_docs_are_on_the_generated_page():
    """Rows quoted from docs/benchmarks/quality.md (between quote markers) must still be on that page."""
    generated = set((DOCS / "benchmarks" / "quality.md").read_text(encoding="utf-8").splitlines())
    text = (DOCS / "which-selector.md").read_text(encoding="utf-8")
    quotes = re.findall(r"<!-- quoted: benchmarks/quality.md -->\n(.*?)<!-- end quoted -->", text, flags=re.S)
    assert len(quotes) == 2
    rows = [line for quote in quotes for line in quote.splitlines() if line.strip()]
    assert len(rows) >= 10
    drifted = [line for line in rows if line not in generated]
    assert not drifted, f"rows no longer on docs/benchmarks/quality.md (update the quote from the page): {drifted}"


def test_readme_links_to_the_site_pages():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert "docs/index.md" in links and "docs/getting-started.md" in links
    for link in links:
        assert (ROOT / link).is_file(), f"README links to a missing file: {link}"
    assert "mkdocs serve" in readme
