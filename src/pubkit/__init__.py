"""pubkit: turn a course's Markdown lessons into PDF, handout and EPUB editions."""

__version__ = "0.1.0"

__all__ = ["__version__"]
