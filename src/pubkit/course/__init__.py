"""Turn a course's lessons into its products: lessons set on bounded workers, each
module's collected book, the downloads page, and EPUBCheck's verdict on what was built.

Imports :mod:`pubkit.engines` and below; :mod:`pubkit.build` drives it.
"""
