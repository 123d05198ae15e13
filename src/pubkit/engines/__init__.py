"""Turn a lesson's render context into an edition's bytes: WeasyPrint for the paged
editions, pandoc and pubkit's own parts for the EPUB, and what they share (fonts, covers,
page lists, layout proofing, accessibility claims).

Imports :mod:`pubkit.document` and below. :func:`renderer` is the registry's way in.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Protocol

from pubkit.engines import libraries

if TYPE_CHECKING:
    from pubkit.document.render import Rendered, RenderJob
    from pubkit.editions import Edition


# WeasyPrint's C libraries found without probing with the compiler (0.2 s a build).
libraries.install()

# WeasyPrint looks for the machine's fonts as it is imported, and warns on a machine with
# none ("Expect ugly output"): pubkit sets only its theme's fonts (engines.weasy).
warnings.filterwarnings(
    "ignore", "(No fonts configured in|cannot load default config file)", UserWarning
)


class Renderer(Protocol):
    def __call__(self, job: RenderJob) -> Rendered: ...


def renderer(edition: Edition) -> Renderer:
    """The function that renders ``edition``, imported on first use (WeasyPrint is slow to
    load, and ``pubkit check`` never needs it)."""
    module, function = edition.renderer.split(":")
    found: Renderer = getattr(importlib.import_module(module), function)
    return found
