"""Rebuild the seed lesson and write the visual-regression references (``make references``).

Run it only after looking at the new pages: the references are what "right" looks like.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import REPO, SEED_ID
from pubkit.build import build
from visual_pages import save_reference


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        result = build(REPO, out=out, force=True)
        if not result.ok:
            sys.exit("the seed lesson does not build; fix that first")
        pdfs = {name: out / name / f"{SEED_ID}.pdf" for name in ("pdf", "handout")}
        for path in save_reference(pdfs):
            print(f"wrote {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
