"""Rebuild the sample lessons and write the visual-regression references (``make references``).

Run it only after looking at the new pages: the references are what "right" looks like.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import PROJECTS, REPO
from pubkit.build import build
from visual_pages import PAGES, save_references


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        outputs: dict[str | None, Path] = {}
        for project in dict.fromkeys(project for _, project, *_ in PAGES):
            out = Path(folder) / (project or "seed")
            result = build(PROJECTS / project if project else REPO, out=out, force=True)
            if not result.ok:
                sys.exit(f"{project or 'the seed course'} does not build; fix that first")
            outputs[project] = out
        for path in save_references(outputs):
            print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
