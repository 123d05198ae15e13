"""A closed font world: type is set with the theme's fonts and its fallbacks alone, never
the machine's, and a character none of them has is reported once, at its line."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fontTools.ttLib import TTFont

from conftest import lesson_text, make_project
from pdfinfo import fonts, page_texts
from pubkit.build import build
from pubkit.course.validate import run_epubcheck
from pubkit.sources.config import builtin_styles
from pubkit.sources.theme import load_theme

SYMBOLS = "## Lists\n\n- one\n    - two: x ∈ A → B ★ ✓\n        - three\n"
#: Egyptian hieroglyph A001: in no font of the theme.
HIEROGLYPH = "\U00013000"


def test_symbols_and_list_markers_come_from_the_theme_and_nothing_else(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "Symbols", SYMBOLS)})
    result = build(root, formats=["pdf", "epub"])
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    pdf = root / "build/pdf/01-module/01-l.pdf"
    used = fonts(pdf)
    assert set(used) >= {"Noto-Serif", "Noto-Sans-Math", "Noto-Sans-Symbols2"}, used
    assert all(name.startswith("Noto-") for name in used), used  # no DejaVu, no machine font
    assert "x ∈ A → B ★ ✓" in page_texts(pdf)[0]
    epub = root / "build/epub/01-module/01-l.epub"
    with zipfile.ZipFile(epub) as archive:
        embedded = {Path(n).name for n in archive.namelist() if n.endswith(".ttf")}
        css = archive.read("EPUB/styles/stylesheet1.css").decode()
    assert {"NotoSansMath-Regular.ttf", "NotoSansSymbols2-Regular.ttf"} <= embedded
    assert '"Noto Serif", "Noto Sans Math", "Noto Sans Symbols2", serif' in css
    messages = run_epubcheck(epub)
    assert not messages, messages


def test_fallback_fonts_are_embedded_only_where_the_text_needs_them(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "Plain", "Only words.\n")})
    assert build(root, formats=["epub"]).ok
    with zipfile.ZipFile(root / "build/epub/01-module/01-l.epub") as archive:
        names = archive.namelist()
        css = archive.read("EPUB/styles/stylesheet1.css").decode()
    assert not [n for n in names if "Math" in n or "Symbols" in n]
    assert "NotoSansMath" not in css  # no @font-face for a file that is not there
    assert not list((root / "build/assets/fonts").glob("NotoSans[MS][ay]*"))


def test_a_character_no_font_has_is_reported_once_at_its_first_line(tmp_path: Path) -> None:
    body = f"Plain words.\n\nA sign {HIEROGLYPH} and ꀀ here.\n\nAgain {HIEROGLYPH}.\n"
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "Glyphs", body)})
    result = build(root)  # every edition
    assert result.ok
    problems = [d for d in result.diagnostics if "glyph" in d.message]
    assert [(d.line, d.is_error) for d in problems] == [(8, False)]
    assert problems[0].message == (
        f"2 characters have no glyph in the theme's fonts: {HIEROGLYPH} (U+13000), ꀀ (U+A000)"
    )
    assert not [d for d in result.diagnostics if "notdef" in d.message]
    strict = build(root, strict=True, force=True)
    assert not strict.ok
    assert [d.line for d in strict.diagnostics if d.is_error and "glyph" in d.message] == [8]


def test_a_character_in_the_title_is_reported_at_the_title(tmp_path: Path) -> None:
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, f"Title {HIEROGLYPH}")})
    result = build(root, formats=["pdf"])
    (problem,) = [d for d in result.diagnostics if "glyph" in d.message]
    assert problem.line == 3 and problem.message.startswith("1 character has no glyph")


def _intruder(folder: Path) -> None:
    """A machine font that would win if pubkit let the machine's fonts in: it has the
    Yi syllable no theme font has (drawn as an A)."""
    font = TTFont(builtin_styles() / "fonts/NotoSans-Regular.ttf")
    for record in font["name"].names:
        if record.nameID in (1, 4, 6, 16):
            record.string = "Intruder Sans"
    for table in font["cmap"].tables:
        if table.isUnicode():
            table.cmap[0xA000] = table.cmap[ord("A")]
    folder.mkdir()
    font.save(folder / "Intruder.ttf")


def _build_on_a_machine(tmp_path: Path, name: str, font_folder: Path | None) -> dict[str, bytes]:
    """The lesson's PDFs, built by the real command under a fontconfig configuration that
    stands for a machine: with no fonts at all, or with ``font_folder``'s."""
    body = "Words, a list marker ◦ and a Yi syllable ꀀ.\n\n- a\n    - b\n"
    root = make_project(tmp_path / name, {"01-l.md": lesson_text(1, "Fonts", body)})
    conf = tmp_path / f"{name}.conf"
    folders = f"<dir>{font_folder}</dir>" if font_folder else ""
    conf.write_text(f'<?xml version="1.0"?><fontconfig>{folders}</fontconfig>')
    env = {**os.environ, "FONTCONFIG_FILE": str(conf), "SOURCE_DATE_EPOCH": "1767225600"}
    done = subprocess.run(
        [sys.executable, "-m", "pubkit", "build", "--format", "pdf,handout"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ꀀ (U+A000)" in done.stderr and "notdef" not in done.stderr
    assert "FontConfig" not in done.stderr  # WeasyPrint's warning about a machine without fonts
    return {
        path.relative_to(root / "build").as_posix(): path.read_bytes()
        for path in sorted((root / "build").glob("*/01-module/*.pdf"))
    }


def test_the_machines_fonts_never_change_a_byte(tmp_path: Path) -> None:
    _intruder(tmp_path / "intruder-fonts")
    bare = _build_on_a_machine(tmp_path, "bare", None)
    intruded = _build_on_a_machine(tmp_path, "intruded", tmp_path / "intruder-fonts")
    assert sorted(bare) == ["handout/01-module/01-l.pdf", "pdf/01-module/01-l.pdf"]
    assert bare == intruded
    used = fonts(tmp_path / "intruded/build/pdf/01-module/01-l.pdf")
    assert all(name.startswith("Noto-") for name in used), used


SCRIPTS = {
    "Noto-Serif-Devanagari": "हिन्दी एक भारतीय भाषा है।",
    "Noto-Naskh-Arabic": "اللغة العربية لغة جميلة.",
    "Noto-Serif-Hebrew": "עברית היא שפה.",
    "Noto-Serif-Thai": "ภาษาไทยเป็นภาษาที่สวยงาม",
    "Noto-Serif-Bengali": "বাংলা ভাষা",
    "Noto-Serif-Tamil": "தமிழ் மொழி",
    "Noto-Serif-Telugu": "తెలుగు భాష",
    "Noto-Serif-Armenian": "Հայերեն լեզու",
    "Noto-Serif-Georgian": "ქართული ენა",
    "Noto-Sans-Ethiopic": "አማርኛ ቋንቋ",
    "Noto-Sans-Khmer": "ភាសាខ្មែរ",
    "Noto-Sans-Lao": "ພາສາລາວ",
    "Noto-Sans-Myanmar": "မြန်မာဘာသာ",
    "Noto-Sans-Sinhala": "සිංහල භාෂාව",
}


def test_each_script_is_set_with_the_themes_font_for_it(tmp_path: Path) -> None:
    body = "".join(f"## {name}\n\n{text} **{text}**\n\n" for name, text in SCRIPTS.items())
    root = make_project(tmp_path, {"01-l.md": lesson_text(1, "Scripts", body)})
    result = build(root, formats=["pdf", "handout", "epub"])
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    used = fonts(root / "build/pdf/01-module/01-l.pdf")
    for family in SCRIPTS:  # the serif's own, in regular and bold, for body text
        assert {family, f"{family}-Bold"} <= set(used), (family, used)
    assert all(name.startswith("Noto-") for name in used), used
    text = " ".join(page_texts(root / "build/pdf/01-module/01-l.pdf"))
    assert "עברית היא שפה" in text and "ภาษาไทย" in text
    epub = root / "build/epub/01-module/01-l.epub"
    assert not run_epubcheck(epub)
    with zipfile.ZipFile(epub) as archive:
        embedded = {Path(n).name for n in archive.namelist() if n.endswith(".ttf")}
    assert {"NotoSerifDevanagari-Regular.ttf", "NotoNaskhArabic-Bold.ttf"} <= embedded


def test_a_lesson_sets_the_danda_and_minus_in_its_own_scripts_font(tmp_path: Path) -> None:
    """The danda (।) and the minus sign are in the Devanagari fonts too, listed before the
    other Indic scripts' fonts: a Bengali or Punjabi lesson sets them in its own script's
    font, as its words, not in a Devanagari one."""
    lessons = {
        "01-bn.md": "---\nlesson: 1\ntitle: গণিত\nlanguage: bn\n---\n\n"
        "নিশ্চায়ক ধনাত্মক হলে দুটি মূল থাকে। মান −৫।\n",
        "02-pa.md": "---\nlesson: 2\ntitle: ਗਣਿਤ\nlanguage: pa\n---\n\n"
        "ਇਹ ਪੰਜਾਬੀ ਵਿੱਚ ਇੱਕ ਵਾਕ ਹੈ। ਮੁੱਲ −੫।\n",
    }
    root = make_project(tmp_path, lessons)
    result = build(root, formats=["pdf"])
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    for name, script in (("01-bn", "Bengali"), ("02-pa", "Gurmukhi")):
        pdf = root / f"build/pdf/01-module/{name}.pdf"
        used = set(fonts(pdf))
        assert f"Noto-Serif-{script}" in used, used
        assert not [font for font in used if "Devanagari" in font], (name, used)
        assert "।" in page_texts(pdf)[0]


def _render_in_child(text: str, connection) -> None:  # type: ignore[no-untyped-def]
    from pubkit.editions import EDITIONS
    from pubkit.engines.glyphs import faces_for
    from pubkit.engines.weasy import Resources, lay_out, stylesheet, write_pdf
    from pubkit.sources.theme import load_theme

    theme = load_theme(builtin_styles())
    edition = EDITIONS["pdf"]
    css = stylesheet(theme, edition.stylesheets, "pdf", "A4", "", faces_for(theme, text))
    document = lay_out(f"<main><p>{text}</p></main>", css, Resources.of_theme(theme))
    connection.send(write_pdf(document))
    connection.close()


def test_workers_forked_from_one_build_each_register_the_fonts_they_add(
    tmp_path: Path,
) -> None:
    """Workers inherit WeasyPrint's font folder from the build: a second worker adding a
    script's font that a first one added already must still register it for itself."""
    import multiprocessing

    from pubkit.engines.glyphs import primary_faces
    from pubkit.engines.weasy import stylesheet
    from pubkit.sources.theme import load_theme

    theme = load_theme(builtin_styles())
    stylesheet(theme, ("base.css",), "pdf", "A4", "", primary_faces(theme))  # the build warm
    context = multiprocessing.get_context("fork")
    outputs = []
    for _ in range(2):  # one after the other: the second finds the first one's files
        receiving, sending = context.Pipe(duplex=False)
        child = context.Process(
            target=_render_in_child, args=(SCRIPTS["Noto-Serif-Tamil"], sending)
        )
        child.start()
        outputs.append(receiving.recv())
        child.join()
    for number, data in enumerate(outputs):
        pdf = tmp_path / f"{number}.pdf"
        pdf.write_bytes(data)
        assert "Noto-Serif-Tamil" in fonts(pdf), (number, fonts(pdf))
    assert outputs[0] == outputs[1]


CJK = [
    ("ja", "プログラミングは技能です。", "JP", "ページ"),
    ("zh-Hans", "编程是一种技能。", "SC", "页"),
    ("zh-TW", "程式設計是一種技能。", "TC", "頁"),
    ("ko", "프로그래밍은 기술입니다.", "KR", "쪽"),
]


@pytest.mark.parametrize(("language", "text", "region", "pages_word"), CJK)
def test_chinese_japanese_and_korean_take_their_regions_fonts_and_words(
    tmp_path: Path, language: str, text: str, region: str, pages_word: str
) -> None:
    """The body in the region's serif (Noto Serif CJK, as the theme's Latin body is
    serif), the headings and header in its sans, and no other region's fonts."""
    body = f"## {text}\n\n{text} **{text}**\n"
    lesson = lesson_text(1, text, body).replace("---\n\n", f"language: {language}\n---\n\n", 1)
    root = make_project(tmp_path, {"01-l.md": lesson})
    result = build(root, formats=["pdf", "epub"])
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    used = fonts(root / "build/pdf/01-module/01-l.pdf")
    for design in ("Sans", "Serif"):
        prefix = f"Noto-{design}-"
        cjk = {n for n in used if n.startswith(prefix) and n[len(prefix) :][:2].isupper()}
        font = f"{prefix}{region}"
        assert cjk == {font, f"{font}-Bold"}, used  # the region's forms, no other region's
    epub = root / "build/epub/01-module/01-l.epub"
    with zipfile.ZipFile(epub) as archive:
        chapter = archive.read("EPUB/text/ch001.xhtml").decode()
    assert pages_word in chapter  # the header speaks the lesson's language
    assert not run_epubcheck(epub)


def test_a_span_takes_the_han_forms_of_its_own_language(tmp_path: Path) -> None:
    """A Japanese quotation, a Traditional Chinese and a Korean one in a Simplified Chinese
    lesson: each in its region's font (the same characters, their regional forms), in the
    PDF and the EPUB; the lesson's own text and headings in the Simplified forms."""
    body = (
        "## 同一个字\n\n简体：直骨角。[直骨角，日本の字形。]{lang=ja}\n\n"
        "[直骨角]{lang=zh-Hant} 与 [直骨角]{lang=ko}。\n"
    )
    lesson = lesson_text(1, "字形", body).replace("---\n\n", "language: zh\n---\n\n", 1)
    root = make_project(tmp_path, {"01-l.md": lesson})
    result = build(root, formats=["pdf", "epub"])
    assert result.ok and not result.diagnostics, [str(d) for d in result.diagnostics]
    used = set(fonts(root / "build/pdf/01-module/01-l.pdf"))
    assert {"Noto-Serif-SC", "Noto-Sans-SC-Bold", "Noto-Serif-JP", "Noto-Serif-TC"} <= used, used
    assert "Noto-Serif-KR" in used and "Noto-Serif-JP-Bold" not in used  # only what is set
    epub = root / "build/epub/01-module/01-l.epub"
    with zipfile.ZipFile(epub) as archive:
        embedded = {Path(n).name for n in archive.namelist() if n.endswith(".otf")}
        css = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".css"))
    assert {"NotoSerifJP-Regular.otf", "NotoSerifHant-Regular.otf"} <= embedded
    assert (
        ':is([lang|="ja"]):not(h1, h2, h3, h4, h5, h6) { font-family: "Noto Serif", "Noto Serif JP"'
        in css
    )
    assert not run_epubcheck(epub)


def test_an_urdu_lesson_reads_back_in_urdu(scripts_build: Path) -> None:
    """An Urdu lesson: right to left, its header in Urdu, in Naskh (whose glyphs each read
    back as their letter: a Nastaliq font's shared letter skeletons would not), and its
    text read back from the PDF as written."""
    pdf = scripts_build / "pdf/01-languages/05-urdu.pdf"
    used = fonts(pdf)
    assert {"Noto-Naskh-Arabic", "Noto-Naskh-Arabic-Bold"} <= set(used), used
    text = " ".join(" ".join(page_texts(pdf)).split())
    assert "لکھا ہوا ایک سبق" in text and "اہم نکات" in text and "الفاظ" in text


def test_tamil_text_is_set_in_its_own_font_with_its_spaces_and_full_stops() -> None:
    """Tamil leads its stacks in a Tamil lesson or span: set after the Latin serif, the
    spaces and full stops after a word ending in a pulli (்) were lost in WeasyPrint
    ("திறன். சிறிய" drawn as "திறன்சிறிய"); the Tamil font has its own."""
    theme = load_theme(builtin_styles())
    serif = theme.properties("pdf", "A4", language="ta")["font-serif"]
    assert serif.startswith('"Noto Serif Tamil", "Noto Serif", ')
    assert theme.properties("pdf", "A4", language="en")["font-serif"].startswith('"Noto Serif", ')
    rule = theme.regional_css(frozenset({"Noto Serif Tamil"}))
    assert ':is([lang|="ta"]):not(h1, h2, h3, h4, h5, h6) { font-family: "Noto Serif Tamil"' in rule


def test_layouts_of_one_font_share_its_pango_setup_and_set_the_same_bytes() -> None:
    """pubkit.engines.pangosetup gives layouts of the same font one Pango context,
    description and metrics, and the PDF is byte for byte WeasyPrint's own: underlined
    and struck text (metrics), small caps, bold and italic, features and spacing, Arabic
    right to left and Hindi (the context's direction and language)."""
    from weasyprint.text import line_break

    from pubkit.editions import EDITIONS
    from pubkit.engines import pangosetup
    from pubkit.engines.glyphs import faces_for, languages_in
    from pubkit.engines.weasy import Resources, lay_out, stylesheet, write_pdf

    html = (
        "<p>Plain <a href='https://example.org' style='text-decoration:underline'>linked</a>"
        " <s>struck</s> <span style='font-variant:small-caps'>Small Caps</span> <b>bold</b>"
        " <i>italic</i> <code>code()</code></p>"
        "<p dir='rtl' lang='ar'>مرحبا بالعالم، <u>نص مسطر</u></p><p lang='hi'>नमस्ते दुनिया</p>"
        "<p style='font-feature-settings:\"liga\" 0;letter-spacing:1px;font-size:7pt'>"
        "office flight, final fifty</p>" * 3
    )
    theme = load_theme(builtin_styles())
    faces = faces_for(theme, html, "en", languages_in(html))
    css = stylesheet(theme, EDITIONS["pdf"].stylesheets, "pdf", "A4", "", faces, "en")
    resources = Resources.of_theme(theme)
    made: list[object] = []
    shared = pangosetup._shared

    def counted(style: object) -> object:
        made.append(style)
        return shared(style)

    setups: list[object] = []

    def setup(layout: object, style: object) -> None:
        setups.append(style)
        pangosetup.setup(layout, style)

    try:
        line_break.Layout.setup = pangosetup.weasyprint_setup
        own = write_pdf(lay_out(html, css, resources), None)
        pangosetup._SHARED.clear()
        line_break.Layout.setup, pangosetup._shared = setup, counted
        kept = write_pdf(lay_out(html, css, resources), None)
    finally:
        pangosetup._shared = shared
        pangosetup.install()
    assert kept == own
    assert len(setups) > 5 * len(made) > 0  # many layouts, few fonts


def test_lines_drawn_from_their_own_layouts_set_the_same_bytes() -> None:
    """pubkit.engines.pangosetup draws a line of one piece from the layout it was laid
    out in, and the PDF is byte for byte what WeasyPrint's drawing from a new layout
    makes: justified lines (respaced when drawn), letter and word spacing, hyphenation,
    an ellipsis, preformatted lines and tabs, Arabic, Japanese, Hindi; and a document
    drawn twice."""
    from weasyprint.text import line_break

    from pubkit.editions import EDITIONS
    from pubkit.engines import pangosetup
    from pubkit.engines.glyphs import faces_for, languages_in
    from pubkit.engines.weasy import Resources, lay_out, stylesheet, write_pdf

    words = "A line of words, set and hyphenated as its language asks for them. " * 6
    html = (
        f"<p style='text-align:justify;hyphens:auto' lang='en'>{words}</p>"
        f"<p style='letter-spacing:2px;word-spacing:4px'>{words}</p>"
        "<p style='white-space:nowrap;overflow:hidden;text-overflow:ellipsis'>"
        f"{words}</p><pre>def f(x):\n\treturn x  # tab\n\n    pass</pre>"
        "<p dir='rtl' lang='ar' style='text-align:justify'>"
        + "مرحبا بالعالم، هذا نص عربي طويل يلتف على عدة أسطر. " * 5
        + "</p><p lang='ja'>"
        + "プログラミングとは、はっきりとした指示を書くことです。" * 4
        + "</p><p lang='hi'>"
        + "नमस्ते दुनिया, यह एक लंबा वाक्य है जो कई पंक्तियों में जाता है। " * 4
        + "</p>"
    )
    theme = load_theme(builtin_styles())
    faces = faces_for(theme, html, "en", languages_in(html))
    css = stylesheet(theme, EDITIONS["pdf"].stylesheets, "pdf", "A4", "", faces, "en")
    resources = Resources.of_theme(theme)
    kept: list[bool] = []

    def reactivate(layout: object, style: object) -> None:
        kept.append(isinstance(getattr(layout, "laid_out", None), tuple))
        pangosetup.reactivate(layout, style)

    try:
        line_break.Layout.deactivate = pangosetup.weasyprint_deactivate
        line_break.Layout.reactivate = pangosetup.weasyprint_reactivate
        own = write_pdf(lay_out(html, css, resources), None)
        pangosetup.install()
        line_break.Layout.reactivate = reactivate
        document = lay_out(html, css, resources)
        drawn = write_pdf(document, None)
        again = write_pdf(document, None)
    finally:
        pangosetup.install()
    assert drawn == own and again == own
    # Most lines drawn from their own layouts the first time; justified ones not.
    first = kept[: len(kept) // 2]
    assert first.count(True) > len(first) / 2 and not all(first)
    assert not any(kept[len(kept) // 2 :])  # a second drawing makes its own
