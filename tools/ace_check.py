"""Run Ace by DAISY on every EPUB a build made, and print its violations as diagnostics.

Usage: python tools/ace_check.py [OUTPUT_FOLDER]   (what `make a11y` runs)

Ace loads each document in a real browser (Debian's chromium, through puppeteer) and
runs axe-core plus the EPUB checks of the DAISY Knowledge Base. Exit status 1 when any
EPUB has a violation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ACE = TOOLS / "ace/node_modules/.bin/ace-puppeteer"
CHROMIUM = Path("/usr/bin/chromium")


def violations(epub: Path) -> list[str]:
    """Ace's violations for ``epub``: "document: rule (impact): description"."""
    env = {**os.environ, "PUPPETEER_EXECUTABLE_PATH": str(CHROMIUM)}
    with tempfile.TemporaryDirectory(prefix="pubkit-ace-") as folder:
        subprocess.run(
            [str(ACE), "--silent", "--force", "--outdir", folder, str(epub)],
            env=env,
            check=True,
            capture_output=True,
            timeout=600,
        )
        report = json.loads((Path(folder) / "report.json").read_text(encoding="utf-8"))
    return [
        f"{group['earl:testSubject']['url']}: {item['earl:test']['dct:title']} "
        f"({item['earl:test']['earl:impact']}): "
        + " ".join(item["earl:result"]["dct:description"].split())
        for group in report["assertions"]
        for item in group["assertions"]
    ]


def main(out: Path) -> int:
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    epubs = [
        (item["editions"]["epub"]["path"], out / item["editions"]["epub"]["path"])
        for item in (*manifest["lessons"], *manifest.get("collections", ()))
        if "epub" in item["editions"]
    ]
    failed = 0
    for name, epub in epubs:
        found = violations(epub)
        failed += bool(found)
        for violation in found:
            print(f"{name}: error: ace: {violation}", file=sys.stderr)
    print(f"Ace by DAISY: {len(epubs) - failed} of {len(epubs)} EPUBs with no violation")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "build")))
