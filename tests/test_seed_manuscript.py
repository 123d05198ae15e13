"""The seed lesson's manuscript keeps every word of the author's text."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO
from pubkit.document.markdown import convert
from pubkit.document.metrics import count_words
from pubkit.sources.config import load_config
from pubkit.sources.manuscript import collect

SEED = Path(__file__).parent / "data" / "seed-lesson-50.txt"
MANUSCRIPT = REPO / "manuscript/09-the-human-craft/50-career-growth-for-product-managers.md"


def seed_body_lines() -> list[str]:
    """The author's text: the web page's header (9 lines) and its back link dropped."""
    lines = SEED.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("Module 9")
    assert lines[-1].endswith("Back to the index")
    return [line.strip().removeprefix("\u2022").strip() for line in lines[9:-1] if line.strip()]


def words(text: str) -> list[str]:
    return [w for w in text.split() if re.search(r"\w", w)]


def seed_lesson():  # type: ignore[no-untyped-def]
    config, _ = load_config(REPO)
    (lesson,) = collect(config, [MANUSCRIPT]).lessons
    return lesson, convert(lesson, REPO)


def test_every_word_of_the_seed_is_kept_in_order() -> None:
    _, document = seed_lesson()
    expected = words(" ".join(seed_body_lines()))
    # pandoc's smart punctuation turns ' into a typographic apostrophe; the words are the same.
    got = [w.replace("\u2019", "'") for w in words(document.text)]
    assert got == expected


def test_word_count_matches_an_independent_count() -> None:
    _, document = seed_lesson()
    independent = sum(1 for line in seed_body_lines() for w in line.split() if re.search(r"\w", w))
    assert count_words(document.text) == independent == 2829


def test_structure_is_recovered() -> None:
    body = MANUSCRIPT.read_text(encoding="utf-8")
    assert len(re.findall(r"^## ", body, re.M)) == 11  # ten sections and the takeaways heading
    assert len(re.findall(r"^### ", body, re.M)) == 15
    assert len(re.findall(r"^- ", body, re.M)) == 10  # the list and the five takeaways
    assert re.search(r"^::: takeaways\n## Key Takeaways$", body, re.M)
    assert "Back to the index" not in body
    assert "min read" not in body


def test_front_matter() -> None:
    lesson, document = seed_lesson()
    assert (lesson.module.number, lesson.module.title) == (9, "The Human Craft")
    assert lesson.number == 50
    assert lesson.title == "Career Growth for Product Managers"
    assert lesson.subtitle and lesson.subtitle.startswith("How PM careers actually progress")
    assert document.has_takeaways
