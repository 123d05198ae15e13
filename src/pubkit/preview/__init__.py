"""``pubkit preview``: the course built, served to a browser beside the author's editor,
and built again (only what changed) on every save.

:mod:`pubkit.preview.builder` runs the incremental build of :mod:`pubkit.build` in a warm
process of its own; :mod:`pubkit.preview.server` serves the page (``page/``), the laid-out
pages and the EPUB's chapters, and tells the page when a build is done.
"""
