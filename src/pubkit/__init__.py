"""pubkit: turn a course's Markdown lessons into PDF, handout and EPUB editions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pubkit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
