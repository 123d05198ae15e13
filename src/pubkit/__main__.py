"""Run the command line as ``python -m pubkit``."""

from .cli import main

main()
