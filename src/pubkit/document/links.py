"""Turn the links an author wrote into links that hold in every edition.

Authors link as they would between files: ``[next](02-next.md#second)``,
``[career](../09-x/50-career.md)``, ``[about](/about/)``, ``[terms](#terms)``. Read by
:func:`resolve`, each link is checked against the course (:class:`Course`) and becomes:

- a **lesson link**, when it leads to another lesson's manuscript: its ``href`` is the
  form a lesson's PDF holds (:func:`pdf_href`: the other lesson's PDF beside it, or its
  address under ``course.url``), and its :data:`LESSON` attribute names the lesson and
  section, so that the EPUB (:func:`epub_blocks`) and a module's collection
  (:mod:`pubkit.course.modulebook`) give it the best form they can hold;
- an **absolute link**, when it leaves the course (``/about/``, ``notes/page.html``) and
  the course has a public address; without one, its words stay, unlinked, with a warning;
- left alone, when it is a web or mail address, or a section of the lesson itself that
  exists; a missing section is a warning, and its words stay unlinked.

A link to a lesson or section that does not exist is an error at its line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

from pubkit.document.ast import identifiers, replaced, walk
from pubkit.document.sanitize import START_TAG, is_raw_html
from pubkit.errors import Diagnostic, error, warning
from pubkit.sources.manuscript import Lesson

#: The id of a lesson's title in every edition (a link to the lesson itself leads there).
TITLE_ID = "lesson-title"
#: The attribute of a lesson link: the lesson's id, and ``#section`` when it has one.
LESSON = "data-lesson"
#: A link to another PDF file, as WeasyPrint is given it: it keeps an address of a scheme
#: it does not know as it is, and :func:`pubkit.engines.weasy.finisher` makes it a PDF
#: "go to another file" action (``/GoToR``) to the named destination of the section.
PDF_FILE = "pubkit-file:"
#: A link, in a lesson's pages as its module's book sets them, to a place elsewhere in that
#: book: :func:`pubkit.engines.weasy.finisher` makes it a link to the named destination,
#: which the lesson's own pages do not have but the assembled book does.
BOOK_LINK = "pubkit-book:"
_HREF = re.compile(r'(?<=\s)href="([^"]*)"')
_LESSON_ATTRIBUTE = re.compile(rf'\s{LESSON}="([^"]*)"')


@dataclass(frozen=True)
class Target:
    """A lesson as links from other lessons see it."""

    #: ``<module-folder>/<stem>``, as :attr:`pubkit.sources.manuscript.Lesson.id`.
    id: str
    number: int
    title: str
    module_number: int
    module_title: str
    #: The identifiers its sections and elements have; None when no link needs them.
    sections: frozenset[str] | None = None

    @property
    def module(self) -> str:
        return self.id.split("/")[0]

    @property
    def stem(self) -> str:
        return self.id.split("/")[1]


@dataclass(frozen=True)
class Course:
    """What a lesson's links can lead to."""

    #: The project's folder and its manuscripts' (resolved).
    root: Path
    manuscripts: Path
    #: ``course.url``: where the output folder is published (ends in ``/``), or None.
    url: str | None
    #: Every lesson, by its manuscript's resolved path.
    lessons: Mapping[Path, Target]
    #: The output folder a lesson PDF's link leads to, under ``url``: ``pdf`` or ``handout``.
    pdf_folder: str = "pdf"

    def published(self, relative: str) -> str | None:
        """The public address of output ``relative`` (``pdf/01-x/02-y.pdf``), if any."""
        return urljoin(self.url, quote(relative)) if self.url else None


def lone_course(lesson: Lesson, root: Path) -> Course:
    """The course of a lesson read by itself: a link to another lesson is an error, as
    there is none."""
    return Course(root.resolve(), lesson.path.parent.parent.resolve(), None, {})


def pdf_href(course: Course, target: Target, section: str = "") -> str:
    """Where a lesson PDF's link to ``target`` leads: its public address, else the PDF
    beside it (``../01-basics/02-next.pdf``, in the same edition's folder)."""
    fragment = f"#{section}" if section else ""
    relative = f"{target.module}/{target.stem}.pdf"
    if public := course.published(f"{course.pdf_folder}/{relative}"):
        return public + fragment
    return f"{PDF_FILE}../{relative}{fragment}"


def book_anchor(number: int) -> str:
    """Lesson ``number``'s id in its module's collection: ``lesson-7``. Lesson numbers are
    unique in a module, and every id of the lesson's own becomes ``lesson-7-…``: one
    hyphen more than any anchor, so never another lesson's anchor, whatever its file is
    called."""
    return f"lesson-{number}"


def book_href(
    targets: Mapping[str, Target], course: Course, own_module: str, lesson: str, section: str
) -> str:
    """Where a link to ``lesson`` (``#section``) leads in a module's collected PDF: in a
    lesson of the same module, its place in the same book (:data:`BOOK_LINK`); in
    another module's, its place in that module's collected PDF beside it."""
    target = targets[lesson]
    place = book_anchor(target.number) + (f"-{section}" if section else "")
    if target.module == own_module:
        return BOOK_LINK + place
    file = f"{target.module}.pdf"
    public = course.published(f"collections/{file}")
    return f"{public}#{place}" if public else f"{PDF_FILE}{file}#{place}"


def lesson_link(node: Mapping[str, Any]) -> tuple[str, str] | None:
    """A Link element's lesson and section, when it is a lesson link."""
    if node["t"] != "Link":
        return None
    for name, value in node["c"][0][2]:
        if name == LESSON:
            lesson, _, section = value.partition("#")
            return lesson, section
    return None


def _unlink(node: dict[str, Any]) -> None:
    """The link's words, in place of the link."""
    attr, inlines, _ = node["c"]
    node["t"], node["c"] = "Span", [attr, inlines]


def resolve(
    blocks: list[Any], lesson: Lesson, course: Course, line_of: Callable[[str], int | None]
) -> tuple[dict[str, Target], list[Diagnostic], list[Diagnostic]]:
    """Check and rewrite, in place, every link in ``blocks``, Markdown's and raw HTML's
    (see the module's text).

    Returns the lessons linked to, the errors (a lesson or section that does not exist)
    and the warnings (a missing section of this lesson, a link out of a course without
    a public address).
    """
    own = identifiers(blocks)
    targets: dict[str, Target] = {}
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []

    def follow(href: str) -> tuple[str, str | None] | None:
        """The link's new ``href`` and :data:`LESSON` value; None: its words, unlinked.
        The same link when it stays as written."""
        outcome = _classify(href, lesson, course, own)
        if isinstance(outcome, Target):
            targets[outcome.id] = outcome
            section = unquote(urlsplit(href).fragment)
            value = f"{outcome.id}#{section}" if section else outcome.id
            return pdf_href(course, outcome, section), value
        if isinstance(outcome, _Fault):
            if outcome.fatal:
                errors.append(error(lesson.path, line_of(href), outcome.why))
                return href, None
            warnings.append(warning(lesson.path, line_of(href), outcome.why))
            return None
        return (href if outcome is None else outcome), None

    def raw_tag(match: re.Match[str]) -> str:
        start = match[0]
        if not start.lower().startswith("<a ") or not (found := _HREF.search(start)):
            return start
        before, after = start[: found.start()], start[found.end() :]
        if (followed := follow(found[1])) is None:
            return before.rstrip() + after
        href, value = followed
        marked = f' {LESSON}="{value}"' if value else ""
        return f'{before}href="{href}"{marked}{after}'

    for node in walk(blocks):
        if node["t"] == "Link":
            followed = follow(node["c"][2][0])
            if followed is None:
                _unlink(node)
                continue
            href, value = followed
            node["c"][2] = [href, node["c"][2][1]]
            if value:
                attr = node["c"][0]
                node["c"][0] = [attr[0], attr[1], [*attr[2], [LESSON, value]]]
        elif is_raw_html(node):
            node["c"][1] = START_TAG.sub(raw_tag, node["c"][1])
    return targets, errors, warnings


@dataclass(frozen=True)
class _Fault:
    why: str
    #: An error (the lesson fails); else a warning, and the link's words stay unlinked.
    fatal: bool


def _classify(
    href: str, lesson: Lesson, course: Course, own: set[str]
) -> Target | _Fault | str | None:
    """What link ``href`` is: a lesson (its target), a fault, a new address, or None when
    it stays as written."""
    parts = urlsplit(href)
    section = unquote(parts.fragment)
    if parts.scheme or parts.netloc or not href:
        return None  # a web, mail or phone address (pubkit.document.sanitize removed the rest)
    if not parts.path:  # a section of this lesson
        if section and section not in own:
            return _Fault(f"link to “#{section}”: this lesson has no such section", fatal=False)
        return None
    path = unquote(parts.path)
    resolved = (lesson.path.parent / path).resolve() if not path.startswith("/") else None
    if resolved == lesson.path.resolve():  # the lesson itself: a section of it, or its top
        if section and section not in own:
            return _Fault(f"link to “{href}”: this lesson has no section “#{section}”", False)
        return f"#{section}" if section else f"#{TITLE_ID}"
    target = course.lessons.get(resolved) if resolved else None
    if target is not None:
        if section and target.sections is not None and section not in target.sections:
            lesson_named = f"lesson {target.number} “{target.title}”"
            return _Fault(f"link to “{href}”: {lesson_named} has no section “#{section}”", True)
        return target
    if (
        resolved
        and resolved.suffix.lower() == ".md"
        and resolved.is_relative_to(course.manuscripts)
    ):
        return _Fault(f"link to “{href}”: no such lesson in this course", fatal=True)
    if course.url:
        # The manuscript folder stands for the course's address: relative links keep
        # their place under it, and a root-relative one is the site's.
        base = urljoin(
            course.url, quote(lesson.path.resolve().relative_to(course.manuscripts).as_posix())
        )
        return urljoin(base, href)
    return _Fault(
        f"link to “{href}” leads outside the course; its words are kept unlinked "
        "(set course.url in pubkit.yaml to link it to the published course)",
        fatal=False,
    )


def fallback_words(target: Target, own_module: str, words: Mapping[str, str]) -> str:
    """The words that stand for a lesson link where it cannot lead anywhere: `` (Lesson 2:
    The Next Step)``, naming the module when it is another."""
    where = f"{words['lesson']} {target.number}: {target.title}"
    if target.module != own_module:
        where = f"{words['module']} {target.module_number}, {where}"
    return f" ({where})"


def epub_blocks(
    blocks: list[Any],
    targets: Mapping[str, Target],
    course: Course,
    own_module: str,
    words: Mapping[str, str],
    inside: Callable[[Target, str], str | None] = lambda _target, _section: None,
) -> list[Any]:
    """``blocks`` (left as they are) with every lesson link in the form an EPUB can hold:
    ``inside`` a book (a module's collection) the place ``inside`` gives; else the lesson's
    public PDF when the course has an address; else its words followed by the lesson's
    number and title (:func:`fallback_words`), unlinked."""
    if not targets:
        return blocks

    def href(lesson: str, section: str) -> str | None:
        target = targets[lesson]
        if (place := inside(target, section)) is not None:
            return place
        public = pdf_href(course, target, section)
        return None if public.startswith(PDF_FILE) else public

    def lowered(node: dict[str, Any]) -> dict[str, Any] | None:
        if is_raw_html(node):
            return {**node, "c": [node["c"][0], lower_html(node["c"][1], href)]}
        if (link := lesson_link(node)) is None:
            return None
        (ident, classes, pairs), inlines, (_, title) = node["c"]
        attr = [ident, classes, [pair for pair in pairs if pair[0] != LESSON]]
        if (place := href(*link)) is not None:
            return {"t": "Link", "c": [attr, inlines, [place, title]]}
        after = {"t": "Str", "c": fallback_words(targets[link[0]], own_module, words)}
        return {"t": "Span", "c": [attr, [*inlines, after]]}

    result: list[Any] = replaced(blocks, lowered)
    return result


def lower_html(html: str, href: Callable[[str, str], str | None]) -> str:
    """``html`` with each lesson link's ``href`` the one ``href(lesson, section)`` gives
    (none: the link's words, unlinked) and its :data:`LESSON` attribute gone."""

    def tag(match: re.Match[str]) -> str:
        start = match[0]
        if not (marked := _LESSON_ATTRIBUTE.search(start)):
            return start
        lesson, _, section = marked[1].partition("#")
        start = start[: marked.start()] + start[marked.end() :]
        place = href(lesson, section)
        if place is None:
            return _HREF.sub("", start).replace(" >", ">")
        return _HREF.sub(lambda _m: f'href="{place}"', start, count=1)

    return START_TAG.sub(tag, html)
