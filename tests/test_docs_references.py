"""Every ``theory.md §…`` and ``(seed_)systems.md §…`` citation in the repository names a real section.

The package's docstrings cite the mathematics as ``theory.md §4.2`` and the other papers' systems
as ``seed_systems.md §B.4`` (or ``systems.md §B.4``). Those sections live in ``docs/theory.md``
and ``docs/systems.md``, whose cite-able headings have the form ``## §4.2 Title`` (any number of
``#``). This test scans every ``.py`` and ``.md`` file of the repository (every top-level
directory except hidden ones such as ``.git``/``.venv``, virtual environments, caches and
``docs/figures``, plus the top-level ``README.md``), extracts the citations and checks that
each resolves to a heading.

Citation grammar understood by :func:`extract_citations`:

* ``theory.md §4.2``, ``docs/theory.md §4.2``, ```theory.md` §0``;
* a trailing full stop is punctuation: ``theory.md §5.`` cites §5;
* lists and ranges after one file name: ``theory.md §4.2, §4.6``, ``§B.6.2 / §C.6``,
  ``theory.md §0–§1`` and ``theory.md §2.3–2.4`` (both ends are checked);
* ``theory.md`` sections are numeric (``0``, ``4.2``, ``7.3``); ``systems.md`` sections start with
  a number or a capital letter (``0``, ``A``, ``B.6.2``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = {"theory": REPO / "docs" / "theory.md", "systems": REPO / "docs" / "systems.md"}

#: Which document a cited file name resolves into.
TARGET = {"theory": "theory", "systems": "systems", "seed_systems": "systems"}

_THEORY_SECTION = r"\d+(?:\.\d+)*"
_SYSTEMS_SECTION = r"(?:\d+|[A-Z])(?:\.\d+)*"
_FILE_RE = re.compile(r"(?<![\w-])(seed_systems|systems|theory)\.md`?[ \t]*(?=§)")
_HEADING_RE = re.compile(r"^#{1,6}[ \t]+§((?:\d+|[A-Z])(?:\.\d+)*)(?=[\s:.—–-]|$)", re.MULTILINE)

#: Sections the code relies on and the section structure both documents must keep.
REQUIRED = {
    "theory": ["0", "0.1", "1", "1.1", "1.2", "1.3", "1.4", "1.5", "2", "2.1", "2.2", "2.3", "2.4",
               "2.5", "3", "4", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "5", "6", "7", "7.1", "7.2",
               "7.3", "7.4", "7.5", "7.6", "7.7", "7.8", "8", "9", "9.1", "9.2", "9.3", "10"],
    "systems": ["0", "A"] + [f"A.{i}" for i in range(1, 11)]
               + ["B"] + [f"B.{i}" for i in range(1, 7)] + [f"B.6.{i}" for i in range(1, 5)]
               + ["C"] + [f"C.{i}" for i in range(1, 7)] + ["D"],
}

_SKIP_DIR_NAMES = {"__pycache__", "node_modules", "site-packages", "build", "dist"}


def extract_citations(text: str) -> list[tuple[str, str]]:
    """All (document, section) pairs cited in ``text``; document is ``"theory"`` or ``"systems"``."""
    found: list[tuple[str, str]] = []
    for match in _FILE_RE.finditer(text):
        doc = TARGET[match.group(1)]
        section = _THEORY_SECTION if doc == "theory" else _SYSTEMS_SECTION
        first = re.compile(rf"§({section})")
        more = re.compile(rf"[ \t]*(?:(?:,|/|\band\b|&)[ \t]*§({section})|[–—-][ \t]*§?({section}))")
        pos = match.end()
        head = first.match(text, pos)
        if head is None:
            continue
        found.append((doc, head.group(1)))
        pos = head.end()
        while (nxt := more.match(text, pos)) is not None:
            found.append((doc, nxt.group(1) or nxt.group(2)))
            pos = nxt.end()
    return found


def headings(markdown: str) -> list[str]:
    """Section labels of the ``## §X.Y Title`` headings of a document, in order."""
    return _HEADING_RE.findall(markdown)


def unresolved(citations, sections: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The citations whose section is not a heading of the cited document."""
    return [(doc, sec) for doc, sec in citations if sec not in sections.get(doc, set())]


def scanned_files(root: Path = REPO) -> list[Path]:
    """Every .py/.md file under the repository's top-level directories, and the top-level README."""
    files = [root / "README.md"] if (root / "README.md").is_file() else []
    for top in sorted(p for p in root.iterdir() if p.is_dir()):
        if top.name.startswith(".") or top.name in _SKIP_DIR_NAMES or top.name.endswith(".egg-info"):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d for d in dirnames
                if not d.startswith(".") and d not in _SKIP_DIR_NAMES and not d.endswith(".egg-info")
                and not (here / d / "pyvenv.cfg").exists()
                and (here / d) != root / "docs" / "figures"
            )
            if (here / "pyvenv.cfg").exists():
                dirnames[:] = []
                continue
            files.extend(here / f for f in sorted(filenames) if f.endswith((".py", ".md")))
    return files


def _document_sections() -> dict[str, set[str]]:
    return {doc: set(headings(path.read_text(encoding="utf-8"))) for doc, path in DOCS.items()}


# --------------------------------------------------------------------------------------------
# The extractor and resolver themselves (so that the repository-wide check can fail)


def test_extractor_grammar():
    th, se, sy = "theory" + ".md", "seed_systems" + ".md", "systems" + ".md"
    text = (f"See {th} §4.2, §4.6 step 3. Loss as in {th} §5. Also `{th}` §0 and {th} §2.3–2.4\n"
            f"and {th} §0–§1; {se} §B.6.2 / §C.6, docs/{sy} §A.1. End: {se} §B.4.\n"
            f"Not citations: neural_{sy} §9, {th} § 3, {th} §X.Y, paper §2.1.")
    assert extract_citations(text) == [
        ("theory", "4.2"), ("theory", "4.6"), ("theory", "5"), ("theory", "0"), ("theory", "2.3"),
        ("theory", "2.4"), ("theory", "0"), ("theory", "1"), ("systems", "B.6.2"), ("systems", "C.6"),
        ("systems", "A.1"), ("systems", "B.4"),
    ]


def test_resolver_reports_missing_sections():
    doc = "# Title\n\n## §0 Conventions\n\n### §4.2 Single-site processes\n\n#### §7.3: a check\n\ntext §9.9\n"
    assert headings(doc) == ["0", "4.2", "7.3"]
    sections = {"theory": set(headings(doc)), "systems": {"A", "B.6.2"}}
    th, se = "theory" + ".md", "seed_systems" + ".md"
    text = f"{th} §4.2 and {th} §4.3; {th} §7.3. {se} §B.6.2, §B.6.9 and {th} §9.9"
    assert unresolved(extract_citations(text), sections) == [
        ("theory", "4.3"), ("systems", "B.6.9"), ("theory", "9.9")]


# --------------------------------------------------------------------------------------------
# The documents and the repository


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_document_exists_with_required_sections(doc):
    path = DOCS[doc]
    assert path.is_file(), f"{path.relative_to(REPO)} is missing"
    labels = headings(path.read_text(encoding="utf-8"))
    duplicates = sorted({s for s in labels if labels.count(s) > 1})
    assert not duplicates, f"{path.name}: duplicate section headings {duplicates}"
    missing = [s for s in REQUIRED[doc] if s not in labels]
    assert not missing, f"{path.name}: missing section headings {missing}"


def test_documents_are_tracked_by_git():
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    for path in DOCS.values():
        rel = path.relative_to(REPO).as_posix()
        result = subprocess.run(["git", "ls-files", "--error-unmatch", rel], cwd=REPO,
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{rel} is not in the repository (git add it)"


def test_every_citation_resolves():
    sections = _document_sections()
    bad: list[str] = []
    counts = {"theory": 0, "systems": 0}
    for path in scanned_files():
        citations = extract_citations(path.read_text(encoding="utf-8", errors="replace"))
        for doc, _ in citations:
            counts[doc] += 1
        bad.extend(f"{path.relative_to(REPO)}: {'theory' if doc == 'theory' else 'systems'}.md §{sec}"
                   for doc, sec in unresolved(citations, sections))
    # guard against a scanner that silently finds nothing
    assert counts["theory"] > 0 and counts["systems"] > 0, counts
    assert not bad, "citations of sections that do not exist in docs/:\n" + "\n".join(sorted(set(bad)))


def internal_references(markdown: str, doc: str) -> list[str]:
    """Bare ``§X`` cross-references inside one document (headings, ``paper §…`` and file citations excluded)."""
    section = _THEORY_SECTION if doc == "theory" else _SYSTEMS_SECTION
    body = re.sub(r"(?m)^#{1,6}[ \t]+§\S+", "", markdown)
    return re.findall(rf"(?<!paper )(?<!\.md )(?<!\.md` )(?<![\w§])§({section})", body)


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_internal_cross_references_resolve(doc):
    text = DOCS[doc].read_text(encoding="utf-8")
    labels = set(headings(text))
    missing = sorted({s for s in internal_references(text, doc) if s not in labels})
    assert not missing, f"{DOCS[doc].name}: cross-references to missing sections {missing}"


def test_scan_covers_the_package_directories():
    scanned = {p.relative_to(REPO).parts[0] for p in scanned_files()}
    for top in ("dmft", "tests", "docs", "README.md"):
        if (REPO / top).exists():
            assert top in scanned
    figures = REPO / "docs" / "figures"
    assert not any(figures in p.parents for p in scanned_files())
