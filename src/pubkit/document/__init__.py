"""Turn a checked lesson into its document: the pandoc AST, safe HTML, reading figures, and
the render context every edition starts from.

Imports :mod:`pubkit.sources` and below, never an engine or the course.
"""
