"""Run the command line as ``python -m pubkit``."""

from pubkit.cli import run

run()
