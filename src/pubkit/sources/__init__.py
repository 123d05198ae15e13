"""Turn what a course folder holds into checked inputs: pubkit.yaml, front matter, lessons,
the files they refer to, and the theme.

The lowest layer of stages: it imports only :mod:`pubkit.errors` and :mod:`pubkit.editions`.
"""
