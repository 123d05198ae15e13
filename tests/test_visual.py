"""Sample lessons' pages look as they did when a person last approved them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SEED_ID
from pubkit.build import BuildResult
from visual_pages import (
    PAGES,
    PIXELS_ALLOWED,
    difference,
    load,
    reference_path,
    render_page,
)


@pytest.mark.parametrize(("name", "project", "lesson", "edition", "page"), PAGES)
def test_page_matches_its_reference(
    seed_build: tuple[BuildResult, Path],
    scripts_build: Path,
    blocks_build: Path,
    technical_build: Path,
    name: str,
    project: str | None,
    lesson: str,
    edition: str,
    page: int,
    tmp_path: Path,
) -> None:
    builds = {"scripts": scripts_build, "blocks": blocks_build, "technical": technical_build}
    out = builds.get(project or "", seed_build[1])
    image = render_page(out / edition / f"{lesson}.pdf", page)
    reference = reference_path(name, edition, page)
    assert reference.is_file(), f"no reference {reference.name}: run make references"
    changed = difference(image, load(reference))
    if changed > PIXELS_ALLOWED:
        image.save(tmp_path / reference.name)  # to compare by eye
    assert changed <= PIXELS_ALLOWED, (
        f"{reference.name}: {changed} pixels differ; new render in {tmp_path}"
    )


def test_the_comparison_sees_a_one_word_change(seed_build: tuple[BuildResult, Path]) -> None:
    """The tolerance is tight enough to catch a small change (a sanity check of the test)."""
    from PIL import ImageDraw

    _, out = seed_build
    image = render_page(out / "pdf" / f"{SEED_ID}.pdf", 2)
    changed = image.copy()
    ImageDraw.Draw(changed).rectangle((120, 300, 150, 308), fill="white")  # erase a word
    assert difference(image, image) == 0
    assert difference(changed, image) > PIXELS_ALLOWED
