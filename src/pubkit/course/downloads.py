"""Turn the manifest into the course's downloads page: ``index.html``, grouped by module,
a card per lesson (title, dek, reading figures, a thumbnail of its first page, its files
with their sizes) and each module's collected editions. One HTML file with its styles
inline and the theme's fonts (subset to the page's text) beside it; no JavaScript."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from markupsafe import Markup

from pubkit import __version__
from pubkit.sources.config import Config
from pubkit.sources.theme import FontFace, Theme

INDEX_NAME = "index.html"
FONTS_DIR = Path("assets") / "fonts"
#: Thumbnail width in pixels: twice the width it is shown at, for high-density screens.
THUMBNAIL_WIDTH = 240


def thumbnail(pdf: bytes) -> bytes:
    """The PDF's first page as a small PNG."""
    from pubkit.engines.cover import first_page_png

    return first_page_png(pdf, THUMBNAIL_WIDTH)


def _modules(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Lessons and collections grouped by module, in module order."""
    modules: dict[int, dict[str, Any]] = {}

    def module(info: Mapping[str, Any]) -> dict[str, Any]:
        number = info["number"]
        return modules.setdefault(
            number, {"number": number, "title": info["title"], "lessons": [], "collection": None}
        )

    for lesson in manifest["lessons"]:
        module(lesson["module"])["lessons"].append(lesson)
    for collection in manifest.get("collections", []):
        module(collection["module"])["collection"] = collection
    return [modules[number] for number in sorted(modules)]


def render_index(manifest: Mapping[str, Any], theme: Theme, config: Config) -> dict[Path, bytes]:
    """The downloads page and its fonts, by path relative to the output folder."""
    return _render(manifest, theme, config)


def warm(theme: Theme, config: Config) -> None:
    """Load what the page is set with (its template, stylesheet and fonts) while the build
    waits for something else: setting it then takes a third of the time."""
    _render({"lessons": []}, theme, config)


def _render(manifest: Mapping[str, Any], theme: Theme, config: Config) -> dict[Path, bytes]:
    from pubkit.document.templates import environment
    from pubkit.engines.fonts import subset_font
    from pubkit.engines.glyphs import faces_for

    language = config.language
    env = environment(theme, language)
    context = {
        "course": config,
        "language": language,
        "modules": _modules(manifest),
        "lessons": manifest["lessons"],
        # Lessons with an instructors' edition, listed apart from the learners' files.
        "instructors": [
            m
            for m in _modules(manifest)
            if any(lesson.get("instructor_editions") for lesson in m["lessons"])
        ],
        "version": __version__,
    }

    def page(faces: tuple[FontFace, ...]) -> str:
        css = theme.stylesheet(
            ("downloads.css",),
            "downloads",
            config.paper,
            font_url=lambda face: (FONTS_DIR / face.path.name).as_posix(),
            faces=faces,
            language=language,
        )
        context["css"] = Markup(css.replace("</", "<\\/"))  # nothing in it may close <style>
        return env.get_template("index.html.j2").render(context)

    # A fallback font is declared and shipped only when the page's words need it.
    faces = faces_for(theme, page(theme.fonts), language)
    html = page(faces)
    files: dict[Path, bytes] = {Path(INDEX_NAME): html.encode("utf-8")}
    for face in faces:
        files[FONTS_DIR / face.path.name] = subset_font(face, html)
    return files
