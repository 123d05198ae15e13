"""Citations and bibliographies: ``[@key]``, ``[see @a, p. 33; -@b]``, ``@key`` in text,
rendered by pandoc's citeproc from BibLaTeX, CSL JSON and CSL YAML files in a CSL style,
with a References section at the end of each lesson; every fault at its line."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from conftest import lesson_text, make_project
from pdfinfo import page_texts
from pubkit.build import build
from pubkit.check import check
from pubkit.document.ast import walk
from pubkit.document.markdown import Reading, read
from pubkit.errors import ConfigError, LessonError
from pubkit.sources import bibliography
from pubkit.sources.config import load_config
from pubkit.sources.manuscript import collect
from pubkit.sources.theme import load_theme

BIB = """@book{knuth1984,
  author = {Knuth, Donald E.},
  title = {The {\\TeX}book},
  year = 1984,
  publisher = {Addison-Wesley}
}

@article{lamport1986,
  author = {Lamport, Leslie},
  title = {LaTeX: A Document Preparation System},
  year = 1986,
  journal = {Computing Reviews}
}
"""
CSL_JSON = [
    {
        "id": "hopper1952",
        "type": "paper-conference",
        "author": [{"family": "Hopper", "given": "Grace"}],
        "title": "The Education of a Computer",
        "issued": {"date-parts": [[1952]]},
    }
]
CSL_YAML = """references:
- id: lovelace1843
  type: article-journal
  author:
  - family: Lovelace
    given: Ada
  title: Notes on the Analytical Engine
  issued:
    date-parts:
    - [1843]
"""
FIRST = (
    "## Boxes and glue [@knuth1984]\n\n"
    "Typesetting is hard [@knuth1984]. See also [see @lamport1986, p. 33; -@knuth1984].\n"
    "As @knuth1984 shows, boxes and glue suffice. Ask @someone or mail ops@example.org.\n\n"
    "A compiler came early [@hopper1952], a program earlier [@lovelace1843].\n\n"
    "::: exercise\nRead one source.\n\n::: solution\nKnuth's.\n:::\n:::\n"
)


def _project(root: Path, body: str = FIRST, csl: str | None = None) -> Path:
    lesson = lesson_text(1, "Citing", body).replace(
        "title: Citing\n", "title: Citing\nbibliography: [own.json, more.yaml]\n"
    )
    second = lesson_text(2, "Zitieren", "Wie [@knuth1984] zeigt.\n").replace(
        "title: Zitieren\n", "title: Zitieren\nlanguage: de\n"
    )
    make_project(root, {"01-cite.md": lesson, "02-zitieren.md": second})
    (root / "refs.bib").write_text(BIB)
    folder = root / "manuscript" / "01-module"
    (folder / "own.json").write_text(json.dumps(CSL_JSON))
    (folder / "more.yaml").write_text(CSL_YAML)
    settings = "bibliography: refs.bib\n" + (f"csl: {csl}\n" if csl else "")
    (root / "pubkit.yaml").write_text(settings)
    return root


def _read(root: Path, name: str = "01-cite.md") -> tuple[dict, tuple]:
    config, _ = load_config(root)
    theme = load_theme(config.styles_dir)
    lesson = next(lesson for lesson in collect(config).lessons if lesson.path.name == name)
    cites = bibliography.for_lesson(config, lesson)
    ast, notes, _ = read(lesson, root, None, Reading(theme.words("en"), theme.blocks, cites))
    return ast, notes


def _text(pdf: Path) -> str:
    return " ".join(" ".join(page_texts(pdf)).split())


@pytest.fixture(scope="module")
def cited_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _project(tmp_path_factory.mktemp("cite"))
    result = build(root, force=True)
    assert result.ok, [str(d) for d in result.diagnostics]
    return root / "build"


def test_citations_of_every_form_become_cites(tmp_path: Path) -> None:
    ast, notes = _read(_project(tmp_path))
    assert not [n for n in notes if n.is_error]
    cites = [n for n in walk(ast["blocks"]) if n["t"] == "Cite"]
    modes = [[(c["citationId"], c["citationMode"]["t"]) for c in n["c"][0]] for n in cites]
    assert modes == [
        [("knuth1984", "NormalCitation")],  # in the heading
        [("knuth1984", "NormalCitation")],
        [("lamport1986", "NormalCitation"), ("knuth1984", "SuppressAuthor")],
        [("knuth1984", "AuthorInText")],
        [("hopper1952", "NormalCitation")],
        [("lovelace1843", "NormalCitation")],
    ]
    ids = {n["c"][0][0] for n in walk(ast["blocks"]) if n["t"] == "Div"}
    assert {"ref-knuth1984", "ref-lamport1986", "ref-hopper1952", "ref-lovelace1843"} <= ids
    # "@someone" is no key: left as written; an address stays an address
    assert "@someone" in json.dumps(ast)


def test_the_lesson_reads_with_references_last(cited_build: Path) -> None:
    text = _text(cited_build / "pdf" / "01-module" / "01-cite.pdf")
    assert "(Knuth 1984)" in text
    assert "Boxes and glue (Knuth 1984)" in text  # a heading cites too
    assert "see Lamport 1986, 33; 1984" in text
    assert "Knuth (1984) shows" in text
    assert "@knuth1984" not in text and "[@" not in text
    # solutions, then the references: the lesson's last section
    assert text.index("Solutions") < text.index("References")
    references = text[text.index("References") :]
    for entry in ("Knuth, Donald E. 1984. The TeXbook", "Lovelace, Ada. 1843", "Hopper, Grace"):
        assert entry in references, entry


def test_citations_follow_the_lessons_language(cited_build: Path) -> None:
    text = _text(cited_build / "pdf" / "01-module" / "02-zitieren.pdf")
    assert "Literatur" in text and "(Knuth 1984)" in text


def test_the_epub_links_citations_to_their_entries(cited_build: Path) -> None:
    with zipfile.ZipFile(cited_build / "epub" / "01-module" / "01-cite.epub") as epub:
        chapter = epub.read("EPUB/text/ch001.xhtml").decode()
    assert 'href="#ref-knuth1984"' in chapter or "ch001.xhtml#ref-knuth1984" in chapter
    assert 'id="ref-knuth1984"' in chapter
    assert ">References</h2>" in chapter


def test_each_lesson_keeps_its_references_in_the_collection(cited_build: Path) -> None:
    text = _text(cited_build / "collections" / "01-module.pdf")
    assert text.count("References") == 1 and "Literatur" in text
    with zipfile.ZipFile(cited_build / "collections" / "01-module.epub") as epub:
        chapters = [epub.read(n).decode() for n in epub.namelist() if "/ch0" in n]
    assert sum('id="lesson-1-ref-knuth1984"' in c for c in chapters) == 1
    assert sum('id="lesson-2-ref-knuth1984"' in c for c in chapters) == 1


def test_a_shipped_style_sets_numbered_citations(tmp_path: Path) -> None:
    root = _project(tmp_path, csl="ieee")
    assert build(root, formats=["pdf"], validate=False).ok
    text = _text(root / "build" / "pdf" / "01-module" / "01-cite.pdf")
    assert "[1]" in text and "D. E. Knuth" in text


def test_an_unknown_key_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = _project(tmp_path, body="One.\n\nTwo [@knuth1948; @knuth1984].\n")
    with pytest.raises(LessonError) as caught:
        _read(root)
    (problem,) = caught.value.diagnostics
    assert problem.line == 9
    assert problem.message == (
        "citation “@knuth1948”: no such key in refs.bib, own.json, more.yaml"
    )
    result = build(root, validate=False)  # the other lesson is still built
    assert [p.name for p in result.failed] == ["01-cite.md"]
    assert (root / "build" / "pdf" / "01-module" / "02-zitieren.pdf").is_file()


def test_a_citation_without_a_bibliography(tmp_path: Path) -> None:
    make_project(tmp_path, {"01-a.md": lesson_text(1, body="Words [@knuth1984].\n")})
    config, _ = load_config(tmp_path)
    lesson = collect(config).lessons[0]
    with pytest.raises(LessonError) as caught:
        read(lesson, tmp_path, None, Reading(bibliography=bibliography.for_lesson(config, lesson)))
    assert "the lesson has no bibliography" in caught.value.diagnostics[0].message


def test_a_broken_bibliography_is_an_error_at_its_own_line(tmp_path: Path) -> None:
    root = _project(tmp_path)
    (root / "refs.bib").write_text(BIB + "\n@article{broken,\n  author = {A, B\n  title = x\n")
    with pytest.raises(ConfigError) as caught:
        check(root)
    (problem,) = caught.value.diagnostics
    assert problem.path == (root / "refs.bib").resolve() and problem.line == 15
    assert "entry 'broken' is never closed" in problem.message
    # a lesson's own broken CSL JSON fails that lesson, at the file's line
    (root / "refs.bib").write_text(BIB)
    (root / "manuscript/01-module/own.json").write_text('[\n  {"id": "x",\n  "type": }\n]')
    result = build(root, validate=False)
    assert [p.name for p in result.failed] == ["01-cite.md"]
    (problem,) = [d for d in result.diagnostics if d.is_error]
    assert problem.path.name == "own.json" and problem.line == 3


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("bibliography: ../outside.bib\n", "bibliography 'outside.bib': outside the project"),
        ("bibliography: nowhere.bib\n", "bibliography 'nowhere.bib': no such file"),
        ("bibliography: notes.txt\n", "bibliography 'notes.txt': expected a file ending"),
        ("csl: chicago\n", "csl: no style 'chicago': one of apa, chicago-author-date"),
    ],
)
def test_bad_settings_are_errors_at_their_lines(tmp_path: Path, setting: str, message: str) -> None:
    root = make_project(tmp_path / "course", {"01-a.md": lesson_text(1)})
    (tmp_path / "outside.bib").write_text(BIB)
    (root / "notes.txt").write_text("x")
    (root / "pubkit.yaml").write_text("course:\n  title: T\n" + setting)
    with pytest.raises(ConfigError) as caught:
        check(root)
    (problem,) = caught.value.diagnostics
    assert problem.line == 3 and message in problem.message, str(problem)


def test_a_changed_bibliography_rebuilds_the_lessons_that_cite_it(tmp_path: Path) -> None:
    root = _project(tmp_path)
    assert build(root, formats=["pdf"], validate=False).ok
    again = build(root, formats=["pdf"], validate=False)
    assert all(result.skipped for result in again.built)
    (root / "refs.bib").write_text(BIB.replace("Addison-Wesley", "Addison Wesley Longman"))
    third = build(root, formats=["pdf"], validate=False)
    assert not any(result.skipped for result in third.built)
    text = _text(root / "build" / "pdf" / "01-module" / "01-cite.pdf")
    assert "Addison Wesley Longman" in text
