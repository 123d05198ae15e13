"""Course blocks: objectives, exercises with solutions, callouts, instructor notes, and the
instructor edition (tests/projects/blocks: an English lesson with every kind in both
alias styles, a German and an Arabic one)."""

from __future__ import annotations

import contextlib
import re
import zipfile
import zlib
from pathlib import Path

import pytest
from pypdf import PdfReader

from conftest import PROJECTS, lesson_text, make_project
from epubinfo import documents
from pdfinfo import page_texts
from pubkit.build import build
from pubkit.document.ast import plain_text, walk
from pubkit.document.blocks import Arrangement, arrange, kind_of
from pubkit.document.markdown import Reading, read
from pubkit.errors import ConfigError
from pubkit.sources.blocks import load_family
from pubkit.sources.config import builtin_styles, load_config
from pubkit.sources.manuscript import collect
from pubkit.sources.theme import load_theme

ENGLISH = "01-loops/01-for-loops"
GERMAN = "01-loops/02-schleifen"
ARABIC = "01-loops/03-halaqat"
#: Words only the instructor notes hold.
SECRETS = ("SECRETNOTE", "GEHEIMNOTIZ")
LEARNERS = ("pdf", "handout", "epub")


def _read(root: Path, name: str) -> tuple[list, tuple]:
    config, _ = load_config(root)
    theme = load_theme(config.styles_dir)
    lesson = next(lesson for lesson in collect(config).lessons if lesson.path.name == name)
    reading = Reading(theme.words(lesson.language or "en"), theme.blocks)
    ast, notes, _ = read(lesson, root, None, reading)
    return ast["blocks"], notes


def _kinds(blocks: list) -> list[str]:
    return [kind for node in walk(blocks) if (kind := kind_of(node))]


def _text(pdf: Path) -> str:
    return " ".join(" ".join(page_texts(pdf)).split())


def _streams(pdf: Path) -> bytes:
    """Every stream of the PDF, inflated: what a search of the file would find."""
    data = pdf.read_bytes()
    found = [data]
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        with contextlib.suppress(zlib.error):
            found.append(zlib.decompress(match.group(1)))
    return b"".join(found)


# --- the lesson as read -----------------------------------------------------------------


def test_every_kind_and_alias_becomes_its_block() -> None:
    blocks, notes = _read(PROJECTS / "blocks", "01-for-loops.md")
    assert not notes, [str(n) for n in notes]
    found = _kinds(blocks)
    # questions, objectives, prereq first (moved under the header, in written order)
    assert found[:3] == ["questions", "objectives", "prereq"]
    assert found[-1] == "takeaways"  # ::: keypoints, moved to the end
    for kind in ("callout", "tip", "exercise", "hint", "solution", "instructor", "warning"):
        assert kind in found, kind
    for kind in ("discussion", "checklist", "testimonial", "spoiler", "important", "caution"):
        assert kind in found, kind
    # ::: {.callout-note} is a callout too; ::: challenge an exercise
    assert found.count("callout") == 2 and found.count("exercise") == 2


def test_labels_titles_and_exercise_numbers() -> None:
    blocks, _ = _read(PROJECTS / "blocks", "01-for-loops.md")
    labels = {
        kind_of(node): " ".join(plain_text(node["c"][1][0]["c"][2]).split())
        for node in walk(blocks)
        if kind_of(node) in ("questions", "tip", "warning", "takeaways")
    }
    assert labels == {
        "questions": "Questions",
        "tip": "Name the loop variable well",  # title="…" replaces the label
        "warning": "Warning",
        "takeaways": "Key Takeaways",
    }
    exercises = [n for n in walk(blocks) if kind_of(n) == "exercise"]
    titles = [" ".join(plain_text(e["c"][1][0]["c"][2]).split()) for e in exercises]
    assert titles == ["Exercise 1: Count the letters", "Exercise 2"]
    assert [e["c"][0][0] for e in exercises] == ["ex-count", "ex-sum"]
    # @ex-count reads "Exercise 1", linked
    links = [n for n in walk(blocks) if n["t"] == "Link" and n["c"][2][0] == "#ex-count"]
    assert links and plain_text(links[0]["c"][1]) == "Exercise 1"


def test_labels_in_the_lessons_language() -> None:
    blocks, _ = _read(PROJECTS / "blocks", "02-schleifen.md")
    exercise = next(n for n in walk(blocks) if kind_of(n) == "exercise")
    assert plain_text(exercise["c"][1][0]["c"][2]).strip() == "Übung 1"
    arranged = arrange(blocks, Arrangement(), {"solutions": "Lösungen"})
    text = plain_text(arranged)
    assert "Lösung 1" in text and "Zurück zu Übung 1" in text and "Lösungen" in text


def test_editions_arrange_solutions_and_instructor_notes() -> None:
    blocks, _ = _read(PROJECTS / "blocks", "01-for-loops.md")
    words = {"solutions": "Solutions"}
    learner = arrange(blocks, Arrangement("end"), words)
    worksheet = arrange(blocks, Arrangement("omit"), words)
    teacher = arrange(blocks, Arrangement("beside", instructor=True), words)
    for arranged in (learner, worksheet):
        assert "SECRETNOTE" not in plain_text(arranged)
        assert "instructor" not in _kinds(arranged)
    assert "SECRETNOTE" in plain_text(teacher)
    # at the end: under "Solutions", after everything else, linked both ways
    assert learner[-1]["c"][0][1] == ["solutions"]
    moved = [n for n in walk(learner[-1]) if kind_of(n) in ("solution", "hint")]
    assert [n["c"][0][0] for n in moved] == ["hint-1", "solution-1", "solution-2"]
    targets = {n["c"][2][0] for n in walk(learner) if n["t"] == "Link"}
    assert {"#hint-1", "#solution-1", "#solution-2", "#ex-count", "#ex-sum"} <= targets
    # left out: no solution's words, no link to one
    assert "sum(range(1, 11))" not in plain_text(worksheet)
    assert not [n for n in walk(worksheet) if kind_of(n) in ("solution", "hint")]
    # beside: inside its exercise
    exercise = next(n for n in walk(teacher) if n["t"] == "Div" and n["c"][0][0] == "ex-sum")
    assert "solution" in _kinds(exercise["c"][1])
    # the source is untouched
    assert "SECRETNOTE" in plain_text(blocks)


def test_bad_blocks_are_reported_at_their_lines(tmp_path: Path) -> None:
    body = (
        "Text.\n\n"  # line 6
        "::: excercise\nMisspelled.\n:::\n\n"  # line 8
        "::: solution\nA stray answer.\n:::\n\n"  # line 12
        "::: exercise\nDo it.\n:::\n\n"  # line 16
        "::: solution\nFollows its exercise.\n:::\n\n"  # line 20
        "::: exercise\nOuter.\n\n::: solution\nInner.\n\n::: note\nToo deep.\n:::\n:::\n:::\n\n"
        "::: {.two-column}\nA class the theme does not style.\n:::\n"
    )
    root = make_project(tmp_path, {"01-a.md": lesson_text(1, body=body)})
    blocks, notes = _read(root, "01-a.md")
    messages = [(n.line, n.message) for n in notes]
    assert (
        8,
        "unknown block “excercise”, set as a plain block; did you mean “exercise”?",
    ) in messages
    assert any(line == 12 and "outside any exercise" in m for line, m in messages)
    assert any(line == 20 and "taken as that exercise's" in m for line, m in messages)
    assert any(line == 30 and "a box can hold one more box, not two" in m for line, m in messages)
    assert any("unknown block “two-column”" in m for _, m in messages)
    # the solution after its exercise is now inside it
    second = [n for n in walk(blocks) if kind_of(n) == "exercise"][1]
    assert "solution" in _kinds(second["c"][1])
    # the misspelled block keeps its words
    assert "Misspelled." in plain_text(blocks)


def test_a_class_the_theme_styles_is_no_unknown_block(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-a.md": lesson_text(1, body="::: wide\nText.\n:::\n")})
    (root / "styles").mkdir()
    (root / "styles" / "custom.css").write_text(".wide { margin: 0 -2em; }\n")
    _, notes = _read(root, "01-a.md")
    assert not notes, [str(n) for n in notes]


# --- the theme's block family ---------------------------------------------------------------


def test_a_publisher_adds_and_restyles_kinds(tmp_path: Path) -> None:
    (tmp_path / "icons").mkdir()
    (tmp_path / "icons" / "flask.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
        '<circle cx="8" cy="8" r="6" fill="currentColor"/></svg>'
    )
    (tmp_path / "blocks.yaml").write_text(
        "lab:\n"
        "  aliases: [experiment]\n"
        "  label: {en: Lab, de: Labor}\n"
        "  role: exercise\n"
        "  numbering: '{lesson}.{n}'\n"
        "  icon: icons/flask.svg\n"
        '  look: {accent: "#aa0000", tint: "#fff0f0"}\n'
        "exercise:\n"
        '  look: {accent: "#00aa00"}\n'
    )
    family = load_family((tmp_path.resolve(), builtin_styles()))
    lab = family.find("experiment")
    assert lab is not None and lab.name == "lab" and lab.role == "exercise"
    assert lab.label_in({}, "de-AT") == "Labor"
    exercise = family.kinds["exercise"]
    assert exercise.look["accent"] == "#00aa00"
    assert "challenge" in exercise.aliases  # pubkit's fields kept where not changed
    css = family.stylesheet(lambda name: "#123456")
    assert ".block.block-lab > .block-label { color: #aa0000; }" in css
    assert ".block.block-lab > .block-label::before" in css  # its icon


def test_a_broken_block_family_is_reported_with_lines(tmp_path: Path) -> None:
    (tmp_path / "blocks.yaml").write_text(
        "lab:\n  role: experiment\n  colour: red\nnote2:\n  aliases: [tip]\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_family((tmp_path.resolve(), builtin_styles()))
    messages = [str(d) for d in caught.value.diagnostics]
    assert any(":2: error: lab.role: expected one of box, exercise" in m for m in messages)
    assert any(":3: error: lab.colour: unknown field" in m for m in messages)
    assert any(":5: error: note2: the name 'tip' is already tip's" in m for m in messages)


def test_solutions_setting(tmp_path: Path) -> None:
    (tmp_path / "pubkit.yaml").write_text("solutions:\n  handout: end\n")
    config, _ = load_config(tmp_path)
    assert config.solutions_in("handout") == "end"
    assert config.solutions_in("instructor") == "beside"
    (tmp_path / "pubkit.yaml").write_text("solutions:\n  handouts: end\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "did you mean 'handout'" in str(caught.value.diagnostics[0])


# --- every edition, built -----------------------------------------------------------------


def test_instructor_notes_are_absent_from_every_learner_output(blocks_build: Path) -> None:
    for lesson in (ENGLISH, GERMAN):
        for edition in ("pdf", "handout"):
            pdf = blocks_build / edition / f"{lesson}.pdf"
            assert not any(s in _text(pdf) for s in SECRETS)
            assert not any(s.encode() in _streams(pdf) for s in SECRETS)
        with zipfile.ZipFile(blocks_build / "epub" / f"{lesson}.epub") as epub:
            for name in epub.namelist():
                assert not any(s.encode() in epub.read(name) for s in SECRETS), name
        instructor = _text(blocks_build / "instructor" / f"{lesson}.pdf")
        assert any(s in instructor for s in SECRETS)
    collection = blocks_build / "collections" / "01-loops"
    assert not any(s.encode() in _streams(collection.with_suffix(".pdf")) for s in SECRETS)
    with zipfile.ZipFile(collection.with_suffix(".epub")) as epub:
        for name in epub.namelist():
            assert not any(s.encode() in epub.read(name) for s in SECRETS), name


def test_solutions_where_each_edition_puts_them(blocks_build: Path) -> None:
    pdf = _text(blocks_build / "pdf" / f"{ENGLISH}.pdf")
    handout = _text(blocks_build / "handout" / f"{ENGLISH}.pdf")
    instructor = _text(blocks_build / "instructor" / f"{ENGLISH}.pdf")
    answer = "sum(range(1, 11))"
    assert answer in pdf and answer in instructor and answer not in handout
    # the PDF: at the end, after the key takeaways, under "Solutions"
    assert pdf.index("KEY TAKEAWAYS") < pdf.index("Solutions") < pdf.index(answer)
    assert "Back to Exercise 2" in pdf
    # the instructor edition: beside the exercise, before the next section
    assert instructor.index("Add up the numbers") < instructor.index(answer)
    assert instructor.index(answer) < instructor.index("WARNING")
    assert "Solutions" not in instructor
    assert "INSTRUCTOR EDITION" in instructor.upper()


def test_reading_figures_count_what_each_edition_sets(blocks_build: Path) -> None:
    def words(edition: str) -> int:
        found = re.search(r"([\d,]+) words", _text(blocks_build / edition / f"{ENGLISH}.pdf"))
        assert found
        return int(found.group(1).replace(",", ""))

    assert words("handout") < words("pdf")  # no solutions
    assert words("pdf") != words("instructor")  # notes in, "Solutions" heading out


def test_links_both_ways_work_in_the_pdf(blocks_build: Path) -> None:
    reader = PdfReader(blocks_build / "pdf" / f"{ENGLISH}.pdf")
    destinations = set(reader.named_destinations)
    assert {"solution-1", "solution-2", "hint-1", "ex-count", "ex-sum"} <= destinations
    names = {
        str(annotation.get_object().get("/Dest"))
        for page in reader.pages
        for annotation in page.get("/Annots") or []
    }
    assert {"hint-1", "solution-1", "solution-2", "ex-count", "ex-sum"} <= names


def test_the_epub_sets_blocks_as_labelled_asides_and_sections(blocks_build: Path) -> None:
    chapters = documents(blocks_build / "epub" / f"{ENGLISH}.epub")
    chapter = next(root for name, root in chapters.items() if name.endswith("ch001.xhtml"))
    xhtml = "{http://www.w3.org/1999/xhtml}"
    boxes = [e for e in chapter.iter() if "block" in (e.get("class") or "").split()]
    assert len(boxes) >= 18
    ids = {e.get("id") for e in chapter.iter() if e.get("id")}
    for box in boxes:
        assert box.tag in (f"{xhtml}aside", f"{xhtml}section")
        assert "block-label" not in box.get("class", ""), box.get("class")  # the label's own
        label = box.get("aria-labelledby")
        assert label in ids, box.get("class")
        assert not [name for name in box.attrib if name.startswith("data-role")]
    exercises = [b for b in boxes if "block-exercise" in b.get("class", "")]
    assert {e.tag for e in exercises} == {f"{xhtml}section"}
    fragments = {(a.get("href") or "").partition("#")[2] for a in chapter.iter(f"{xhtml}a")}
    assert {"solution-1", "hint-1", "ex-count", "ex-sum"} <= fragments & ids


def test_the_arabic_lesson_labels_its_blocks_in_arabic(blocks_build: Path) -> None:
    text = _text(blocks_build / "pdf" / f"{ARABIC}.pdf")
    for label in ("أهداف التعلم", "تمرين", "تحذير", "الحلول", "العودة إلى تمرين"):
        assert label in text, label


def test_the_manifest_and_downloads_page_list_the_instructor_edition_apart(
    blocks_build: Path,
) -> None:
    import json

    manifest = json.loads((blocks_build / "manifest.json").read_text())
    for lesson in manifest["lessons"]:
        assert set(lesson["editions"]) == set(LEARNERS)
        assert set(lesson["instructor_editions"]) == {"instructor"}
    page = (blocks_build / "index.html").read_text()
    section = page[page.index('id="for-instructors"') :]
    assert "instructor/01-loops/01-for-loops.pdf" in section
    assert "instructor/" not in page[: page.index('id="for-instructors"')]


def test_the_instructor_edition_can_be_turned_off(tmp_path: Path) -> None:
    body = "::: exercise\nDo it.\n\n::: solution\nDone.\n:::\n:::\n"
    root = make_project(tmp_path, {"01-a.md": lesson_text(1, body=body)})
    (root / "pubkit.yaml").write_text("editions: [pdf]\n")
    result = build(root, validate=False)
    assert result.ok
    assert not (root / "build" / "instructor").exists()


def _structure_types(pdf: Path) -> list[str]:
    """The tagged PDF's structure element types, in document order."""
    found: list[str] = []
    stack = [PdfReader(pdf).trailer["/Root"]["/StructTreeRoot"]]
    while stack:
        node = stack.pop()
        node = node.get_object() if hasattr(node, "get_object") else node
        if isinstance(node, list):
            stack.extend(reversed(node))
        elif hasattr(node, "get"):
            if "/S" in node:
                found.append(str(node["/S"]))
            if "/K" in node:
                stack.append(node["/K"])
    return found


def test_box_labels_are_headings_but_not_outline_entries(blocks_build: Path) -> None:
    from pdfinfo import outline_titles

    pdf = blocks_build / "pdf" / f"{ENGLISH}.pdf"
    assert outline_titles(pdf) == [
        "For Loops",
        "Counting",
        "Adding up",
        "Key Takeaways",
        "Solutions",
    ]
    kinds = _structure_types(pdf)
    # every box's label is tagged as a heading: 19 boxes, 2 sections, "Solutions", 3 moved
    headings = [k for k in kinds if re.fullmatch(r"/H[2-6]", k)]
    assert len(headings) >= 19 + 2 + 1
