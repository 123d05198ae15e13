"""Small pure functions: word counting, minutes, design tokens."""

from __future__ import annotations

import gc
import io
import os
import pickle
import resource
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pubkit.course import workers
from pubkit.document.metrics import count_words, reading_minutes
from pubkit.errors import ConfigError, LessonError
from pubkit.sources.config import builtin_styles
from pubkit.sources.theme import load_theme


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("one two  three\nfour", 4),
        ("a — b – c", 3),  # dashes are not words
        ("state-of-the-art, don’t", 2),
        ("3.5K words", 2),
        ("日本語の文章", 6),  # unspaced scripts: a word per character
        ("Hello 世界", 3),
    ],
)
def test_count_words(text: str, expected: int) -> None:
    assert count_words(text) == expected


def test_reading_minutes() -> None:
    assert reading_minutes(2829, 238) == 12
    assert reading_minutes(238, 238) == 1
    assert reading_minutes(239, 238) == 2
    assert reading_minutes(0, 238) == 1
    assert reading_minutes(5000, 238, override=7) == 7


def test_tokens_drive_every_edition(tmp_path: Path) -> None:
    theme_dir = tmp_path / "styles"
    theme_dir.mkdir()
    tokens = (builtin_styles() / "tokens.yaml").read_text()
    (theme_dir / "tokens.yaml").write_text(tokens.replace('accent: "#1d5b8c"', 'accent: "#aa0000"'))
    theme = load_theme(theme_dir)
    for edition, sheets in (("pdf", ("base.css", "pdf.css")), ("epub", ("base.css", "epub.css"))):
        css = theme.stylesheet(sheets, edition, "A4", font_url=lambda face: face.path.name)
        assert css.count("#aa0000") >= 3  # module line, list markers, links
        assert "var(" not in css


def test_unknown_token_in_a_stylesheet_names_file_and_line(tmp_path: Path) -> None:
    theme_dir = tmp_path / "styles"
    theme_dir.mkdir()
    shutil.copy(builtin_styles() / "tokens.yaml", theme_dir)
    (theme_dir / "epub.css").write_text("body {\n  color: var(--color-nope);\n}\n")
    theme = load_theme(theme_dir)
    with pytest.raises(ConfigError) as raised:
        theme.stylesheet(("epub.css",), "epub", "A4", font_url=str)
    (problem,) = raised.value.diagnostics
    assert problem.line == 2 and "var(--color-nope): no such design token" in problem.message


def _ast(markdown: str) -> dict:  # type: ignore[type-arg]
    import json

    from pubkit.document import pandoc
    from pubkit.document.markdown import READER

    return json.loads(pandoc.parse(markdown, READER, source=Path("t.md")).wait())  # type: ignore[no-any-return]


def test_a_footnote_keeps_every_word_of_its_blocks_for_the_page_foot() -> None:
    from pubkit.document.ast import plain_text
    from pubkit.document.paged import FOOTNOTE_CLASS, _inline_notes

    ast = _ast(
        "Claim.[^n]\n\n[^n]: First para.\n\n    - item one\n    - item two\n\n"
        "    > quoted words\n\n    ```\n    code here\n    ```\n"
    )
    (para,) = _inline_notes(ast["blocks"])
    anchor = para["c"][0]
    assert anchor["t"] == "Span" and anchor["c"][0][1] == ["footnote-anchor"]
    claim, note = anchor["c"][1]
    assert plain_text(claim) == "Claim." and note["c"][0][1] == [FOOTNOTE_CLASS]
    lines = [{"t": "Space"} if i["t"] == "RawInline" else i for i in note["c"][1]]  # <br />
    assert sum(i["t"] == "RawInline" for i in note["c"][1]) == 4  # five lines
    text = " ".join(plain_text(lines).split())
    assert text == "First para. item one item two quoted words code here"


def test_a_long_takeaways_box_is_cut_where_told_and_numbered_on() -> None:
    from pubkit.document.paged import _Boxes

    ast = _ast("::: takeaways\n## Key\n\n3. three\n4. four\n5. five\n:::\n")
    ast["blocks"][0]["c"][0][1] = ["block", "block-takeaways"]  # as blocks.mark sets it
    # Units: the heading is 0, then one per item; cut before "five" (unit 3).
    blocks = list(_Boxes({0: frozenset({3})}, "(more)").transform(ast["blocks"]))
    kinds = [b["t"] for b in blocks]
    assert kinds == [
        "RawBlock",
        "Header",
        "OrderedList",
        "RawBlock",
        "RawBlock",
        "Div",
        "OrderedList",
        "RawBlock",
    ]
    assert 'class="block block-takeaways block-long"' in blocks[0]["c"][1]
    assert 'class="block block-takeaways block-continued"' in blocks[4]["c"][1]
    assert 'data-first-unit="3"' in blocks[4]["c"][1]
    assert blocks[2]["c"][0][0] == 3 and len(blocks[2]["c"][1]) == 2
    assert blocks[6]["c"][0][0] == 5 and len(blocks[6]["c"][1]) == 1
    label = blocks[5]["c"][1][0]["c"]
    assert [i.get("c") for i in label if i["t"] == "Str"] == ["Key", "(more)"]


def test_smart_punctuation_of_front_matter_texts() -> None:
    from pubkit.sources.frontmatter import smart_punctuation

    assert smart_punctuation('Don\'t "ship" it -- or ship it --- later...') == (
        "Don’t “ship” it – or ship it — later…"
    )
    assert smart_punctuation("'Quoted' (\"inner\")") == "‘Quoted’ (“inner”)"
    assert smart_punctuation("no quotes at all") == "no quotes at all"


def test_the_sanitiser_keeps_safe_html_well_nested_and_says_what_went() -> None:
    from pubkit.document.sanitize import sanitize

    def raw(text: str) -> dict[str, object]:
        return {"t": "RawInline", "c": ["html", text]}

    para = {
        "t": "Para",
        "c": [
            raw('<span class="k" onclick="x()" title="t">'),
            {"t": "Str", "c": "kept"},
            raw("<script>"),
            {"t": "Str", "c": "dropped"},
            raw("</script>"),
            raw('<a href="javascript:x()" rel="attachment">'),
            {"t": "Str", "c": "text"},
            raw("</a><em>open<br>"),
        ],
    }
    attributed = {
        "t": "Span",
        "c": [["", [], [["onmouseover", "x"], ["href", "javascript:y"], ["lang", "de"]]], []],
    }
    blocks, removed = sanitize([para, {"t": "Plain", "c": [attributed]}], lambda _: 7)
    html = "".join(n["c"][1] for n in blocks[0]["c"] if n["t"] == "RawInline")
    words = [n["c"] for n in blocks[0]["c"] if n["t"] == "Str"]
    # What the author left open is closed where the paragraph ends.
    assert html == '<span class="k" title="t"><a></a><em>open<br /></em></span>'
    assert words == ["kept", "text"]  # the script's text went with it
    assert blocks[1]["c"][0]["c"][0][2] == [["lang", "de"]]
    assert {what for _, what in removed} == {
        "event handler onclick on <span>",
        "<script>",
        "href address 'javascript:x()' on <a>",
        "rel=attachment (it would embed a file in the PDF) on <a>",
        "event handler onmouseover",
        "href address 'javascript:y'",
    }
    assert {line for line, _ in removed} == {7}


def test_xhtml_keeps_its_default_namespace_whatever_was_imported_before() -> None:
    from xml.etree import ElementTree as ET

    import weasyprint.pdf.metadata  # noqa: F401  (gives the empty prefix away on import)

    from pubkit.engines.namespaces import XHTML, to_string

    ET.register_namespace("", "")  # as WeasyPrint's metadata module does
    root = ET.fromstring(f'<html xmlns="{XHTML}"><body><p>x</p></body></html>')
    assert to_string(root).startswith(f'<html xmlns="{XHTML}"><body><p>')


def _pid(_item: int) -> int:
    return os.getpid()


def test_a_worker_sets_lesson_after_lesson_and_is_replaced_in_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def where(item: int) -> Path:
        return Path(str(item))

    kept = [pid for _, pid in workers.render_isolated(range(6), _pid, 1, where=where)]
    assert len(set(kept)) == 1 and kept[0] != os.getpid()  # one worker, its caches kept
    monkeypatch.setattr(workers, "LESSONS_PER_WORKER", 2)
    items = list(range(6))
    results = list(workers.render_isolated(items, _pid, 2, where=where))
    assert [item for item, _ in results] == items  # in order, whatever finished first
    pids = [pid for _, pid in results]
    assert len(set(pids)) >= 3 and all(pids.count(pid) <= 2 for pid in pids)


@dataclass(frozen=True)
class _Counting:
    """A task's function, as a Dask worker unpickles it for each task: equal, not the
    same; it counts the items it set in a list of its own (a cache keyed by it)."""

    name: str
    seen: list[int] = field(default_factory=list, compare=False)

    def __call__(self, item: int) -> tuple[int, int, int]:
        self.seen.append(item)
        return os.getpid(), id(self), len(self.seen)


def test_a_kept_worker_keeps_its_function_while_the_tasks_send_the_same() -> None:
    kept, usage = workers.Kept(), workers.Usage()

    def run(function: _Counting, item: int) -> tuple[int, int, int]:
        result = kept.run(item, function, lambda _: Path("x"), usage)
        assert isinstance(result, bytes)
        return pickle.loads(result)  # type: ignore[no-any-return]

    first, second = run(_Counting("lesson"), 1), run(_Counting("lesson"), 2)
    assert first[0] == second[0] != os.getpid()  # one kept process
    assert second[1:] == (first[1], 2)  # the same object, its cache warm
    other = run(_Counting("collection"), 3)
    assert other[0] == first[0] and other[2] == 1  # another function: loaded anew


def _early_then(item: int) -> int:
    workers.send_early(item * 10)
    return item


def test_what_a_worker_sends_early_comes_before_its_result() -> None:
    heard: list[tuple[int, int]] = []
    results = []
    for item, result in workers.render_isolated(
        [1, 2, 3], _early_then, 2, lambda _: Path("x"), early=lambda i, v: heard.append((i, v))
    ):
        assert (item, item * 10) in heard  # heard before its result came
        results.append(result)
    assert sorted(heard) == [(1, 10), (2, 20), (3, 30)] and results == [1, 2, 3]
    # A build that does not listen hears nothing, and its results come as ever.
    assert [r for _, r in workers.render_isolated([4], _early_then, 1, lambda _: Path("x"))] == [4]


def test_a_process_beside_gives_back_its_result_or_its_error() -> None:
    wait = workers.beside(lambda: (os.getpid(), "made"))
    pid, made = wait()
    assert made == "made" and pid != os.getpid()  # set in a process of its own

    def fails() -> None:
        raise ValueError("no cover")

    with pytest.raises(ValueError, match="no cover"):
        workers.beside(fails)()
    with pytest.raises(LessonError, match="stopped"):
        workers.beside(lambda: os._exit(3))()


def _descend(depth: int) -> int:
    return depth if depth == 0 else _descend(depth - 1)


def _page_faults_of_calls(_item: int) -> int:
    """Page faults while calls go 0 to 400 deep and back, over and over: across the end of
    one or two of CPython's 16 KB frame blocks, each mapped anew every time it is reached."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for depth in range(400):
        for _ in range(20):
            _descend(depth)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_a_worker_calls_on_a_stack_it_does_not_map_and_unmap_as_calls_deepen() -> None:
    # Called plainly, CPython 3.11 faults in some 20,000 fresh pages here.
    ((_, faults),) = list(
        workers.render_isolated([0], _page_faults_of_calls, 1, where=lambda _: Path("x"))
    )
    assert faults < 1000


def _frozen(_item: int) -> int:
    return gc.get_freeze_count()


def test_a_worker_never_collects_the_heap_it_inherited_and_the_build_still_does() -> None:
    inherited = len(gc.get_objects())
    ((_, frozen),) = list(workers.render_isolated([0], _frozen, 1, where=lambda _: Path("x")))
    assert frozen >= inherited // 2  # the build's objects, out of the worker's collections
    assert gc.get_freeze_count() == 0  # while the build's own are collected as before


def test_page_markers_go_before_the_word_a_page_begins_in_in_page_order() -> None:
    from xml.etree import ElementTree as ET

    from pubkit.engines.pagelist import mark_pages

    root = ET.fromstring(
        '<body xmlns="http://www.w3.org/1999/xhtml"><p>Die Straße führt <img src="a.png" '
        'alt=""/> weiter, über die Brücke.</p></body>'
    )
    # Page 2 begins in the "ss" that "ß" reads as; pages 3 and 4 both begin inside
    # "weiter" (a word broken across a short page); page 5 is nowhere in the text. The
    # starts are reading keys, as layout.page_starts makes them: "ü" reads as "u".
    starts = ["diestra", "sefu", "eiteruber", "teruberdie", "nowhere at all, really"]
    markers, missing = mark_pages(root, starts)
    assert [m.page for m in markers] == [1, 2, 3, 4] and missing == [5]

    def flat(element: ET.Element) -> str:
        text = element.text or ""
        for child in element:
            if child.get("role") == "doc-pagebreak":
                text += f"[{child.get('aria-label')}]"
            else:
                text += "{img}" if child.tag.endswith("img") else flat(child)
            text += child.tail or ""
        return text

    assert flat(root) == "[1]\nDie [2]Straße führt {img} [3][4]weiter, über die Brücke."


def test_the_pdfs_streams_are_deflated_whole_and_only_once() -> None:
    import zlib

    import pydyf
    from pypdf import PdfReader

    from pubkit.engines.weasy import finisher

    pdf = pydyf.PDF()
    content = pydyf.Stream(["BT", b"/F1 12 Tf", pydyf.Dictionary({"MCID": 0}), "(stream) Tj ET"])
    content.compress = True
    image = pydyf.Stream([b"\xff\xd8 jpeg bytes"], {"Filter": "/DCTDecode"})
    pdf.add_object(content)
    pdf.add_object(image)
    finisher()(None, pdf)
    assert not content.compress and content.extra["Filter"] == "/FlateDecode"
    (deflated,) = content.stream
    assert zlib.decompress(deflated) == b"BT\n/F1 12 Tf\n<</MCID 0>>\n(stream) Tj ET"
    assert image.stream == [b"\xff\xd8 jpeg bytes"] and image.extra["Filter"] == "/DCTDecode"
    written = io.BytesIO()
    pdf.write(written, compress=True)
    stored = PdfReader(written).get_object(content.number)
    assert stored.get_data() == b"BT\n/F1 12 Tf\n<</MCID 0>>\n(stream) Tj ET"  # deflated once


def test_a_cover_of_type_keeps_its_colours_in_a_palette() -> None:
    """Type and flat colour are stored with 256 colours, each pixel close to the page's."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageChops
    from weasyprint import HTML

    from pubkit.engines.cover import first_page_png

    pdf = HTML(
        string="<body style='background:#f3efe6;margin:1cm'><h1 style='color:#1d5b8c'>A "
        "heading in the accent</h1><p style='color:#222'>Body text, set small, with "
        "<em style='color:#a33'>a red word</em>.</p></body>"
    ).write_pdf()
    png = Image.open(io.BytesIO(first_page_png(pdf, 800)))
    page = pdfium.PdfDocument(pdf)[0]
    full = page.render(scale=800 / page.get_width()).to_pil().convert("RGB")
    assert png.mode == "P" and png.size == full.size
    assert 256 < len(full.getcolors(maxcolors=4096) or []) <= 4096  # more than a palette holds
    error = ImageChops.difference(png.convert("RGB"), full).convert("L").histogram()
    assert max(value for value, count in enumerate(error) if count) <= 16  # the red word too
    assert sum(value * count for value, count in enumerate(error)) / sum(error) < 1


def test_a_cover_of_few_colours_keeps_each_pixels_own() -> None:
    """A page of no more than 256 colours is stored in a palette of exactly those."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageChops
    from weasyprint import HTML

    from pubkit.engines.cover import first_page_png

    pdf = HTML(
        string="<body style='background:#f3efe6;margin:0'><div style='height:5cm;"
        "background:#1d5b8c'></div><div style='height:3cm;background:#a33'></div></body>"
    ).write_pdf()
    png = Image.open(io.BytesIO(first_page_png(pdf, 600)))
    page = pdfium.PdfDocument(pdf)[0]
    full = page.render(scale=600 / page.get_width()).to_pil().convert("RGB")
    assert png.mode == "P" and len(full.getcolors() or []) <= 256
    assert ImageChops.difference(png.convert("RGB"), full).getbbox() is None


def test_plain_text_walks_any_depth_without_recursing() -> None:
    from pubkit.document.ast import plain_text

    node: Any = {"t": "Para", "c": [{"t": "Str", "c": "deep"}]}
    for _ in range(20_000):  # far beyond Python's recursion limit
        node = {"t": "BlockQuote", "c": [node]}
    text = plain_text([node, {"t": "RawBlock", "c": ["html", "<hr>"]}, {"t": "Plain", "c": []}])
    assert text == "deep" + "\n" * 20_001 + "\n"


@pytest.mark.parametrize(
    ("language", "rate"),
    [
        ("en", 238),
        ("en-GB", 238),
        ("fr", 238),
        ("ar", 144),
        ("he", 195),
        ("zh-Hans", 266),
        ("ja", 373),
    ],
)
def test_reading_rates_follow_the_language(language: str, rate: int) -> None:
    from pubkit.document.metrics import reading_rate

    assert reading_rate(language) == rate


def test_an_arabic_lesson_reads_slower_unless_the_course_sets_a_rate(tmp_path: Path) -> None:
    from conftest import lesson_text, make_project
    from pubkit.check import check
    from pubkit.course.lessons import _figures
    from pubkit.document.markdown import convert

    words = " ".join(["كلمة"] * 600)
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "L", words + "\n")})
    (root / "pubkit.yaml").write_text("course:\n  language: ar\n")
    checked = check(root)
    (lesson,) = checked.manuscripts.lessons
    assert _figures(lesson, convert(lesson, root), checked.config).minutes == 5  # 600 / 144
    (root / "pubkit.yaml").write_text(
        "course:\n  language: ar\nreading:\n  words_per_minute: 300\n"
    )
    checked = check(root)
    assert _figures(lesson, convert(lesson, root), checked.config).minutes == 2


def test_a_page_that_opens_on_a_formula_is_found_in_the_epub() -> None:
    """The PDF draws a formula as an image; the EPUB's MathML is read as one too, so a
    page that begins with one, or a few words before one, still gets its marker."""
    from xml.etree import ElementTree as ET

    from pubkit.engines.pagelist import IMAGE, mark_pages

    root = ET.fromstring(
        '<body xmlns="http://www.w3.org/1999/xhtml"><p>Before. And <math '
        'xmlns="http://www.w3.org/1998/Math/MathML" alttext="x"><mi>x</mi></math> inline '
        "display.</p></body>"
    )
    markers, missing = mark_pages(root, ["before", f"and{IMAGE}inlinedisplay"])
    assert [m.page for m in markers] == [1, 2] and not missing


def test_a_reading_key_drops_the_accents_capitals_drop_and_keeps_indic_vowel_signs() -> None:
    """A Greek header set in capitals has no tonos; the EPUB's text has them: the page
    list still finds the page. Devanagari's vowel signs stay part of the word."""
    from pubkit.engines.pagelist import reading_key

    assert reading_key("ΕΝΟΤΗΤΑ 1 · ΚΥΜΑΤΑ ΚΑΙ ΤΑΛΑΝΤΩΣΕΙΣ") == reading_key(
        "Ενότητα 1 · Κύματα και ταλαντώσεις"
    )
    assert reading_key("Café") == reading_key("CAFE")
    assert reading_key("कि") != reading_key("क")
    assert reading_key("ஒலி") != reading_key("ஒல")


def test_a_greek_course_speaks_greek() -> None:
    from pubkit.sources.config import builtin_styles
    from pubkit.sources.theme import load_theme

    words = load_theme(builtin_styles()).words("el")
    assert (words["module"], words["lesson"], words["exercise"]) == ("Ενότητα", "Μάθημα", "Άσκηση")
    assert words["pages"] == ["{n} σελίδα", "{n} σελίδες"]


def test_every_language_of_the_theme_has_every_word_english_has() -> None:
    theme = load_theme(builtin_styles())
    english = set(theme.strings["en"])
    for tag, words in theme.strings.items():
        assert set(words) == english, tag
        for key in ("lessons", "pages", "words", "minutes", "modules"):
            assert all("{n}" in form for form in words[key]), (tag, key)
    for tag, module, lesson in [
        ("it", "Modulo", "Lezione"),
        ("pt-BR", "Módulo", "Lição"),
        ("th", "โมดูล", "บทเรียน"),
        ("vi", "Học phần", "Bài"),
        ("bn", "মডিউল", "পাঠ"),
        ("mr", "मॉड्यूल", "धडा"),
        ("ta-IN", "தொகுதி", "பாடம்"),
    ]:
        words = theme.words(tag)
        assert (words["module"], words["lesson"]) == (module, lesson), tag


def test_a_language_without_strings_is_named_once_where_it_is_first_used(tmp_path: Path) -> None:
    """A Telugu lesson's header speaks English (the theme has no Telugu words): said once,
    at its front matter's line, an error under --strict; Italian, which it has, is not."""
    from conftest import make_project
    from pubkit.check import check

    def lesson(number: int, language: str) -> str:
        return f"---\nlesson: {number}\ntitle: A Lesson\nlanguage: {language}\n---\n\nWords.\n"

    root = make_project(
        tmp_path,
        {"01-a.md": lesson(1, "te"), "02-b.md": lesson(2, "te"), "03-c.md": lesson(3, "it")},
    )
    said = [str(w) for w in check(root).warnings]
    assert len(said) == 1, said
    assert said[0].startswith(str(root / "manuscript/01-module/01-a.md") + ":4: warning:")
    assert "no strings for 'te'" in said[0]
    with pytest.raises(ConfigError, match="no strings for 'te'"):
        check(root, strict=True)
    (root / "pubkit.yaml").write_text("course:\n  title: T\n  language: sw\n", encoding="utf-8")
    said = [str(w) for w in check(root).warnings]
    assert len(said) == 2 and said[0].startswith(str(root / "pubkit.yaml") + ":3: warning:"), said


def test_thai_counts_its_words_not_its_space_separated_phrases() -> None:
    """Thai puts no space between words: "career growth takes patience" is one run of
    letters, and used to count as one word (a Thai lesson read in a minute)."""
    phrase = "การเติบโตในอาชีพต้องใช้ความอดทน"  # growth in a career takes patience
    assert count_words(phrase) >= 7
    assert count_words(phrase + " and English") == count_words(phrase) + 2
    assert count_words("ไทย") == 1


def test_weasyprints_c_libraries_are_found_as_ctypes_finds_them() -> None:
    """From ldconfig's list, read once: the names ctypes finds, the same files; a name
    that is none (WeasyPrint's Windows names) not found, without probing with a compiler."""
    import ctypes.util

    from pubkit.engines import libraries

    libraries.install()
    for name in (*libraries.NEEDED, "harfbuzz-subset", "z"):
        assert ctypes.util.find_library(name) == ctypes.util._findSoname_ldconfig(name), name
        assert ctypes.util.find_library(name), name
    assert ctypes.util.find_library("libgobject-2.0-0") is None
    assert ctypes.util.find_library("harfbuzz-vector-0.0") is None


def test_pandoc_json_nested_deeper_than_orjson_goes_is_left_to_the_json_module() -> None:
    """orjson writes 254 levels and reads 1024; an author's deeper nesting is written and
    read by the json module, as before orjson."""
    import json
    import sys

    from pubkit.document.pandoc import json_bytes, json_value

    value: Any = {"t": "Str", "c": "deep"}
    for _ in range(300):
        value = {"t": "BlockQuote", "c": [value]}
    written = json_bytes(value, sort_keys=True)
    assert written == json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    assert json_value(written) == value
    assert json_bytes({"b": 1, "a": [2]}, sort_keys=True) == b'{"a":[2],"b":1}'
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        deeper = json_value(b"[" * 1500 + b"]" * 1500)
    finally:
        sys.setrecursionlimit(limit)
    depth = 0
    while deeper:
        deeper, depth = deeper[0], depth + 1
    assert depth == 1499
